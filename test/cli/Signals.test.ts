/**
 * `npm start` stopped the way a supervisor stops it: one signal to the PID it started, nothing else. The service must
 * shut down and take its embedded devnet anvil with it; nothing may be left re-parented and still serving.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Schedule } from "effect"
import { spawn } from "node:child_process"
import { freePort } from "../../src/devnet/Anvil.ts"
import { childEnv, isolatedEnv, ROOT } from "../smoke/harness.ts"
import { descendants, isRunning, type ProcessInfo } from "../support/processes.ts"

const answers = (url: string) =>
  Effect.promise(() =>
    fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0)
  )

/** `npm start` with an isolated environment, ready on /readyz; anything of it still running is killed with the scope. */
const npmStart = Effect.gen(function*() {
  const env = yield* isolatedEnv
  const port = yield* freePort
  const output: Array<string> = []
  const exited = yield* Deferred.make<string>()
  const recorded: Array<ProcessInfo> = []
  const npm = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn("npm", ["start"], {
        cwd: ROOT,
        env: childEnv({ ...env, PORT: String(port) }),
        stdio: ["ignore", "pipe", "pipe"],
        // A group of its own, so the signal under test reaches only the npm process, never this test runner.
        detached: true
      })
      const keep = (chunk: string) => {
        output.push(chunk)
        if (output.length > 200) output.shift()
      }
      child.stdout.setEncoding("utf8").on("data", keep)
      child.stderr.setEncoding("utf8").on("data", keep)
      child.once("exit", (code, signal) => Deferred.unsafeDone(exited, Effect.succeed(signal ?? `code ${code}`)))
      return child
    }),
    (child) =>
      Effect.sync(() => {
        // Whatever outlived the test (the failure this file guards against) must not outlive the run.
        for (const p of recorded.filter(isRunning)) process.kill(p.pid, "SIGKILL")
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )
  const baseUrl = `http://127.0.0.1:${port}`
  // The prestart build comes first: the bound covers a full compile on a busy machine.
  yield* answers(`${baseUrl}/readyz`).pipe(
    Effect.filterOrFail((status) => status === 200),
    Effect.retry({
      schedule: Schedule.spaced("250 millis").pipe(Schedule.upTo("150 seconds")),
      while: () => npm.exitCode === null
    }),
    Effect.orElse(() => Effect.dieMessage(`npm start did not become ready: ${output.join("").slice(-3000)}`))
  )
  recorded.push(...descendants(npm.pid!))
  return { npm, baseUrl, exited, tree: recorded, output: () => output.join("") }
})

const stopsEverything = (signal: "SIGTERM" | "SIGINT") =>
  Effect.gen(function*() {
    const started = yield* npmStart
    const anvil = started.tree.filter((p) => p.command === "anvil")
    const node = started.tree.filter((p) => p.command !== "anvil" && p.command !== "sh")
    assert.lengthOf(anvil, 1, `one embedded anvil under npm: ${JSON.stringify(started.tree)}`)
    assert.isAtLeast(node.length, 1, `the service under npm: ${JSON.stringify(started.tree)}`)

    process.kill(started.npm.pid!, signal)
    const how = yield* Deferred.await(started.exited).pipe(
      Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`npm still running after ${signal}`) }),
      Effect.orDie
    )
    // A re-parented process is reaped by init a moment after npm exits: look again briefly before concluding.
    const running = Effect.sync(() => started.tree.filter(isRunning))
    yield* running.pipe(
      Effect.repeat({ schedule: Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds")), until: (l) => l.length === 0 })
    )
    const left = yield* running
    assert.deepStrictEqual(
      left.map((p) => `${p.pid} ${p.command}`),
      [],
      `still running after ${signal} to npm (npm ended: ${how}): ${started.output().slice(-2000)}`
    )
    assert.strictEqual(yield* answers(`${started.baseUrl}/healthz`), 0, "the port still answers")
  })

// One start at a time: each builds dist/ (prestart) and starts a service with its devnet.
describe("npm start under a supervisor's signal", () => {
  it.scopedLive("SIGTERM to the npm PID stops the service and its devnet anvil", () => stopsEverything("SIGTERM"), {
    timeout: 240_000
  })

  it.scopedLive("SIGINT to the npm PID stops the service and its devnet anvil", () => stopsEverything("SIGINT"), {
    timeout: 240_000
  })
})
