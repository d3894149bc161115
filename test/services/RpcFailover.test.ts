/**
 * RPC failover against real nodes: two anvils (chain 31337) behind local HTTP endpoints that count the
 * JSON-RPC methods they receive and can be switched between proxying and answering HTTP 500, plus a port
 * nobody listens on. Cooldowns run on TestClock; the one live test measures real latencies.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Context, Duration, Effect, Layer, Logger, Metric, Option, Schedule, Schema, type Scope, TestClock, TestServices } from "effect"
import { createServer } from "node:http"
import { createTestClient, http } from "viem"
import { labelled, rpcEndpointHealthy, rpcErrorsTotal, rpcFailoversTotal } from "../../services/Metrics.ts"
import { Rpc } from "../../services/Rpc.ts"
import { cooldownMillis, endpointOrder, healthyEndpoint, recordFailure } from "../../services/RpcError.ts"
import { Anvil, type AnvilInstance } from "../../src/devnet/Anvil.ts"
import { TestDatabase } from "../support/database.ts"

describe("endpoint bench policy (pure)", () => {
  const policy = { cooldownMillis: 1_000, maxCooldownMillis: 5_000 }
  it("healthy endpoints in priority order first, benched ones last, soonest back first", () => {
    const benched = (until: number) => ({ consecutiveFailures: 1, benchedUntil: until })
    assert.deepStrictEqual(endpointOrder([healthyEndpoint, healthyEndpoint, healthyEndpoint], 0), [0, 1, 2])
    assert.deepStrictEqual(endpointOrder([benched(900), healthyEndpoint, benched(500)], 100), [1, 2, 0])
    // A bench that has ended puts the endpoint back in its priority slot: the primary is probed first.
    assert.deepStrictEqual(endpointOrder([benched(900), healthyEndpoint], 900), [0, 1])
  })
  it("the cooldown doubles with each failed probe up to the cap; failures while benched change nothing", () => {
    assert.deepStrictEqual([1, 2, 3, 4, 10].map((n) => cooldownMillis(policy, n)), [1_000, 2_000, 4_000, 5_000, 5_000])
    const once = recordFailure(healthyEndpoint, 10_000, policy)
    assert.deepStrictEqual(once, { consecutiveFailures: 1, benchedUntil: 11_000 })
    assert.strictEqual(recordFailure(once, 10_500, policy), once)
    assert.deepStrictEqual(recordFailure(once, 11_000, policy), { consecutiveFailures: 2, benchedUntil: 13_000 })
  })
})

interface Endpoint {
  readonly url: string
  /** "proxy" forwards to the node; "fail" answers HTTP 500. */
  mode: "proxy" | "fail"
  /** JSON-RPC methods received, in order. */
  readonly methods: Array<string>
}

const methodOf = Schema.decodeUnknownOption(Schema.parseJson(Schema.Struct({ method: Schema.String })))

/** A local JSON-RPC endpoint in front of `target`, closed with the scope. */
const endpoint = (target: string): Effect.Effect<Endpoint, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: ReturnType<typeof createServer>; endpoint: Endpoint }>((resume) => {
      const methods: Array<string> = []
      const state = { mode: "proxy" as Endpoint["mode"] }
      const server = createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          methods.push(Option.match(methodOf(body), { onNone: () => "?", onSome: (b) => b.method }))
          if (state.mode === "fail") return res.writeHead(500, { "content-type": "text/plain" }).end("upstream exploded")
          fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
            async (r) => res.writeHead(r.status, { "content-type": "application/json" }).end(await r.text()),
            () => res.writeHead(502).end()
          )
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const handle: Endpoint = {
          url: `http://127.0.0.1:${port}`,
          methods,
          get mode() { return state.mode },
          set mode(m) { state.mode = m }
        }
        resume(Effect.succeed({ server, endpoint: handle }))
      })
    }),
    ({ server }) => Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  ).pipe(Effect.map(({ endpoint }) => endpoint))

const refused = Effect.map(Anvil.freePort, (port) => `http://127.0.0.1:${port}`)

class Nodes extends Context.Tag("test/Nodes")<Nodes, { readonly a: AnvilInstance; readonly b: AnvilInstance }>() {}
const startAnvil = Effect.flatMap(Anvil.freePort, (port) => Anvil.start({ port })).pipe(
  Effect.retry({ times: 3, while: (e) => e.reason === "Exited" }),
  Effect.orDie
)
const NodesLive = Layer.scoped(Nodes, Effect.all({ a: startAnvil, b: startAnvil }, { concurrency: 2 }))

const defaults = {
  BILLING_RPC_RETRY_ATTEMPTS: "1",
  BILLING_RPC_RETRY_BASE_DELAY: "10 millis",
  BILLING_RPC_TIMEOUT: "2 seconds",
  BILLING_RPC_COOLDOWN: "5 seconds"
}

/** A fresh `Rpc` over a `crypto_config` row for `network`; every log line it writes lands in `logs`. */
const withRpc = <A, E, R>(
  network: string,
  urls: ReadonlyArray<string>,
  use: (rpc: Rpc, logs: ReadonlyArray<string>) => Effect.Effect<A, E, R>,
  config: Record<string, string> = {}
) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations)
      VALUES (${network}, 31337, ${JSON.stringify(urls)}::jsonb, 2)`
    const logs: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.map(Logger.logfmtLogger, (line) => void logs.push(line)))
    return yield* Effect.flatMap(Rpc, (rpc) => use(rpc, logs)).pipe(
      Effect.provide(Rpc.Default),
      Effect.provide(capture),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ ...defaults, ...config }))))
    )
  })

const count = <T>(metric: Metric.Metric<T, number, { readonly count: number }>, labels: Record<string, string>) =>
  Effect.map(Metric.value(labelled(metric, labels)), (s) => s.count)

const assertNoUrl = (texts: ReadonlyArray<string>, urls: ReadonlyArray<string>) => {
  for (const text of texts) {
    for (const url of urls) assert.notInclude(text, url.replace("http://", ""))
  }
}

/** PUSH1 0 PUSH1 0 REVERT: any call to it reverts. */
const REVERTER = "0x00000000000000000000000000000000000bad01" as const
const DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" as const

layer(Layer.merge(TestDatabase, NodesLive), { timeout: "60 seconds" })("Rpc failover (real anvil)", (it) => {
  const failoverToSecondary = (network: string, primary: (a: AnvilInstance) => Effect.Effect<string, never, Scope.Scope>) =>
    Effect.gen(function*() {
      const { a, b } = yield* Nodes
      const p0 = yield* primary(a)
      const p1 = yield* endpoint(b.rpcUrl)
      yield* withRpc(network, [p0, p1.url], (rpc, logs) =>
        Effect.gen(function*() {
          assert.strictEqual(yield* rpc.chainId(network), 31337)
          assert.deepStrictEqual(p1.methods, ["eth_chainId"])
          assert.strictEqual(yield* count(rpcFailoversTotal, { network, from: "0", to: "1" }), 1)
          assert.strictEqual(yield* count(rpcErrorsTotal, { network, endpoint: "0", retryable: "true" }), 1)
          assert.strictEqual((yield* Metric.value(labelled(rpcEndpointHealthy, { network, endpoint: "0" }))).value, 0)
          assert.deepStrictEqual(yield* rpc.health(network), [
            { index: 0, healthy: false, benched: true, consecutiveFailures: 1 },
            { index: 1, healthy: true, benched: false, consecutiveFailures: 0 }
          ])
          // While benched, calls go straight to the secondary.
          yield* Effect.repeatN(rpc.blockNumber(network), 4)
          assert.strictEqual(p1.methods.length, 6)
          assert.strictEqual(yield* count(rpcErrorsTotal, { network, endpoint: "0", retryable: "true" }), 1)
          assert.strictEqual(yield* count(rpcFailoversTotal, { network, from: "0", to: "1" }), 1)
          assert.isTrue(logs.some((l) => l.includes("failing over") && l.includes("from=0") && l.includes("to=1")))
          assertNoUrl(logs, [p0, p1.url])
        }))
    })

  it.scoped("primary answers HTTP 500: the secondary answers, the primary is benched and not hammered", () =>
    Effect.gen(function*() {
      let failing: Endpoint | undefined
      yield* failoverToSecondary("fo_500", (a) =>
        Effect.map(endpoint(a.rpcUrl), (e) => {
          e.mode = "fail"
          failing = e
          return e.url
        }))
      assert.deepStrictEqual(failing?.methods, ["eth_chainId"])
    }))

  it.scoped("primary refuses connections: same failover", () => failoverToSecondary("fo_refused", () => refused))

  it.scoped("a recovered primary is preferred again once its cooldown ends; failed probes lengthen the bench", () =>
    Effect.gen(function*() {
      const { a, b } = yield* Nodes
      const p0 = yield* endpoint(a.rpcUrl)
      const p1 = yield* endpoint(b.rpcUrl)
      const network = "fo_recover"
      p0.mode = "fail"
      yield* withRpc(network, [p0.url, p1.url], (rpc) =>
        Effect.gen(function*() {
          const primaryHealth = Effect.map(rpc.health(network), (h) => h[0]!)
          yield* rpc.blockNumber(network)
          p0.mode = "proxy"
          yield* TestClock.adjust("4999 millis")
          yield* rpc.blockNumber(network)
          assert.strictEqual(p0.methods.length, 1, "still benched: not tried")
          yield* TestClock.adjust("1 millis")
          yield* rpc.blockNumber(network)
          assert.strictEqual(p0.methods.length, 2, "the cooldown ended: probed first")
          assert.strictEqual(p1.methods.length, 2)
          assert.deepStrictEqual(yield* primaryHealth, { index: 0, healthy: true, benched: false, consecutiveFailures: 0 })
          assert.strictEqual((yield* Metric.value(labelled(rpcEndpointHealthy, { network, endpoint: "0" }))).value, 1)

          // Down again: 5 s bench; its probe fails: 10 s bench.
          p0.mode = "fail"
          yield* rpc.blockNumber(network)
          yield* TestClock.adjust("5 seconds")
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(yield* primaryHealth, { index: 0, healthy: false, benched: true, consecutiveFailures: 2 })
          yield* TestClock.adjust("9 seconds")
          yield* rpc.blockNumber(network)
          assert.strictEqual(p0.methods.length, 4)
          p0.mode = "proxy"
          yield* TestClock.adjust("1 second")
          yield* rpc.blockNumber(network)
          assert.strictEqual(p0.methods.length, 5)
          assert.isTrue((yield* primaryHealth).healthy)
          assert.strictEqual(yield* count(rpcFailoversTotal, { network, from: "0", to: "1" }), 3)
        }))
    }))

  it.scoped("a revert is an answer: exactly one request, no failover, no bench", () =>
    Effect.gen(function*() {
      const { a, b } = yield* Nodes
      yield* Effect.forEach([a, b], (node) =>
        Effect.promise(() =>
          createTestClient({ mode: "anvil", transport: http(node.rpcUrl) }).setCode({ address: REVERTER, bytecode: "0x60006000fd" })
        ))
      const p0 = yield* endpoint(a.rpcUrl)
      const p1 = yield* endpoint(b.rpcUrl)
      const network = "fo_revert"
      yield* withRpc(network, [p0.url, p1.url], (rpc) =>
        Effect.gen(function*() {
          const error = yield* rpc.estimateGas(network, { account: DEV_ACCOUNT, to: REVERTER, data: "0x", value: 0n }).pipe(
            Effect.catchTag("UnknownNetwork", Effect.die),
            Effect.flip
          )
          assert.isFalse(error.retryable)
          assert.strictEqual(error.endpoint, 0)
          assert.include(error.message, "revert")
          assert.deepStrictEqual([...p0.methods, ...p1.methods], ["eth_estimateGas"])
          assert.isTrue((yield* rpc.health(network)).every((h) => h.healthy))
          assertNoUrl([error.message], [p0.url, p1.url, a.rpcUrl])
        }), { BILLING_RPC_RETRY_ATTEMPTS: "3" })
    }))

  it.scoped("reload keeps the health of an unchanged endpoint list and resets a changed one", () =>
    Effect.gen(function*() {
      const { a, b } = yield* Nodes
      const p0 = yield* endpoint(a.rpcUrl)
      const p1 = yield* endpoint(b.rpcUrl)
      const network = "fo_reload"
      p0.mode = "fail"
      yield* withRpc(network, [p0.url, p1.url], (rpc) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* rpc.chainId(network)
          yield* rpc.reload
          assert.strictEqual((yield* rpc.health(network))[0]!.consecutiveFailures, 1)
          yield* sql`UPDATE crypto_config SET rpc_endpoints = ${JSON.stringify([p1.url, p0.url])}::jsonb
            WHERE network = ${network}`
          yield* rpc.reload
          assert.isTrue((yield* rpc.health(network)).every((h) => h.healthy && !h.benched))
          yield* rpc.chainId(network)
          assert.strictEqual(p0.methods.length, 1, "the new primary answered; the old one was not asked")
        }))
    }))

  it.scoped("live clock: all endpoints down fails with a URL-free RpcError; failover and return-to-primary timings", () =>
    TestServices.provideLive(Effect.gen(function*() {
      const { a, b } = yield* Nodes
      const p0 = yield* endpoint(a.rpcUrl)
      const p1 = yield* endpoint(b.rpcUrl)
      const dead = yield* refused
      const network = "fo_live"
      p0.mode = "fail"
      const measured = yield* withRpc(network, [p0.url, p1.url], (rpc, logs) =>
        Effect.gen(function*() {
          const [failover] = yield* Effect.timed(rpc.blockNumber(network))
          const benchedAt = p0.methods.length
          p0.mode = "proxy"
          const [back, viaSecondary] = yield* Effect.timed(
            Effect.suspend(() => Effect.as(rpc.blockNumber(network), p0.methods.length - benchedAt)).pipe(
              Effect.filterOrFail((n) => n > 0),
              Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo("5 seconds"))),
              Effect.zipRight(Effect.sync(() => p1.methods.length))
            )
          )
          assert.isAtLeast(viaSecondary, 2)
          assert.isAtLeast(Duration.toMillis(back), 90)
          assertNoUrl(logs, [p0.url, p1.url])
          return { failover_ms: Duration.toMillis(failover), back_to_primary_ms: Duration.toMillis(back), calls_via_secondary: viaSecondary }
        }), { BILLING_RPC_COOLDOWN: "100 millis" })

      p0.mode = "fail"
      const allDownMs = yield* withRpc("fo_down", [p0.url, dead], (rpc, logs) =>
        Effect.gen(function*() {
          const [took, error] = yield* Effect.timed(
            rpc.chainId("fo_down").pipe(Effect.catchTag("UnknownNetwork", Effect.die), Effect.flip)
          )
          assert.isTrue(error.retryable)
          assert.strictEqual(error.endpoint, 1)
          assert.strictEqual(p0.methods.filter((m) => m === "eth_chainId").length, 3, "three rounds, primary first each time")
          assert.deepStrictEqual((yield* rpc.health("fo_down")).map((h) => h.consecutiveFailures), [1, 1])
          assertNoUrl([error.message, ...logs], [p0.url, dead])
          return Duration.toMillis(took)
        }), { BILLING_RPC_RETRY_ATTEMPTS: "3" })
      yield* Effect.logInfo("rpc failover timings").pipe(Effect.annotateLogs({ ...measured, all_down_3_rounds_ms: allDownMs }))
    })))
})
