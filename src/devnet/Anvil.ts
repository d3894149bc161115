/**
 * A local anvil node as a scoped resource: spawned from the binary inside the
 * `@foundry-rs/anvil-<platform>-<arch>` npm package, killed when the scope closes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { Clock, Data, Deferred, type Duration, Effect, Option, Schedule, type Scope } from "effect"
import { createPublicClient, http } from "viem"

export class AnvilError extends Data.TaggedError("AnvilError")<{
  readonly reason: "UnsupportedPlatform" | "BinaryNotFound" | "SpawnFailed" | "Exited" | "NotReady"
  readonly message: string
  readonly cause?: unknown
}> {}

export interface AnvilOptions {
  readonly port: number
  /** Defaults to 31337. */
  readonly chainId?: number
  /** Seconds between blocks; without it every transaction is mined at once (automine). */
  readonly blockTime?: number
  /** How long to wait for `eth_chainId` to answer; 15 seconds by default. */
  readonly startTimeout?: Duration.DurationInput
}

export interface AnvilInstance {
  readonly rpcUrl: string
  readonly chainId: number
  readonly port: number
}

const packageSuffixes: Record<string, Record<string, string>> = {
  linux: { x64: "linux-amd64", arm64: "linux-arm64" },
  darwin: { x64: "darwin-amd64", arm64: "darwin-arm64" }
}

/**
 * A process's timing is wall-clock time whatever Clock the caller runs under, so the devnet
 * pins the live clock: tests on TestClock can still start a node.
 */
export const realTime = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withClock(self, Clock.make())

/** Path of the anvil binary for this platform. */
export const anvilBinary: Effect.Effect<string, AnvilError> = Effect.gen(function*() {
  const suffix = packageSuffixes[process.platform]?.[process.arch]
  if (suffix === undefined) {
    return yield* new AnvilError({
      reason: "UnsupportedPlatform",
      message: `no @foundry-rs/anvil binary package for ${process.platform}/${process.arch}`
    })
  }
  const pkg = `@foundry-rs/anvil-${suffix}`
  return yield* Effect.try({
    try: () => join(dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`)), "bin", "anvil"),
    catch: (cause) => new AnvilError({ reason: "BinaryNotFound", message: `${pkg} is not installed`, cause })
  })
})

/** A port that was free a moment ago (bound to 0, then released). */
export const freePort: Effect.Effect<number> = Effect.async<number, Error>((resume) => {
  const server = createServer()
  server.once("error", (error) => resume(Effect.fail(error)))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(port > 0 ? Effect.succeed(port) : Effect.fail(new Error("no port assigned"))))
  })
}).pipe(Effect.orDie)

interface Running {
  readonly child: ChildProcess
  /** Completes once anvil has bound its port: only then can an answer on it come from this process. */
  readonly listening: Deferred.Deferred<void>
  readonly exited: Deferred.Deferred<string>
  readonly stderrTail: () => string
}

const launch = (binary: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const listening = yield* Deferred.make<void>()
    const exited = yield* Deferred.make<string>()
    const tail: Array<string> = []
    const child = yield* Effect.async<ChildProcess, AnvilError>((resume) => {
      const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] })
      // Listeners go on synchronously: an early exit must not slip past before we watch for it.
      // stdout is drained for good (anvil logs every request; a full pipe would block it).
      let recent = ""
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        recent = (recent + chunk).slice(-256)
        if (recent.includes("Listening on")) Deferred.unsafeDone(listening, Effect.void)
      })
      // The last stderr chunks say why anvil stopped (e.g. port in use).
      child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
        tail.push(chunk)
        if (tail.length > 20) tail.shift()
      })
      child.once("exit", (code, signal) => Deferred.unsafeDone(exited, Effect.succeed(signal ?? `code ${code}`)))
      child.once("error", (cause) =>
        resume(Effect.fail(new AnvilError({ reason: "SpawnFailed", message: `cannot start ${binary}`, cause }))))
      child.once("spawn", () => {
        // Last resort if the host process exits without closing the scope.
        const killOnExit = () => child.kill("SIGKILL")
        process.once("exit", killOnExit)
        child.once("exit", () => process.off("exit", killOnExit))
        resume(Effect.succeed(child))
      })
    })
    return { child, listening, exited, stderrTail: () => tail.join("").trim() } satisfies Running
  })

const stop = ({ child, exited }: Running) =>
  Effect.gen(function*() {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGTERM")
    const stopped = yield* Deferred.await(exited).pipe(Effect.timeout("3 seconds"), Effect.option)
    if (Option.isNone(stopped)) {
      child.kill("SIGKILL")
      yield* Deferred.await(exited).pipe(Effect.timeout("2 seconds"), Effect.option)
    }
  })

const awaitReady = (running: Running, rpcUrl: string, chainId: number, timeout: Duration.DurationInput) => {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0, timeout: 1_000 }) })
  const notReady = (message: string, cause?: unknown) => new AnvilError({ reason: "NotReady", message, cause })
  const bound = Deferred.await(running.listening).pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => notReady(`anvil did not bind ${rpcUrl} in time`) })
  )
  const answered = Effect.tryPromise(() => client.getChainId()).pipe(
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo(timeout))),
    Effect.mapError((cause) => notReady(`anvil did not answer eth_chainId on ${rpcUrl} in time`, cause)),
    Effect.filterOrFail(
      (answer) => answer === chainId,
      (answer) => notReady(`${rpcUrl} answers chain id ${answer}, not ${chainId}`)
    )
  )
  const died = Deferred.await(running.exited).pipe(
    Effect.flatMap((how) =>
      new AnvilError({ reason: "Exited", message: `anvil exited (${how}): ${running.stderrTail() || "no output"}` })
    )
  )
  return Effect.raceFirst(Effect.zipRight(bound, answered), died)
}

/** Starts anvil on 127.0.0.1:`port`; the node is killed (SIGTERM, then SIGKILL) when the scope closes. */
export const start = (options: AnvilOptions): Effect.Effect<AnvilInstance, AnvilError, Scope.Scope> =>
  Effect.gen(function*() {
    const chainId = options.chainId ?? 31337
    const binary = yield* anvilBinary
    const args = ["--host", "127.0.0.1", "--port", String(options.port), "--chain-id", String(chainId)]
    if (options.blockTime !== undefined) args.push("--block-time", String(options.blockTime))
    const running = yield* Effect.acquireRelease(launch(binary, args), (running) => realTime(stop(running)))
    const rpcUrl = `http://127.0.0.1:${options.port}`
    yield* awaitReady(running, rpcUrl, chainId, options.startTimeout ?? "15 seconds")
    return { rpcUrl, chainId, port: options.port }
  }).pipe(realTime, Effect.withSpan("Anvil.start", { attributes: { port: options.port } }))

export const Anvil = { start, freePort, binary: anvilBinary } as const
