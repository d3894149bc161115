/**
 * Start-up of `serve` with the embedded devnet: ms from spawn to the first 200 from /readyz, and VmRSS after 2 s idle.
 * Builds nothing: the compiled figures need `npm run build` first.
 *
 *   npx tsx test/bench/startup.ts     prints the compiled build beside tsx (`node --import tsx src/main.ts serve`)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Data, Deferred, Effect, Logger, LogLevel, Schedule } from "effect"
import { spawn } from "node:child_process"
import { existsSync, readFileSync, realpathSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { freePort } from "../../src/devnet/Anvil.ts"
import { childEnv, isolatedEnv, ROOT } from "../smoke/harness.ts"
import { memoryMiB } from "./process.ts"

export interface StartupFigures {
  readonly readyMs: number
  readonly idleRssMiB: number
}

export const COMPILED_ENTRY = fileURLToPath(new URL("../../dist/src/main.js", import.meta.url))
/** The node flags `npm start` runs the service with (its heap cap), so the bench measures what production runs. */
export const START_FLAGS: ReadonlyArray<string> = (() => {
  const start = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts.start as string
  return start.match(/ --[a-z-]+=\S+/g)?.map((flag) => flag.trim()) ?? []
})()
/** node arguments of each way to run `serve`; tsx in-process (as the bin does), so the figures are one process's. */
export const Runners = {
  compiled: [...START_FLAGS, COMPILED_ENTRY, "serve"],
  tsx: ["--import", "tsx", "src/main.ts", "serve"]
} as const satisfies Record<string, ReadonlyArray<string>>

class StartupFailed extends Data.TaggedError("StartupFailed")<{ readonly message: string }> {}

const status = (url: string) =>
  Effect.promise(() => fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0))

export interface Spawned {
  readonly pid: number
  readonly port: string
  /** ms from spawn to the first 200 from /readyz. */
  readonly readyMs: number
}

/** `serve` (or `nodeArgs`) with `env` as a child process, ready; SIGTERMed (SIGKILLed after 30 s) when the scope closes. */
export const spawnService = (env: Record<string, string>, nodeArgs: ReadonlyArray<string> = Runners.compiled) =>
  Effect.gen(function*() {
    if (nodeArgs.includes(COMPILED_ENTRY) && !existsSync(COMPILED_ENTRY)) {
      return yield* new StartupFailed({ message: `${COMPILED_ENTRY} is missing: run \`npm run build\` first` })
    }
    const port = env["PORT"] ?? String(yield* freePort)
    const stderr: Array<string> = []
    const exited = yield* Deferred.make<string>()
    const started = performance.now()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(process.execPath, nodeArgs, {
          cwd: ROOT,
          env: childEnv({ ...env, PORT: port }),
          stdio: ["ignore", "ignore", "pipe"]
        })
        // Drained for good: a full pipe would stall the service's logging.
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
          stderr.push(chunk)
          if (stderr.length > 50) stderr.shift()
        })
        child.once("exit", (code, signal) => Deferred.unsafeDone(exited, Effect.succeed(signal ?? `code ${code}`)))
        return child
      }),
      // SIGTERM as a supervisor stops it; SIGKILL only if it has not stopped (devnet included) in 30 s.
      (child) =>
        Effect.gen(function*() {
          if (child.exitCode !== null || child.signalCode !== null) return
          child.kill("SIGTERM")
          const stopped = yield* Deferred.await(exited).pipe(Effect.timeout("30 seconds"), Effect.option)
          if (stopped._tag === "None") child.kill("SIGKILL")
        })
    )
    yield* status(`http://127.0.0.1:${port}/readyz`).pipe(
      Effect.filterOrFail((s) => s === 200),
      Effect.retry({
        schedule: Schedule.spaced("25 millis").pipe(Schedule.upTo("120 seconds")),
        while: () => child.exitCode === null
      }),
      Effect.mapError(() => new StartupFailed({ message: `serve did not become ready: ${stderr.join("").slice(-2000)}` }))
    )
    return { pid: child.pid!, port, readyMs: Math.round(performance.now() - started) } satisfies Spawned
  })

export const startup = (env: Record<string, string>, nodeArgs: ReadonlyArray<string> = Runners.compiled) =>
  Effect.gen(function*() {
    const { pid, readyMs } = yield* spawnService(env, nodeArgs)
    yield* Effect.sleep("2 seconds")
    return { readyMs, idleRssMiB: memoryMiB(pid) } satisfies StartupFigures
  }).pipe(Effect.scoped)

/** One start-up of `node dist/src/main.js serve` (or `nodeArgs`) with `env`; the process is SIGTERMed after. */
export const measureStartup = (
  env: Record<string, string>,
  nodeArgs: ReadonlyArray<string> = Runners.compiled
): Promise<StartupFigures> => Effect.runPromise(startup(env, nodeArgs))

const isMain = process.argv[1] !== undefined &&
  realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))

if (isMain) {
  // Each runner on a fresh database and NATS prefix, one after the other so they do not compete for the CPU.
  Effect.forEach(Object.entries(Runners), ([name, nodeArgs]) =>
    Effect.scoped(Effect.flatMap(isolatedEnv, (env) => startup(env, nodeArgs))).pipe(
      Effect.tap((f) =>
        Effect.sync(() => console.log(`${name}: ready ${f.readyMs} ms after spawn (devnet included), RSS ${f.idleRssMiB} MiB after 2 s idle`))
      )
    ), { discard: true }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning), NodeRuntime.runMain)
}
