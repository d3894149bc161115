/**
 * The billing service as a child process, as an operator runs it: killed with SIGKILL at random moments and started
 * again with the same environment. Its output goes to a log file in the suite's temp dir for a post-mortem.
 */
import { Data, Effect, Schedule, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, existsSync, openSync } from "node:fs"
import { fileURLToPath } from "node:url"

export class ServiceError extends Data.TaggedError("ServiceError")<{ readonly message: string }> {}

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const COMPILED = `${ROOT}dist/src/main.js`

export type Runner = "compiled" | "tsx"

/**
 * How the service runs: the compiled build (`npm run chaos` builds it first: the runtime compile would cost seconds
 * on every one of the suite's restarts); `tsx` on request, or when there is no build (the script run directly).
 */
export const prepareRunner = (prefer: "tsx" | "auto"): Effect.Effect<Runner> =>
  Effect.sync(() => (prefer === "auto" && existsSync(COMPILED) ? "compiled" : "tsx"))

const command = (runner: Runner): ReadonlyArray<string> =>
  runner === "compiled" ? [COMPILED, "serve"] : ["--import", "tsx", `${ROOT}src/main.ts`, "serve"]

export interface ServiceProcess {
  readonly baseUrl: string
  readonly log: string
  /** SIGKILL: no drain, no finalizers; in-flight messages come back after their ack wait. */
  readonly kill: Effect.Effect<void>
  /** Spawns the service and waits until /healthz answers 200. */
  readonly start: Effect.Effect<void, ServiceError>
  /** How long each start took until healthy, in ms. */
  readonly starts: Effect.Effect<ReadonlyArray<number>>
}

const healthy = (baseUrl: string, child: ChildProcess) =>
  Effect.tryPromise(() => fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status)).pipe(
    Effect.filterOrFail((status) => status === 200),
    Effect.retry({ schedule: Schedule.spaced("100 millis").pipe(Schedule.upTo("90 seconds")), while: () => child.exitCode === null }),
    Effect.mapError(() => new ServiceError({ message: `the service did not become healthy (exit ${child.exitCode})` }))
  )

export const serviceProcess = (runner: Runner, env: Record<string, string>, port: number, log: string): Effect.Effect<ServiceProcess, never, Scope.Scope> =>
  Effect.gen(function*() {
    const baseUrl = `http://127.0.0.1:${port}`
    const state: { child: ChildProcess | undefined; starts: Array<number> } = { child: undefined, starts: [] }
    const kill = Effect.suspend(() => {
      const child = state.child
      state.child = undefined
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Effect.void
      child.kill("SIGKILL")
      return Effect.async<void>((resume) => void child.once("exit", () => resume(Effect.void)))
    })
    const start = Effect.suspend(() => {
      const fd = openSync(log, "a")
      const child = spawn(process.execPath, [...command(runner)], {
        cwd: ROOT,
        env: { ...process.env, ...env, PORT: String(port) },
        stdio: ["ignore", fd, fd]
      })
      closeSync(fd)
      state.child = child
      const begun = performance.now()
      return healthy(baseUrl, child).pipe(Effect.tap(() => state.starts.push(Math.round(performance.now() - begun))))
    })
    yield* Effect.addFinalizer(() => kill)
    process.once("exit", () => state.child?.kill("SIGKILL"))
    return { baseUrl, log, kill, start, starts: Effect.sync(() => [...state.starts]) }
  })
