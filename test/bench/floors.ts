/**
 * The bare floors (bench/floors, copied from the workplace's shared bench-floors) run as child processes in the same
 * run as the service, so every figure is reported beside the floor for the same work on the same machine state.
 */
import { Effect, Schema } from "effect"
import { fileURLToPath } from "node:url"
import { runNode } from "./process.ts"

const FLOORS = fileURLToPath(new URL("../../bench/floors/", import.meta.url))

export class FloorFailed extends Schema.TaggedError<FloorFailed>()("FloorFailed", {
  script: Schema.String,
  message: Schema.String
}) {}

/** Runs a floor script and returns its last JSON line (the figures it emits). */
export const runFloor = (script: string, args: ReadonlyArray<string> = []) =>
  runNode([`${FLOORS}${script}`, ...args], {
    cwd: FLOORS,
    // The service connects with noAsyncTraces; the floors do the same (their README: 15–25% of a publish floor).
    env: { ...process.env, NATS_NO_ASYNC_TRACES: "1", NAT: "1" }
  }).pipe(Effect.flatMap(({ code, err, last }) =>
    code !== 0 || last === undefined
      ? Effect.fail(new FloorFailed({ script, message: `exit ${code}: ${err.slice(-500)}` }))
      : Effect.try({
        try: () => JSON.parse(last) as Record<string, unknown>,
        catch: () => new FloorFailed({ script, message: `not JSON: ${last.slice(0, 200)}` })
      })
  ))

export const num = (figures: Record<string, unknown>, key: string): number => {
  const v = figures[key]
  return typeof v === "number" ? v : Number.NaN
}
