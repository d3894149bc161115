/**
 * The whole service against real PostgreSQL, NATS and anvil, one instance per test file:
 * a fresh database, a NATS prefix of its own (streams deleted afterwards), a devnet, and the HTTP API
 * and payment processor running on a free port. Tests talk to it over HTTP like a client would.
 */
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Context, Duration, Effect, Layer, Logger, LogLevel, Schedule, Schema, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { pgLayer } from "../../services/Database.ts"
import { Nats } from "../../services/Nats.ts"
import { appLayer } from "../../src/App.ts"
import { seedFromEnvironment } from "../../src/Bootstrap.ts"
import type { Role } from "../../src/Config.ts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { freePort } from "../../src/devnet/Anvil.ts"
import { DEV_SIGNER_PRIVATE_KEY } from "../../src/devnet/Deploy.ts"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { runMigrations } from "../../services/Migrations.ts"
import { startTestDevnet, type TestDevnetHandle } from "./anvil.ts"
import { freshDatabaseUrl } from "./database.ts"
import { testToken } from "./jwt.ts"
import { METRICS_TOKEN } from "./metrics.ts"

export const JWT_SECRET = "test-jwt-secret-0123456789abcdef"
export const WEBHOOK_SECRET = "test-webhook-secret-0123456789"
/** base64 of 32 bytes: the key that encrypts webhook secrets at rest in tests. */
export const SECRETS_KEY = Buffer.from("test-secrets-key-0123456789abcde").toString("base64")
export const CONFIRMATIONS = 2

export interface Response {
  readonly status: number
  readonly body: unknown
}

/** Response bodies are decoded with the API's own schemas, as a typed client would. */
export const decode = <A, I>(schema: Schema.Schema<A, I>) => (res: Response): A => Schema.decodeUnknownSync(schema)(res.body)

export const ErrorBody = Schema.Struct({ error: Schema.String, message: Schema.String })
export const errorOf = decode(ErrorBody)

const call = (baseUrl: string) =>
(method: string, path: string, options: {
  readonly token?: string
  readonly body?: unknown
  readonly raw?: string | Uint8Array
  readonly headers?: Record<string, string>
} = {}): Effect.Effect<Response> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    let body: string | Uint8Array | undefined = options.raw
    if (options.body !== undefined) {
      headers["content-type"] = "application/json"
      body = JSON.stringify(options.body)
    }
    const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) })
    const text = await res.text()
    return { status: res.status, body: text === "" ? undefined : JSON.parse(text) }
  })

const makeHarness = (
  databaseUrl: string,
  baseUrl: string,
  devnet: TestDevnetHandle,
  prefix: string,
  startInstance: Effect.Effect<Harness["baseUrl"], never, Scope.Scope>,
  startInstanceWith: Harness["startInstanceWith"],
  env: Harness["env"]
) => {
  const request = call(baseUrl)
  const now = () => Math.floor(Date.now() / 1000)
  const token = (sub: string, roles: ReadonlyArray<string> = []) => testToken(sub, roles, JWT_SECRET)
  /** Posts a Standard Webhooks signed event; `id`, `timestamp` and `secret` can be overridden to test rejections. */
  const webhook = (event: unknown, over: { id?: string; timestamp?: number; secret?: string; signature?: string } = {}) => {
    const raw = JSON.stringify(event)
    const id = over.id ?? `msg_${randomBytes(8).toString("hex")}`
    const timestamp = over.timestamp ?? now()
    return request("POST", "/v1/billing/contracts/webhook", {
      raw,
      headers: {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": over.signature ?? signWebhook(over.secret ?? WEBHOOK_SECRET, id, timestamp, raw)
      }
    })
  }
  return {
    databaseUrl,
    baseUrl,
    devnet,
    prefix,
    env,
    request,
    token,
    admin: token("admin-1", ["admin"]),
    webhook,
    /** Another instance of the whole service (own pool, NATS connection, consumers) on the same database and NATS. */
    startInstance,
    startInstanceWith,
    /** The same requests against another instance. */
    on: (otherBaseUrl: string) => call(otherBaseUrl)
  }
}

export interface Harness {
  readonly databaseUrl: string
  readonly baseUrl: string
  readonly devnet: TestDevnetHandle
  readonly prefix: string
  /** The service's environment in this file (to run another instance as a process of its own). */
  readonly env: Readonly<Record<string, string>>
  readonly request: ReturnType<typeof call>
  readonly token: (sub: string, roles?: ReadonlyArray<string>) => string
  readonly admin: string
  readonly webhook: (
    event: unknown,
    over?: { id?: string; timestamp?: number; secret?: string; signature?: string }
  ) => Effect.Effect<Response>
  readonly startInstance: Effect.Effect<string, never, Scope.Scope>
  /** Like `startInstance` with this environment on top of the file's (`undefined` removes a variable). */
  readonly startInstanceWith: (env: Record<string, string | undefined>) => Effect.Effect<string, never, Scope.Scope>
  readonly on: (otherBaseUrl: string) => ReturnType<typeof call>
}
export class App extends Context.Tag("test/App")<App, Harness>() {}

/** Polls until `check` holds (up to 30 s); the payment processor works asynchronously. */
export const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, check: (a: A) => boolean, what = "condition") =>
  effect.pipe(
    Effect.filterOrFail(check, () => new Error(`timed out waiting for ${what}`)),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo(Duration.seconds(30))))
  )

export const PASS = "pass"

/** Registers the devnet's SubscriptionPass as contract `pass` (once per file) and a plan priced in native coin and the test token. */
export const registerContractAndPlan = (app: Harness, slug: string, prices: { native: bigint; token: bigint }) =>
  Effect.gen(function*() {
    const contract = yield* app.request("POST", "/v1/billing/admin/contracts", {
      token: app.admin,
      body: { slug: PASS, network: "anvil", address: app.devnet.info.contract_address, abi: SubscriptionPassAbi }
    })
    const plan = yield* app.request("POST", "/v1/billing/admin/plans", {
      token: app.admin,
      body: {
        slug,
        title: `Plan ${slug}`,
        interval: "month",
        contract_slug: PASS,
        prices: [
          { network: "anvil", token: "native", amount: prices.native.toString() },
          { network: "anvil", token: app.devnet.info.token_address, amount: prices.token.toString() }
        ],
        monthly_limits: { requests: 1000 },
        features: ["api"]
      }
    })
    if (plan.status !== 201) return yield* Effect.dieMessage(`plan ${slug} not created: ${JSON.stringify(plan.body)}`)
    return { contract, plan }
  })

export interface AppOptions {
  /** Extra environment for the service (retry policies and the like). */
  readonly env?: Record<string, string>
  /** Networks beyond the devnet, already running, seeded into crypto_config before start. */
  readonly extraNetworks?: Effect.Effect<Record<string, { chain_id: number; rpc: [string, ...Array<string>] }>, never, Scope.Scope>
  /** What the file's own instance runs (default: api and workers). */
  readonly roles?: ReadonlyArray<Role>
}

/** App + SqlClient (on the same fresh database) for assertions. */
export const appHarness = (options: AppOptions = {}) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const devnet = yield* startTestDevnet
    const extra = options.extraNetworks ? yield* options.extraNetworks : {}
    const { url } = yield* freshDatabaseUrl
    const db = pgLayer(url)
    const prefix = `T${randomBytes(5).toString("hex")}`
    const port = yield* freePort
    const networks = {
      anvil: { chain_id: devnet.info.chain_id, rpc: [devnet.info.rpc_url] as [string], confirmations: CONFIRMATIONS, gas_cap: 1_000_000n },
      ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, { ...v, confirmations: CONFIRMATIONS, gas_cap: 1_000_000n }]))
    }
    const env = new Map(Object.entries({
      DATABASE_URL: url,
      BILLING_NATS_PREFIX: prefix,
      BILLING_AUTH_JWT_SECRET: JWT_SECRET,
      BILLING_WEBHOOK_SECRET: WEBHOOK_SECRET,
      BILLING_SECRETS_KEY: SECRETS_KEY,
      BILLING_SIGNER_PRIVATE_KEY: DEV_SIGNER_PRIVATE_KEY,
      BILLING_PROCESSOR_MAX_DELIVERIES: "3",
      BILLING_PROCESSOR_RETRY_BASE_DELAY: "100 millis",
      BILLING_PROCESSOR_RETRY_MAX_DELAY: "500 millis",
      BILLING_CONFIRMATION_POLL: "200 millis",
      BILLING_RPC_RETRY_ATTEMPTS: "2",
      BILLING_RPC_RETRY_BASE_DELAY: "50 millis",
      BILLING_RPC_ALLOW_LOOPBACK: "true",
      // Background health probes stay out of the RPC traffic tests count; files that watch /readyz change lower it.
      BILLING_HEALTH_INTERVAL: "10 minutes",
      BILLING_METRICS_TOKEN: METRICS_TOKEN,
      ...options.env
    }))
    const config = Layer.setConfigProvider(ConfigProvider.fromMap(env))
    yield* Effect.gen(function*() {
      yield* runMigrations()
      yield* seedFromEnvironment(networks)
    }).pipe(Effect.provide(Layer.mergeAll(db, NodeContext.layer, config)), Effect.orDie)

    const quiet = Logger.minimumLogLevel(LogLevel.Warning)
    const startInstanceWith = (overrides: Record<string, string | undefined>) =>
      Effect.gen(function*() {
        const other = yield* freePort
        const merged = new Map(env)
        for (const [k, v] of Object.entries(overrides)) {
          if (v === undefined) merged.delete(k)
          else merged.set(k, v)
        }
        const own = Layer.setConfigProvider(ConfigProvider.fromMap(merged))
        yield* Layer.build(appLayer(other).pipe(Layer.provide(own), Layer.provide(quiet)))
        return `http://127.0.0.1:${other}`
      }).pipe(Effect.orDie)
    const startInstance = startInstanceWith({})
    const harness = Layer.succeed(App, makeHarness(url, `http://127.0.0.1:${port}`, devnet, prefix, startInstance, startInstanceWith, Object.fromEntries(env)))
    // Streams of this prefix are removed when the file is done.
    const cleanup = Layer.scopedDiscard(Effect.flatMap(Nats, (nats) =>
      Effect.addFinalizer(() =>
        Effect.forEach(Object.values(nats.subjects.streams), (name) =>
          nats.use(`delete ${name}`, ({ jsm }) => jsm.streams.delete(name)).pipe(Effect.ignore), { discard: true })
      )))
    return Layer.mergeAll(appLayer(port, options.roles), harness, db, cleanup).pipe(
      Layer.provideMerge(Nats.Default),
      Layer.provide(config),
      // The service logs at info; tests show warnings and errors only.
      Layer.provide(quiet)
    )
  }))
