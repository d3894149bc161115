/** The suite's HTTP client: a failed connection is an error (the service may be down right now), any answer is not. */
import { Data, type Duration, Effect, Schedule } from "effect"

export class Unreachable extends Data.TaggedError("Unreachable")<{ readonly cause: unknown }> {}

export interface Answer {
  readonly status: number
  readonly text: string
}

export interface RequestOptions {
  readonly token?: string
  readonly body?: unknown
  readonly raw?: string
  readonly headers?: Readonly<Record<string, string>>
}

export const request = (baseUrl: string, method: string, path: string, options: RequestOptions = {}) =>
  Effect.tryPromise({
    try: async (): Promise<Answer> => {
      const headers: Record<string, string> = { ...options.headers }
      if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
      const body = options.body === undefined ? options.raw : JSON.stringify(options.body)
      if (options.body !== undefined) headers["content-type"] = "application/json"
      const res = await fetch(`${baseUrl}${path}`, { method, headers, signal: AbortSignal.timeout(15_000), ...(body === undefined ? {} : { body }) })
      return { status: res.status, text: await res.text() }
    },
    catch: (cause) => new Unreachable({ cause })
  })

export class Refused extends Data.TaggedError("Refused")<{ readonly what: string; readonly answer: Answer }> {}

/**
 * Sends until the service answers something other than 5xx (it is being killed, or its PostgreSQL or NATS is), within
 * `upTo`. A 4xx is the caller's to judge.
 */
export const persistently = (send: Effect.Effect<Answer, Unreachable>, what: string, upTo: Duration.DurationInput = "90 seconds") =>
  send.pipe(
    Effect.filterOrElse((a) => a.status < 500, (answer) => Effect.fail(new Refused({ what, answer }))),
    Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo(upTo)))
  )
