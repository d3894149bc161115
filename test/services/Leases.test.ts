/**
 * Leadership by PostgreSQL advisory lock (services/Leases.ts), against a real server: two contenders with
 * pools of their own on one fresh database, then two whole service instances sharing one database and NATS.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Clock, Context, Effect, Fiber, Layer, Ref, Schedule } from "effect"
import { pgLayer } from "../../services/Database.ts"
import { Leases } from "../../services/Leases.ts"
import { Nats } from "../../services/Nats.ts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { App, appHarness, eventually, type Harness, registerContractAndPlan } from "../support/app.ts"
import { freshDatabaseUrl } from "../support/database.ts"
import { leaseContenders, leaseHolders, terminateBackend } from "../support/leases.ts"
import { mine, payWithoutWebhook, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"
import { tcpProxy } from "../support/tcpProxy.ts"

/** Heartbeat and retry period of the contenders below. */
const EVERY = 100

type Pool = Context.Context<SqlClient.SqlClient>
class Pools extends Context.Tag("test/Pools")<Pools, { readonly a: Pool; readonly b: Pool; readonly url: string }>() {}

/** Two pools (as two processes would have) on one fresh database. */
const PoolsLive = Layer.scoped(Pools, Effect.gen(function*() {
  const { url } = yield* freshDatabaseUrl
  return { a: yield* Layer.build(pgLayer(url)), b: yield* Layer.build(pgLayer(url)), url }
}))

interface Mark {
  readonly who: string
  readonly what: "start" | "stop"
  readonly at: number
}

/** Contenders for one lease, each recording when its leased work starts and stops. */
const contenders = (lease: string) =>
  Effect.gen(function*() {
    const marks = yield* Ref.make<ReadonlyArray<Mark>>([])
    const mark = (who: string, what: Mark["what"]) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => Ref.update(marks, (ms) => [...ms, { who, what, at }]))
    const work = (who: string) => Effect.zipRight(mark(who, "start"), Effect.never).pipe(Effect.onInterrupt(() => mark(who, "stop")))
    const join = (who: string, pool: Pool) =>
      Effect.flatMap(Leases, (leases) => leases.whileLeader(lease, work(who), `${EVERY} millis`)).pipe(
        Effect.provide(Leases.Default),
        Effect.provide(pool),
        Effect.forkScoped
      )
    /** Who runs the work now. */
    const running = Effect.map(Ref.get(marks), (ms) =>
      [...new Set(ms.map((m) => m.who))].filter((who) => ms.filter((m) => m.who === who && m.what === "start").length >
        ms.filter((m) => m.who === who && m.what === "stop").length))
    const at = (who: string, what: Mark["what"], nth = 1) =>
      Effect.map(Ref.get(marks), (ms) => ms.filter((m) => m.who === who && m.what === what)[nth - 1]?.at ?? Number.NaN)
    return { join, running, at, marks: Ref.get(marks) } as const
  })

/** Exactly `who` leads, checked again over ten retry periods of the others. */
const onlyLeader = (c: Effect.Effect.Success<ReturnType<typeof contenders>>, who: string) =>
  c.running.pipe(
    Effect.filterOrFail((r) => r.length === 1 && r[0] === who, (r) => new Error(`expected only ${who} to lead, running: ${r}`)),
    Effect.repeat(Schedule.spaced(`${EVERY} millis`).pipe(Schedule.intersect(Schedule.recurs(10))))
  )

layer(PoolsLive, { timeout: 45_000, excludeTestServices: true })("whileLeader with two contenders", (it) => {
  it.scoped("exactly one runs the work; interrupting it hands the lease to the other within a few periods", () =>
    Effect.gen(function*() {
      const { a, b } = yield* Pools
      const c = yield* contenders("x")
      const fibers = { a: yield* c.join("a", a), b: yield* c.join("b", b) }
      const [leader] = yield* eventually(c.running, (r) => r.length === 1, "a leader")
      const other = leader === "a" ? "b" : "a"
      yield* onlyLeader(c, leader!)
      assert.strictEqual((yield* c.marks).length, 1, "the other never started")
      assert.strictEqual((yield* leaseHolders("x").pipe(Effect.provide(a))).length, 1)

      const t0 = yield* Clock.currentTimeMillis
      yield* Fiber.interrupt(fibers[leader as "a" | "b"])
      yield* eventually(c.running, (r) => r.length === 1 && r[0] === other, "the other to take over")
      const takeover = (yield* c.at(other, "start")) - t0
      assert.isAtMost(yield* c.at(leader!, "stop"), yield* c.at(other, "start"), "no overlap on a clean stop")
      assert.isBelow(takeover, 5 * EVERY)
      yield* onlyLeader(c, other)
      yield* Effect.logWarning("lease handover after interrupt").pipe(Effect.annotateLogs({ takeover_ms: takeover }))
    }))

  it.scoped("the leader's connection is killed: the other takes over, the old leader stops its work and waits", () =>
    Effect.gen(function*() {
      const { a, b } = yield* Pools
      const c = yield* contenders("x-kill")
      const fibers = { a: yield* c.join("a", a), b: yield* c.join("b", b) }
      const [leader] = yield* eventually(c.running, (r) => r.length === 1, "a leader")
      const other = leader === "a" ? "b" : "a"
      const [pid, ...more] = yield* leaseHolders("x-kill").pipe(Effect.provide(a))
      assert.deepStrictEqual(more, [])

      const t0 = yield* Clock.currentTimeMillis
      yield* terminateBackend(pid!).pipe(Effect.provide(a))
      yield* eventually(c.running, (r) => r.length === 1 && r[0] === other, "the other to lead and the old leader to stop")
      const takeover = (yield* c.at(other, "start")) - t0
      const stopped = (yield* c.at(leader!, "stop")) - t0
      // The killed leader learns of it at its next heartbeat; until then both may run (bounded by one period).
      const overlap = Math.max(0, stopped - takeover)
      assert.isBelow(takeover, 5 * EVERY)
      assert.isBelow(stopped, 5 * EVERY)
      assert.isBelow(overlap, 2 * EVERY)
      const [holder] = yield* leaseHolders("x-kill").pipe(Effect.provide(b))
      assert.isTrue(holder !== undefined && holder !== pid)

      // The old leader is a contender again: it leads once the new leader goes.
      yield* Fiber.interrupt(fibers[other])
      yield* eventually(c.at(leader!, "start", 2), (at) => !Number.isNaN(at), "the old leader to lead again")
      yield* onlyLeader(c, leader!)
      yield* Effect.logWarning("lease handover after a killed connection").pipe(
        Effect.annotateLogs({ takeover_ms: takeover, old_leader_stopped_ms: stopped, overlap_ms: overlap })
      )
    }))

  it.scoped("a leader cut off from PostgreSQL without a word (no reset) stops its work within a few heartbeats", () =>
    Effect.gen(function*() {
      const { b, url } = yield* Pools
      const proxy = yield* tcpProxy({ host: "127.0.0.1", port: 5432 })
      const proxied = new URL(url)
      proxied.port = String(proxy.port)
      const a = yield* Layer.build(pgLayer(proxied.toString()))
      const c = yield* contenders("x-silent")
      yield* c.join("a", a)
      yield* eventually(c.running, (r) => r[0] === "a", "a to lead")
      yield* c.join("b", b)
      // Runs before the pool closes: whatever hangs on the frozen link fails then.
      yield* Effect.addFinalizer(() => proxy.cut)

      // The link goes silent and the server ends a's session (its keepalive, a failover): the lock is free.
      yield* proxy.freeze
      const [pid] = yield* leaseHolders("x-silent").pipe(Effect.provide(b))
      const t0 = yield* Clock.currentTimeMillis
      yield* terminateBackend(pid!).pipe(Effect.provide(b))
      yield* eventually(c.running, (r) => r.length === 1 && r[0] === "b", "b to lead and a to stop")
      const stopped = (yield* c.at("a", "stop")) - t0
      const takeover = (yield* c.at("b", "start")) - t0
      assert.isBelow(stopped, 5 * EVERY, "a stopped its work: it can no longer show it holds the lock")
      yield* Effect.logWarning("lease lost over a silent link").pipe(
        Effect.annotateLogs({ takeover_ms: takeover, old_leader_stopped_ms: stopped, overlap_ms: Math.max(0, stopped - takeover) })
      )
    }))
})

const PRICES = { native: 10n ** 16n, token: 1_000_000n }
const LISTENER = "chain-listener:anvil"

/** Pays from each account without webhooks (only a listener can find them) and waits until all are confirmed once. */
const payAndSettle = (app: Harness, tag: string, accounts: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const ids = yield* Effect.forEach(accounts, (account) => Effect.map(payWithoutWebhook(app, "lead", `${tag}-${account}`, account), ({ checkout }) => checkout.transaction_id))
    yield* mine(app, 1)
    yield* Effect.forEach(ids, (id) => waitForStatus(id, "confirmed"), { discard: true })
    return ids
  })

/** Stream messages, Minted logs on chain, ledger transactions and the listener's lock holders, side by side. */
const tally = (app: Harness) =>
  Effect.gen(function*() {
    const nats = yield* Nats
    const sql = yield* SqlClient.SqlClient
    const stream = yield* nats.use("streams.info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.chain)).pipe(Effect.orDie)
    const minted = yield* Effect.promise(() =>
      app.devnet.publicClient.getContractEvents({
        address: app.devnet.info.contract_address,
        abi: SubscriptionPassAbi,
        eventName: "Minted",
        fromBlock: 0n,
        toBlock: "latest"
      }))
    const [ledger] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_transactions`
    return { messages: stream.state.messages, lastSeq: stream.state.last_seq, minted: minted.length, ledger: ledger!.n }
  })

layer(appHarness({ env: { BILLING_LISTENER_POLL: "200 millis" } }), { timeout: 60_000, excludeTestServices: true })(
  "two service instances",
  (it) => {
    it.scoped("one active listener per network; chain events published once, also across a handover", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* registerContractAndPlan(app, "lead", PRICES)
        yield* app.startInstance
        // One holds the listener's lock; the other instance keeps trying for it.
        const [leader, ...more] = yield* eventually(leaseHolders(LISTENER), (pids) => pids.length === 1, "one listener lock")
        assert.deepStrictEqual(more, [])
        yield* eventually(leaseContenders, (pids) => pids.some((p) => p !== leader), "the other instance to contend")

        const first = yield* payAndSettle(app, "one", [1, 2, 3])
        assert.deepStrictEqual(yield* leaseHolders(LISTENER), [leader])
        assert.deepStrictEqual(yield* tally(app), { messages: 3, lastSeq: 3, minted: 3, ledger: 3 })

        // Kill the leading listener's session: some instance takes over, still alone, still publishing each log once.
        yield* terminateBackend(leader!)
        const [next, ...also] = yield* eventually(
          leaseHolders(LISTENER),
          (pids) => pids.length === 1 && pids[0] !== leader,
          "a new listener lock holder"
        )
        assert.deepStrictEqual(also, [])
        const second = yield* payAndSettle(app, "two", [4, 5])
        assert.deepStrictEqual(yield* leaseHolders(LISTENER), [next])
        assert.deepStrictEqual(yield* tally(app), { messages: 5, lastSeq: 5, minted: 5, ledger: 5 })
        assert.strictEqual(new Set([...first, ...second]).size, 5)
        assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
      }))
  }
)
