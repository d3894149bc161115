/**
 * A private nats-server with JetStream (a free port, a temp store dir) that the suite SIGKILLs and starts again on
 * the same port and store, never the machine's own server.
 */
import { Data, Effect, Schedule, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../../src/devnet/Anvil.ts"

export class NatsServerError extends Data.TaggedError("NatsServerError")<{ readonly message: string }> {}

export interface PrivateNats {
  readonly url: string
  /** SIGKILL, as a crash: no flush, no goodbye to clients. */
  readonly kill: Effect.Effect<void>
  /** Starts it again on the same port and store dir; waits until it accepts connections. */
  readonly start: Effect.Effect<void, NatsServerError>
}

const accepting = (port: number) =>
  Effect.async<void, NatsServerError>((resume) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.void)
    })
    socket.once("error", () => resume(Effect.fail(new NatsServerError({ message: `nothing listens on ${port}` }))))
  })

export const startNats: Effect.Effect<PrivateNats, NatsServerError, Scope.Scope> = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "chaos-nats-"))
  const port = yield* freePort
  const state: { child: ChildProcess | undefined } = { child: undefined }
  const exited = (child: ChildProcess) =>
    Effect.async<void>((resume) => {
      if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
      child.once("exit", () => resume(Effect.void))
    })
  const kill = Effect.suspend(() => {
    const child = state.child
    state.child = undefined
    if (child === undefined) return Effect.void
    child.kill("SIGKILL")
    return exited(child)
  })
  const start = Effect.suspend(() => {
    const child = spawn("/usr/sbin/nats-server", ["-js", "-sd", join(dir, "store"), "-a", "127.0.0.1", "-p", String(port)], {
      stdio: "ignore"
    })
    state.child = child
    return accepting(port).pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("15 seconds"))))
  })
  yield* Effect.acquireRelease(start, () => Effect.zipRight(kill, Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
  process.once("exit", () => state.child?.kill("SIGKILL"))
  return { url: `nats://127.0.0.1:${port}`, kill, start }
})
