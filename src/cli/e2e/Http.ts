/**
 * The e2e command talks to the service over plain HTTP, as a client would: bodies are decoded with the API's
 * own schemas, and a status other than the expected one is a failure that names the route and the answer.
 */
import { Data, Effect, Schema } from "effect"

export interface Response {
  readonly status: number
  readonly body: unknown
}

export interface RequestOptions {
  readonly token?: string
  readonly body?: unknown
  /** Sent as is (a webhook is signed over these exact bytes). */
  readonly raw?: string
  readonly headers?: Readonly<Record<string, string>>
}

export class HttpFailure extends Data.TaggedError("HttpFailure")<{ readonly message: string }> {}

const parseBody = Schema.decodeUnknownEither(Schema.parseJson(Schema.Unknown))

export type Client = (method: string, path: string, options?: RequestOptions) => Effect.Effect<Response, HttpFailure>

export const client = (baseUrl: string): Client => (method, path, options = {}) =>
  Effect.tryPromise({
    try: async (signal) => {
      const headers: Record<string, string> = { ...options.headers }
      if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
      let body = options.raw
      if (options.body !== undefined) {
        headers["content-type"] = "application/json"
        body = JSON.stringify(options.body)
      }
      const res = await fetch(`${baseUrl}${path}`, { method, headers, signal, ...(body === undefined ? {} : { body }) })
      return { status: res.status, text: await res.text() }
    },
    catch: (cause) =>
      new HttpFailure({ message: `${method} ${path}: ${cause instanceof Error ? cause.message : "request failed"}` })
  }).pipe(
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new HttpFailure({ message: `${method} ${path}: no answer in 30 s` }) }),
    Effect.map(({ status, text }) => {
      if (text === "") return { status, body: undefined }
      const parsed = parseBody(text)
      return { status, body: parsed._tag === "Right" ? parsed.right : text }
    })
  )

/** The body, decoded with `schema`, when the status is one of `expected`; otherwise a failure quoting the answer. */
export const expect = <A, I>(what: string, res: Response, expected: ReadonlyArray<number>, schema: Schema.Schema<A, I>) =>
  expected.includes(res.status)
    ? Schema.decodeUnknown(schema)(res.body).pipe(
      Effect.mapError((e) => new HttpFailure({ message: `${what}: unexpected body: ${e.message}` }))
    )
    : Effect.fail(new HttpFailure({ message: `${what}: expected ${expected.join(" or ")}, got ${res.status} ${JSON.stringify(res.body)}` }))
