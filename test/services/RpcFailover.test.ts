/**
 * RPC failover against real nodes: two anvils (chain 31337) behind local HTTP endpoints that count the
 * JSON-RPC methods they receive and can be switched between proxying and answering HTTP 500, plus a port
 * nobody listens on. Every endpoint is probed with eth_chainId when the service starts and again after it
 * failed. Cooldowns run on TestClock; the one live test measures real latencies.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Metric, Schedule, type Scope, TestClock, TestServices } from "effect"
import { createTestClient, http } from "viem"
import { labelled, rpcEndpointHealthy, rpcErrorsTotal, rpcFailoversTotal } from "../../services/Metrics.ts"
import { cooldownMillis, endpointOrder, healthyEndpoint, recordFailure, recordRefusal } from "../../services/RpcError.ts"
import { Anvil, type AnvilInstance } from "../../src/devnet/Anvil.ts"
import { assertNoUrl, count, type Endpoint, endpoint, withRpc } from "../support/countingEndpoint.ts"
import { TestDatabase } from "../support/database.ts"
import { rpcProxy } from "../support/rpcProxy.ts"

describe("endpoint bench policy (pure)", () => {
  const policy = { cooldownMillis: 1_000, maxCooldownMillis: 5_000 }
  it("healthy endpoints in priority order first, benched ones last, soonest back first", () => {
    const benched = (until: number) => ({ consecutiveFailures: 1, benchedUntil: until })
    assert.deepStrictEqual(endpointOrder([healthyEndpoint, healthyEndpoint, healthyEndpoint], 0), [0, 1, 2])
    assert.deepStrictEqual(endpointOrder([benched(900), healthyEndpoint, benched(500)], 100), [1, 2, 0])
    // A bench that has ended puts the endpoint back in its priority slot: the primary is probed first.
    assert.deepStrictEqual(endpointOrder([benched(900), healthyEndpoint], 900), [0, 1])
    // Refused (another chain, or outside the policy): not even a last resort until its bench ends.
    const refused = recordRefusal(healthyEndpoint, 0, { cooldownMillis: 1_000, maxCooldownMillis: 5_000 })
    assert.deepStrictEqual(endpointOrder([refused, benched(500)], 100), [1])
    assert.deepStrictEqual(endpointOrder([refused], 999), [])
    assert.deepStrictEqual(endpointOrder([refused, benched(500)], 1_000), [0, 1])
  })
  it("the cooldown doubles with each failed probe up to the cap; failures while benched change nothing", () => {
    assert.deepStrictEqual([1, 2, 3, 4, 10].map((n) => cooldownMillis(policy, n)), [1_000, 2_000, 4_000, 5_000, 5_000])
    const once = recordFailure(healthyEndpoint, 10_000, policy)
    assert.deepStrictEqual(once, { consecutiveFailures: 1, benchedUntil: 11_000 })
    assert.strictEqual(recordFailure(once, 10_500, policy), once)
    assert.deepStrictEqual(recordFailure(once, 11_000, policy), { consecutiveFailures: 2, benchedUntil: 13_000 })
  })
})

const refused = Effect.map(Anvil.freePort, (port) => `http://127.0.0.1:${port}`)

class Nodes extends Context.Tag("test/Nodes")<Nodes, { readonly a: AnvilInstance; readonly b: AnvilInstance }>() {}
const startAnvil = Effect.flatMap(Anvil.freePort, (port) => Anvil.start({ port })).pipe(
  Effect.retry({ times: 3, while: (e) => e.reason === "Exited" }),
  Effect.orDie
)
const NodesLive = Layer.scoped(Nodes, Effect.all({ a: startAnvil, b: startAnvil }, { concurrency: 2 }))

/** PUSH1 0 PUSH1 0 REVERT: any call to it reverts. */
const REVERTER = "0x00000000000000000000000000000000000bad01" as const
const DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" as const

layer(Layer.merge(TestDatabase, NodesLive), { timeout: "60 seconds" })("Rpc failover (real anvil)", (it) => {
  /** Both endpoints proven at start-up; then the primary breaks and the next call fails over. */
  const failoverToSecondary = (
    network: string,
    primary: (a: AnvilInstance) => Effect.Effect<{ readonly url: string; readonly fail: Effect.Effect<void> }, never, Scope.Scope>
  ) =>
    Effect.gen(function*() {
      const { a, b } = yield* Nodes
      const p0 = yield* primary(a)
      const p1 = yield* endpoint(b.rpcUrl)
      yield* withRpc(network, [p0.url, p1.url], (rpc, logs) =>
        Effect.gen(function*() {
          assert.deepStrictEqual(p1.methods, ["eth_chainId"], "probed at start-up")
          yield* p0.fail
          assert.strictEqual(yield* rpc.chainId(network), 31337)
          assert.deepStrictEqual(p1.methods, ["eth_chainId", "eth_chainId"])
          assert.strictEqual(yield* count(rpcFailoversTotal, { network, from: "0", to: "1" }), 1)
          assert.strictEqual(yield* count(rpcErrorsTotal, { network, endpoint: "0", retryable: "true" }), 1)
          assert.strictEqual((yield* Metric.value(labelled(rpcEndpointHealthy, { network, endpoint: "0" }))).value, 0)
          assert.deepStrictEqual(yield* rpc.health(network), [
            { index: 0, healthy: false, benched: true, consecutiveFailures: 1 },
            { index: 1, healthy: true, benched: false, consecutiveFailures: 0 }
          ])
          // While benched, calls go straight to the secondary.
          yield* Effect.repeatN(rpc.blockNumber(network), 4)
          assert.strictEqual(p1.methods.length, 7)
          assert.strictEqual(yield* count(rpcErrorsTotal, { network, endpoint: "0", retryable: "true" }), 1)
          assert.strictEqual(yield* count(rpcFailoversTotal, { network, from: "0", to: "1" }), 1)
          assert.isTrue(logs.some((l) => l.includes("failing over") && l.includes("from=0") && l.includes("to=1")))
          assertNoUrl(logs, [p0.url, p1.url])
        }))
    })

  it.scoped("primary answers HTTP 500: the secondary answers, the primary is benched and not hammered", () =>
    Effect.gen(function*() {
      let failing: Endpoint | undefined
      yield* failoverToSecondary("fo_500", (a) =>
        Effect.map(endpoint(a.rpcUrl), (e) => {
          failing = e
          return { url: e.url, fail: Effect.sync(() => void (e.mode = "fail")) }
        }))
      assert.deepStrictEqual(failing?.methods, ["eth_chainId", "eth_chainId"], "its start-up probe, then the one failed call")
    }))

  it.scoped("primary refuses connections: same failover", () =>
    failoverToSecondary("fo_refused", (a) => Effect.map(rpcProxy(a.rpcUrl), (p) => ({ url: p.url, fail: p.setMode("down") }))))

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
          // Its start-up probe failed: benched from the start, no failover needed.
          yield* rpc.blockNumber(network)
          p0.mode = "proxy"
          yield* TestClock.adjust("4999 millis")
          yield* rpc.blockNumber(network)
          assert.strictEqual(p0.methods.length, 1, "still benched: not tried")
          yield* TestClock.adjust("1 millis")
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(p0.methods, ["eth_chainId", "eth_chainId", "eth_blockNumber"], "the cooldown ended: proven again, then used")
          assert.strictEqual(p1.methods.length, 3)
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
          assert.strictEqual(p0.methods.length, 5)
          p0.mode = "proxy"
          yield* TestClock.adjust("1 second")
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(p0.methods.slice(5), ["eth_chainId", "eth_blockNumber"])
          assert.isTrue((yield* primaryHealth).healthy)
          assert.strictEqual(yield* count(rpcFailoversTotal, { network, from: "0", to: "1" }), 2)
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
          assert.deepStrictEqual([p0.methods, p1.methods], [["eth_chainId", "eth_estimateGas"], ["eth_chainId"]])
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
          assert.strictEqual(p0.methods.length, 1, "an unchanged list is not probed again")
          p0.mode = "proxy"
          yield* sql`UPDATE crypto_config SET rpc_endpoints = ${JSON.stringify([p1.url, p0.url])}::jsonb
            WHERE network = ${network}`
          yield* rpc.reload
          assert.isTrue((yield* rpc.health(network)).every((h) => h.healthy && !h.benched))
          assert.deepStrictEqual(p0.methods, ["eth_chainId", "eth_chainId"], "a changed list is probed anew")
          yield* rpc.chainId(network)
          assert.strictEqual(p0.methods.length, 2, "the new primary answered; the old one was not asked")
        }))
    }))

  it.scoped("live clock: all endpoints down fails with a URL-free RpcError; failover and return-to-primary timings", () =>
    TestServices.provideLive(Effect.gen(function*() {
      const { a, b } = yield* Nodes
      const p0 = yield* endpoint(a.rpcUrl)
      const p1 = yield* endpoint(b.rpcUrl)
      const dead = yield* refused
      const network = "fo_live"
      const measured = yield* withRpc(network, [p0.url, p1.url], (rpc, logs) =>
        Effect.gen(function*() {
          p0.mode = "fail"
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
      // Every configured network is probed at start-up: only fo_down's probes are counted below.
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM crypto_config WHERE network = ${network}`)
      const probesBefore = p0.methods.filter((m) => m === "eth_chainId").length
      const allDownMs = yield* withRpc("fo_down", [p0.url, dead], (rpc, logs) =>
        Effect.gen(function*() {
          const [took, error] = yield* Effect.timed(
            rpc.chainId("fo_down").pipe(Effect.catchTag("UnknownNetwork", Effect.die), Effect.flip)
          )
          assert.isTrue(error.retryable)
          // Both were benched by their concurrent start-up probes: the last one tried is either.
          assert.include([0, 1], error.endpoint)
          assert.strictEqual(p0.methods.filter((m) => m === "eth_chainId").length - probesBefore, 4, "its start-up probe, then three rounds")
          assert.deepStrictEqual((yield* rpc.health("fo_down")).map((h) => h.consecutiveFailures), [1, 1])
          assertNoUrl([error.message, ...logs], [p0.url, dead])
          return Duration.toMillis(took)
        }), { BILLING_RPC_RETRY_ATTEMPTS: "3" })
      yield* Effect.logInfo("rpc failover timings").pipe(Effect.annotateLogs({ ...measured, all_down_3_rounds_ms: allDownMs }))
    })))
})
