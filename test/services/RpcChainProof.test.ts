/**
 * An RPC endpoint is trusted only after it answered eth_chainId with its network's chain id: two anvils of
 * different chain ids behind counting endpoints. A node of another chain never receives a read; it is re-probed
 * after its cooldown (TestClock) and trusted again once it answers the right chain.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer, Metric, TestClock } from "effect"
import { labelled, rpcChainMismatchTotal, rpcEndpointHealthy } from "../../services/Metrics.ts"
import { Anvil, type AnvilInstance } from "../../src/devnet/Anvil.ts"
import { assertNoUrl, count, endpoint, withRpc } from "../support/countingEndpoint.ts"
import { TestDatabase } from "../support/database.ts"

class Nodes extends Context.Tag("test/ChainNodes")<Nodes, { readonly right: AnvilInstance; readonly wrong: AnvilInstance }>() {}
const startAnvil = (chainId: number) =>
  Effect.flatMap(Anvil.freePort, (port) => Anvil.start({ port, chainId })).pipe(
    Effect.retry({ times: 3, while: (e) => e.reason === "Exited" }),
    Effect.orDie
  )
const NodesLive = Layer.scoped(Nodes, Effect.all({ right: startAnvil(31337), wrong: startAnvil(31338) }, { concurrency: 2 }))

const healthy = (network: string, index: number) =>
  Effect.map(Metric.value(labelled(rpcEndpointHealthy, { network, endpoint: String(index) })), (g) => g.value)
const reads = (methods: ReadonlyArray<string>) => methods.filter((m) => m !== "eth_chainId")

layer(Layer.merge(TestDatabase, NodesLive), { timeout: "60 seconds" })("RPC endpoints prove their chain id", (it) => {
  it.scoped("an endpoint on another chain never serves a read: unhealthy, counted, logged without its URL, re-probed after its cooldown", () =>
    Effect.gen(function*() {
      const { right, wrong } = yield* Nodes
      const p0 = yield* endpoint(wrong.rpcUrl)
      const p1 = yield* endpoint(right.rpcUrl)
      const network = "cp_mismatch"
      yield* withRpc(network, [p0.url, p1.url], (rpc, logs) =>
        Effect.gen(function*() {
          // Probed at start-up: refused at once.
          assert.strictEqual(yield* count(rpcChainMismatchTotal, { network, endpoint: "0" }), 1)
          assert.strictEqual(yield* healthy(network, 0), 0)
          assert.strictEqual(yield* healthy(network, 1), 1)
          const line = logs.find((l) => l.includes("level=ERROR") && l.includes("answered chain id 31338, expected 31337"))
          assert.isDefined(line)
          assert.include(line, "endpoint=0")
          assert.include(line, "answered_chain_id=31338")
          assert.include(line, "expected_chain_id=31337")

          for (let i = 0; i < 3; i++) yield* rpc.blockNumber(network)
          assert.strictEqual(yield* rpc.chainId(network), 31337)
          assert.deepStrictEqual(p0.methods, ["eth_chainId"])
          assert.deepStrictEqual((yield* rpc.health(network))[0], { index: 0, healthy: false, benched: true, consecutiveFailures: 1 })

          // Not even a last resort: with the right endpoint failing, the call fails rather than read from another chain.
          p1.mode = "fail"
          const error = yield* rpc.blockNumber(network).pipe(Effect.catchTag("UnknownNetwork", Effect.die), Effect.flip)
          assert.strictEqual(error.endpoint, 1)
          assert.deepStrictEqual(p0.methods, ["eth_chainId"])

          // After its cooldown it is probed again, still the wrong chain: counted again, still no read.
          p1.mode = "proxy"
          yield* TestClock.adjust("5 seconds")
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(p0.methods, ["eth_chainId", "eth_chainId"])
          assert.strictEqual(yield* count(rpcChainMismatchTotal, { network, endpoint: "0" }), 2)
          // The refused endpoint's bench doubles with each failed probe, as for any failure.
          yield* TestClock.adjust("9 seconds")
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(p0.methods, ["eth_chainId", "eth_chainId"])
          assertNoUrl(logs, [p0.url, p1.url, wrong.rpcUrl, right.rpcUrl])
        }))
    }))

  it.scoped("an endpoint that comes back on the right chain is trusted again; one that fails must prove itself again", () =>
    Effect.gen(function*() {
      const { right, wrong } = yield* Nodes
      const p0 = yield* endpoint(wrong.rpcUrl)
      const p1 = yield* endpoint(right.rpcUrl)
      const network = "cp_back"
      yield* withRpc(network, [p0.url, p1.url], (rpc) =>
        Effect.gen(function*() {
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(reads(p0.methods), [])
          // The operator repoints the node behind the same URL at the right chain.
          p0.target = right.rpcUrl
          yield* TestClock.adjust("5 seconds")
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(p0.methods, ["eth_chainId", "eth_chainId", "eth_blockNumber"])
          assert.strictEqual(yield* healthy(network, 0), 1)
          assert.isTrue((yield* rpc.health(network))[0]!.healthy)

          // A failure is a reconnect: the next use proves the chain id first, and a node now on another chain is caught.
          p0.mode = "fail"
          yield* rpc.blockNumber(network)
          p0.mode = "proxy"
          p0.target = wrong.rpcUrl
          yield* TestClock.adjust("5 seconds")
          const before = p0.methods.length
          yield* rpc.blockNumber(network)
          assert.deepStrictEqual(p0.methods.slice(before), ["eth_chainId"])
          assert.strictEqual(yield* count(rpcChainMismatchTotal, { network, endpoint: "0" }), 2)
        }))
    }))

  it.scoped("a network whose every endpoint is on another chain fails its calls without reading", () =>
    Effect.gen(function*() {
      const { wrong } = yield* Nodes
      const p0 = yield* endpoint(wrong.rpcUrl)
      const network = "cp_none"
      yield* withRpc(network, [p0.url], (rpc) =>
        Effect.gen(function*() {
          const error = yield* rpc.blockNumber(network).pipe(Effect.catchTag("UnknownNetwork", Effect.die), Effect.flip)
          assert.isTrue(error.retryable)
          assert.strictEqual(error.endpoint, -1)
          assert.deepStrictEqual(p0.methods, ["eth_chainId"])
        }))
    }))

  it.scoped("a stored endpoint outside the endpoint policy is never contacted; a changed chain id is probed anew", () =>
    Effect.gen(function*() {
      const { right } = yield* Nodes
      const p0 = yield* endpoint(right.rpcUrl)
      const network = "cp_policy"
      // Loopback is not allowed here: a row written before the policy existed (or by hand) stays unused.
      yield* withRpc(network, [p0.url], (rpc, logs) =>
        Effect.gen(function*() {
          const error = yield* rpc.blockNumber(network).pipe(Effect.catchTag("UnknownNetwork", Effect.die), Effect.flip)
          assert.strictEqual(error.endpoint, -1)
          assert.deepStrictEqual(p0.methods, [])
          assert.isTrue(logs.some((l) => l.includes("level=ERROR") && l.includes("loopback")))
          assertNoUrl(logs, [p0.url])
        }), { BILLING_RPC_ALLOW_LOOPBACK: "false" })

      const sql = yield* SqlClient.SqlClient
      yield* sql`DELETE FROM crypto_config WHERE network = ${network}`
      yield* withRpc(network, [p0.url], (rpc) =>
        Effect.gen(function*() {
          yield* rpc.blockNumber(network)
          const probes = p0.methods.filter((m) => m === "eth_chainId").length
          yield* sql`UPDATE crypto_config SET chain_id = 31338 WHERE network = ${network}`
          yield* rpc.reload
          assert.strictEqual(p0.methods.filter((m) => m === "eth_chainId").length, probes + 1)
          assert.isFalse((yield* rpc.health(network))[0]!.healthy)
          assert.strictEqual(yield* count(rpcChainMismatchTotal, { network, endpoint: "0" }), 1)
        }))
    }))
})
