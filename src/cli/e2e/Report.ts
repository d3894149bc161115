/**
 * Steps of the e2e run: each is timed, recorded and printed as it finishes (or, with --json, collected into one
 * document printed at the end). The first failing step stops the run.
 */
import { Clock, Console, Data, Effect, Ref } from "effect"

export interface StepOutcome {
  /** One line for a terminal. */
  readonly summary: string
  /** What the step saw, printed below the summary and kept in the JSON document. */
  readonly data: unknown
}

export interface StepRecord {
  readonly step: string
  readonly ok: boolean
  readonly skipped?: boolean
  readonly summary: string
  readonly ms: number
  readonly data?: unknown
  readonly error?: string
}

/** An assertion of a step that did not hold. */
export class CheckFailed extends Data.TaggedError("CheckFailed")<{ readonly message: string }> {}

export const check = (holds: boolean, message: string): Effect.Effect<void, CheckFailed> =>
  holds ? Effect.void : Effect.fail(new CheckFailed({ message }))

export class StepFailed extends Data.TaggedError("StepFailed")<{ readonly step: string; readonly reason: string }> {
  override get message() {
    return `e2e step ${this.step} failed: ${this.reason}`
  }
}

/** Marks a step that does not apply to this server (e.g. a route it does not have yet). */
export class Skipped extends Data.TaggedError("Skipped")<{ readonly message: string }> {}

const describe = (e: unknown) =>
  typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" && e.message !== ""
    ? e.message
    : typeof e === "object" && e !== null && "_tag" in e
    ? String(e._tag)
    : String(e)

/** Decoded API values carry bigints (amounts): they are kept as decimal strings, as on the wire. */
const plain = (value: unknown): unknown => {
  if (typeof value === "bigint") return value.toString()
  if (Array.isArray(value)) return value.map(plain)
  if (value instanceof Date) return value.toISOString()
  if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

const indent = (data: unknown) => JSON.stringify(data, null, 2).split("\n").map((l) => `    ${l}`).join("\n")

export const makeReport = (json: boolean) =>
  Effect.gen(function*() {
    const records = yield* Ref.make<ReadonlyArray<StepRecord>>([])

    const finish = (record: StepRecord) =>
      Effect.gen(function*() {
        const index = (yield* Ref.updateAndGet(records, (all) => [...all, record])).length
        if (json) return
        const mark = record.ok ? (record.skipped ? "-" : "✓") : "✗"
        yield* Console.log(`${mark} ${String(index).padStart(2)} ${record.step.padEnd(13)} ${record.summary} (${record.ms} ms)`)
        if (record.data !== undefined) yield* Console.log(indent(record.data))
      })

    /** Runs one step; a failure is recorded, printed and turned into StepFailed. */
    const step = <A extends StepOutcome, E, R>(name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, StepFailed, R> =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const exit = yield* Effect.either(effect)
        const ms = (yield* Clock.currentTimeMillis) - started
        if (exit._tag === "Right") {
          yield* finish({ step: name, ok: true, summary: exit.right.summary, ms, data: plain(exit.right.data) })
          return exit.right
        }
        const error = exit.left
        if (error instanceof Skipped) {
          yield* finish({ step: name, ok: true, skipped: true, summary: `skipped: ${error.message}`, ms })
          return yield* Effect.fail(new StepFailed({ step: name, reason: "skipped" }))
        }
        const reason = describe(error)
        yield* finish({ step: name, ok: false, summary: reason, ms, error: reason })
        return yield* Effect.fail(new StepFailed({ step: name, reason }))
      })

    /** A step whose absence is allowed: skipping it does not stop the run. */
    const optional = <A extends StepOutcome, E, R>(name: string, effect: Effect.Effect<A, E, R>) =>
      step(name, effect).pipe(
        Effect.map((a): A | undefined => a),
        Effect.catchIf((e) => e.reason === "skipped", () => Effect.succeed(undefined))
      )

    const document = (header: Record<string, unknown>) =>
      Effect.map(Ref.get(records), (steps) => ({ ok: steps.every((s) => s.ok), ...header, steps }))

    return { step, optional, document } as const
  })
