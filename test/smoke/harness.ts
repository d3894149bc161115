/**
 * Running the real `evm-billing` binary from tests: an isolated environment (a fresh database, a NATS prefix of its
 * own whose streams are deleted afterwards, its own secrets), one-shot commands, and `serve` as a child process.
 * Used by test/cli/E2e.test.ts and test/smoke.run.test.ts; the smoke suite itself needs only BASE_URL.
 */
import { Context, Data, type Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import { isNotFound, Nats } from "../../services/Nats.ts"
import { freePort } from "../../src/devnet/Anvil.ts"
import { Prefix } from "../../services/Subjects.ts"
import { freshDatabaseUrl } from "../support/database.ts"

export const BIN = fileURLToPath(new URL("../../bin/evm-billing.js", import.meta.url))
export const ROOT = fileURLToPath(new URL("../../", import.meta.url))

export const JWT_SECRET = "cli-smoke-jwt-secret-0123456789abcdef"
export const WEBHOOK_SECRET = "cli-smoke-webhook-secret-0123456789"

/**
 * Deletes every stream of `prefix` when the scope closes (the child processes use them). The connection is made now:
 * made inside the finalizer, its fibers would be uninterruptible and closing it would wait forever.
 */
export const deleteStreams = (prefix: Prefix) =>
  Effect.gen(function*() {
    const nats = Context.get(yield* Layer.build(Nats.layerWith({ prefix })).pipe(Effect.orDie), Nats)
    yield* Effect.addFinalizer(() =>
      Effect.forEach(Object.values(nats.subjects.streams), (name) =>
        nats.use(`streams.delete(${name})`, ({ jsm }) => jsm.streams.delete(name)).pipe(
          Effect.catchIf(isNotFound, () => Effect.void)
        ), { discard: true }).pipe(Effect.orDie)
    )
  })

/** Environment variables for a child process of its own: fresh database (dropped after), NATS prefix, secrets. */
export const isolatedEnv: Effect.Effect<Record<string, string>, never, Scope.Scope> = Effect.gen(function*() {
  const { url } = yield* freshDatabaseUrl
  const prefix = Prefix.make(`C${randomBytes(5).toString("hex")}`)
  yield* deleteStreams(prefix)
  return {
    DATABASE_URL: url,
    BILLING_NATS_PREFIX: prefix,
    BILLING_AUTH_JWT_SECRET: JWT_SECRET,
    BILLING_WEBHOOK_SECRET: WEBHOOK_SECRET,
    BILLING_SECRETS_KEY: Buffer.from("cli-smoke-secrets-key-0123456789").toString("base64"),
    BILLING_CONFIRMATION_POLL: "200 millis"
  }
})

/**
 * The environment without what vitest put there for its workers (VITEST_*, Vite's BASE_URL, MODE, ...): a nested
 * vitest taking those for its own would hang, and the CLI should see the operator's environment only.
 */
const VITEST_KEYS = /^(VITEST.*|TEST|NODE_ENV|BASE_URL|MODE|DEV|PROD|SSR)$/
export const childEnv = (env: Record<string, string>) => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !VITEST_KEYS.test(k))),
  ...env
})

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export class ChildFailed extends Data.TaggedError("ChildFailed")<{ readonly message: string }> {}

/** Runs a command to completion (killed after `timeout`), collecting its output. */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  timeout: Duration.DurationInput = "90 seconds"
): Effect.Effect<Finished> =>
  Effect.async<Finished>((resume) => {
    const child = spawn(command, args, { cwd: ROOT, env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout.on("data", (b: Buffer) => out.push(b))
    child.stderr.on("data", (b: Buffer) => err.push(b))
    child.once("close", (code) =>
      resume(Effect.succeed({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") })))
    return Effect.sync(() => child.kill("SIGKILL"))
  }).pipe(Effect.timeout(timeout), Effect.orDie)

export const cli = (args: ReadonlyArray<string>, env: Record<string, string>) => run(process.execPath, [BIN, ...args], env)

/** Sends `signal` to the child's process group; false when the group no longer exists. */
const signalGroup = (child: ChildProcess, signal: NodeJS.Signals | 0) =>
  Effect.sync(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal)
      return child.pid !== undefined
    } catch {
      return false
    }
  })

/** SIGTERM to the group, then SIGKILL for whatever has not shut down in 20 s. */
const stopGroup = (child: ChildProcess) =>
  signalGroup(child, "SIGTERM").pipe(
    Effect.zipRight(signalGroup(child, 0).pipe(
      Effect.repeat({ schedule: Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds")), while: (alive) => alive })
    )),
    Effect.zipRight(signalGroup(child, "SIGKILL"))
  )

/** `evm-billing serve` on a free port (embedded devnet), healthy before this returns, stopped (SIGTERM) with the scope. */
export const serve = (env: Record<string, string>, nodeArgs: ReadonlyArray<string> = [], entry: string = BIN) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const stderr: Array<string> = []
    // Its own process group: bin/evm-billing.js runs the entry point in a grandchild (through tsx) and does not forward
    // signals, so SIGTERM goes to the whole group, as a process manager stopping a service would send it.
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(process.execPath, [...nodeArgs, entry, "serve"], {
          cwd: ROOT,
          env: childEnv({ ...env, PORT: String(port) }),
          stdio: ["ignore", "ignore", "pipe"],
          detached: true
        })
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk))
        return child
      }),
      (child) => stopGroup(child)
    )
    const baseUrl = `http://127.0.0.1:${port}`
    // Bounded: a request that reaches the port before the API layers are built is not answered.
    yield* Effect.tryPromise(() => fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status)).pipe(
      Effect.filterOrFail((status) => status === 200),
      Effect.retry({
        schedule: Schedule.spaced("250 millis").pipe(Schedule.upTo("60 seconds")),
        while: () => child.exitCode === null
      }),
      Effect.mapError(() => new ChildFailed({ message: `serve did not become healthy: ${stderr.join("").slice(-2000)}` })),
      Effect.orDie
    )
    return { baseUrl, pid: child.pid!, logs: () => stderr.join("") }
  })
