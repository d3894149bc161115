/**
 * Readiness from a background snapshot (services/Health.ts): the verdict rules as a pure function, then the service
 * against real PostgreSQL, NATS and anvil behind a counting RPC proxy, its refreshes driven by TestClock.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Context, Duration, Effect, Layer, Option, Stream, TestClock, TestContext } from "effect"
import { randomBytes } from "node:crypto"
import { assess, Health, PROBE_TIMEOUT, type Snapshot, STALE_AFTER_INTERVALS } from "../../services/Health.ts"
import { Nats } from "../../services/Nats.ts"
import { Rpc } from "../../services/Rpc.ts"
import { Anvil, type AnvilInstance } from "../../src/devnet/Anvil.ts"
import { Prefix } from "../../services/Subjects.ts"
import { TestDatabase } from "../support/database.ts"
import { rpcProxy } from "../support/rpcProxy.ts"

const INTERVAL = Duration.seconds(10)

describe("assess (pure)", () => {
  const snapshot = (checks: Snapshot["checks"]): Snapshot => ({ checkedAt: 1_000, checks })
  const allUp = { postgres: { ok: true }, nats: { ok: true }, "rpc:a": { ok: true } }

  it("ok when every check passed; degraded when only an RPC network failed", () => {
    assert.deepStrictEqual(assess(snapshot(allUp), 1_500, INTERVAL), { status: "ok", ageMillis: 500 })
    const rpcDown = { ...allUp, "rpc:b": { ok: false, detail: "timeout" } }
    assert.deepStrictEqual(assess(snapshot(rpcDown), 1_000, INTERVAL), { status: "degraded", ageMillis: 0 })
  })

  it("not ready when PostgreSQL or NATS failed, naming them", () => {
    const verdict = assess(snapshot({ ...allUp, postgres: { ok: false }, nats: { ok: false } }), 1_000, INTERVAL)
    assert.deepStrictEqual(verdict, { status: "not_ready", ageMillis: 0, reason: "postgres, nats unavailable" })
    assert.strictEqual(assess(snapshot({ "rpc:a": { ok: true } }), 1_000, INTERVAL).status, "not_ready", "a missing check is a failed one")
  })

  it("a snapshot older than a few intervals (the refresher stopped) is not ready", () => {
    const limit = STALE_AFTER_INTERVALS * Duration.toMillis(INTERVAL) + Duration.toMillis(PROBE_TIMEOUT)
    assert.strictEqual(assess(snapshot(allUp), 1_000 + limit, INTERVAL).status, "ok")
    const stale = assess(snapshot(allUp), 1_000 + limit + 1, INTERVAL)
    assert.strictEqual(stale.status, "not_ready")
    assert.include(stale.status === "not_ready" ? stale.reason : "", "stale")
  })
})

class Node extends Context.Tag("test/Node")<Node, AnvilInstance>() {}
const NodeLive = Layer.scoped(Node, Effect.flatMap(Anvil.freePort, (port) => Anvil.start({ port })).pipe(
  Effect.retry({ times: 3, while: (e) => e.reason === "Exited" }),
  Effect.orDie
))

/** NATS under a prefix of this file, its streams deleted afterwards. */
const NatsLive = Layer.unwrapScoped(Effect.gen(function*() {
  const prefix = Prefix.make(`H${randomBytes(5).toString("hex")}`)
  const nats = Context.get(yield* Layer.build(Nats.layerWith({ prefix })).pipe(Effect.orDie), Nats)
  yield* Effect.addFinalizer(() =>
    Effect.forEach(Object.values(nats.subjects.streams), (name) =>
      nats.use(`delete ${name}`, ({ jsm }) => jsm.streams.delete(name)).pipe(Effect.orDie), { discard: true }))
  return Layer.succeed(Nats, nats)
}))

const config = ConfigProvider.fromMap(new Map([
  ["BILLING_HEALTH_INTERVAL", "10 seconds"],
  ["BILLING_RPC_RETRY_ATTEMPTS", "1"],
  ["BILLING_RPC_ALLOW_LOOPBACK", "true"]
]))

/** A `Health` (and the `Rpc` it probes) over `crypto_config` row `network` -> the proxy, on TestClock. */
const withHealth = <A, E>(network: string, url: string, use: (health: Health) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Removed afterwards: the next test's Health would probe this network's closed proxy.
    yield* Effect.acquireRelease(
      sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations)
        VALUES (${network}, 31337, ${JSON.stringify([url])}::jsonb, 2)`,
      () => sql`DELETE FROM crypto_config WHERE network = ${network}`.pipe(Effect.orDie)
    )
    return yield* Effect.flatMap(Health, use).pipe(
      Effect.provide(Health.Default.pipe(Layer.provide(Rpc.Default))),
      Effect.withConfigProvider(config)
    )
  }).pipe(Effect.provide(TestContext.TestContext))

/** Waits (no clock involved) for the first snapshot taken after `after`. */
const nextSnapshot = (health: Health, after: number) =>
  health.snapshots.pipe(
    Stream.filter((s) => s.checkedAt > after),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

layer(Layer.mergeAll(TestDatabase, NatsLive, NodeLive), { timeout: "60 seconds", excludeTestServices: true })(
  "Health (real PostgreSQL, NATS, anvil)",
  (it) => {
    it.scoped("readiness reads cost the node nothing; the background refresh probes once per interval", () =>
      Effect.gen(function*() {
        const node = yield* Node
        const proxy = yield* rpcProxy(node.rpcUrl)
        yield* withHealth("h_reads", proxy.url, (health) =>
          Effect.gen(function*() {
            const first = yield* health.readiness
            assert.deepStrictEqual(first.assessment, { status: "ok", ageMillis: 0 })
            assert.deepStrictEqual(first.snapshot.checks["rpc:h_reads"], { ok: true })
            const probed = yield* proxy.requests
            // The Rpc service proves the endpoint's chain id once, then the snapshot reads one block number.
            assert.strictEqual(probed, 2, "the first snapshot is eth_chainId (the proof) and one eth_blockNumber")

            const verdicts = yield* Effect.replicateEffect(health.readiness, 200)
            assert.isTrue(verdicts.every((v) => v.assessment.status === "ok"))
            assert.strictEqual(yield* proxy.requests, probed, "200 readiness reads, no RPC request")

            yield* TestClock.adjust(INTERVAL)
            const next = yield* nextSnapshot(health, first.snapshot.checkedAt)
            assert.strictEqual(next.checkedAt, Duration.toMillis(INTERVAL))
            assert.strictEqual(yield* proxy.requests, probed + 1, "one probe per refresh")
          }))
      }))

    it.scoped("an RPC outage shows as degraded after the next refresh, and recovery likewise", () =>
      Effect.gen(function*() {
        const node = yield* Node
        const proxy = yield* rpcProxy(node.rpcUrl)
        yield* withHealth("h_outage", proxy.url, (health) =>
          Effect.gen(function*() {
            const status = Effect.map(health.readiness, (r) => r.assessment.status)
            const start = (yield* health.readiness).snapshot.checkedAt
            assert.strictEqual(yield* status, "ok")

            yield* proxy.setMode("fail")
            assert.strictEqual(yield* status, "ok", "nothing is probed until the next refresh")
            yield* TestClock.adjust(INTERVAL)
            const broken = yield* nextSnapshot(health, start)
            assert.deepStrictEqual(broken.checks["rpc:h_outage"], { ok: false, detail: "unreachable" })
            assert.isTrue(broken.checks["postgres"]?.ok && broken.checks["nats"]?.ok)
            assert.strictEqual(yield* status, "degraded")

            yield* proxy.setMode("down")
            yield* TestClock.adjust(INTERVAL)
            const refused = yield* nextSnapshot(health, broken.checkedAt)
            assert.deepStrictEqual(refused.checks["rpc:h_outage"], { ok: false, detail: "unreachable" })

            yield* proxy.setMode("proxy")
            yield* TestClock.adjust(INTERVAL)
            const back = yield* nextSnapshot(health, refused.checkedAt)
            assert.deepStrictEqual(back.checks["rpc:h_outage"], { ok: true })
            assert.strictEqual(yield* status, "ok")
          }))
      }))
  }
)
