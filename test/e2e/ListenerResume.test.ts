/**
 * The ChainListener killed mid-range resumes from its cursor: nothing missed, nothing done twice.
 *
 * Each tick scans one block (`BILLING_LISTENER_MAX_RANGE=1`) and no payment gets a webhook, so the listener
 * alone finds them. The leading listener's session is killed and the test holds the lease so it cannot come
 * back; payments land in separate blocks; a second listener (same database and NATS, driven tick by tick)
 * publishes part of the range and "crashes" after publishing but before its cursor and logs were saved; then
 * the lease goes back to the service, whose listener re-publishes what was lost (JetStream drops the repeats
 * by msg id) and finishes the range.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Scope } from "effect"
import { ChainState } from "../../services/ChainState.ts"
import { Contracts } from "../../services/Contracts.ts"
import { Nats } from "../../services/Nats.ts"
import { Rpc } from "../../services/Rpc.ts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { makeListener } from "../../streams/ChainListener.ts"
import { App, appHarness, eventually, type Harness, registerContractAndPlan } from "../support/app.ts"
import { holdLease, leaseContenders, leaseHolders, terminateBackend } from "../support/leases.ts"
import { mine, payWithoutWebhook, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 1_000_000n }
const LEASE = "chain-listener:anvil"
const ENV = { BILLING_LISTENER_MAX_RANGE: "1", BILLING_LISTENER_POLL: "100 millis", BILLING_RPC_ALLOW_LOOPBACK: "true" }

const cursor = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: string; hash: string }>`SELECT block_number::text AS n, block_hash AS hash FROM chain_cursors WHERE network = 'anvil'`).pipe(
  Effect.orDie,
  Effect.map((rows) => (rows[0] === undefined ? { n: -1n, hash: "" } : { n: BigInt(rows[0].n), hash: rows[0].hash }))
)

const chainHead = (app: Harness) => Effect.promise(() => app.devnet.publicClient.getBlockNumber({ cacheTime: 0 }))

/** Minted logs of the pass contract on the chain, the ground truth the CHAIN stream must match one to one. */
const mintedOnChain = (app: Harness) =>
  Effect.promise(() =>
    app.devnet.publicClient.getContractEvents({
      address: app.devnet.info.contract_address,
      abi: SubscriptionPassAbi,
      eventName: "Minted",
      fromBlock: 0n,
      toBlock: "latest"
    })
  )

const chainStream = Effect.flatMap(Nats, (nats) =>
  nats.use("streams.info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.chain))).pipe(
  Effect.orDie,
  Effect.map((info) => ({ messages: info.state.messages, lastSeq: info.state.last_seq }))
)

/** A checkout paid from `account` in a block of its own, no webhook. Returns the payment id and its block. */
const payQuietly = (app: Harness, user: string, account: number) =>
  Effect.map(payWithoutWebhook(app, "resume", user, account), ({ checkout, receipt }) => {
    assert.strictEqual(receipt.status, "success")
    return { id: checkout.transaction_id, block: receipt.blockNumber }
  })

/** A listener of our own on the service's database and NATS prefix (the test's Nats), ticked by hand. */
const ownListener = makeListener("anvil").pipe(
  Effect.provide(Layer.mergeAll(Rpc.Default, ChainState.Default, Contracts.Default)),
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(ENV))))
)

layer(appHarness({ env: ENV }), { timeout: 60_000, excludeTestServices: true })("ChainListener resume", (it) => {
  it.effect("killed mid-range, the listener resumes from its cursor: every payment once, every log once, no gap", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      yield* registerContractAndPlan(app, "resume", PRICES)
      const start = yield* chainHead(app)
      yield* eventually(cursor, (c) => c.n >= start, "the service's listener to reach the head")
      const [leader, ...others] = yield* leaseHolders(LEASE)
      assert.isDefined(leader)
      assert.deepStrictEqual(others, [])

      // Kill the leader's session and keep the lease, until the killed listener has stopped and waits for it.
      yield* terminateBackend(leader!)
      const held = yield* Scope.make()
      const ours = yield* holdLease(LEASE).pipe(Scope.extend(held))
      yield* eventually(leaseContenders, (pids) => pids.some((p) => p !== ours && p !== leader), "the old leader to wait for its lease")

      const paid = yield* Effect.forEach([1, 2, 3, 4], (account) => payQuietly(app, `resume-${account}`, account))
      yield* mine(app, 2)
      const head = yield* chainHead(app)
      assert.deepStrictEqual(new Set(paid.map((p) => p.block)).size, 4, "one payment per block")
      assert.strictEqual((yield* chainStream).messages, 0, "nobody listens: nothing published")
      assert.isTrue((yield* cursor).n < paid[0]!.block)

      // Our listener takes over mid-range: one block per tick, past the first two payments.
      const own = yield* ownListener
      yield* eventually(Effect.zipRight(own.tick, cursor), (c) => c.n >= paid[1]!.block, "our listener past payment 2")
      assert.strictEqual((yield* chainStream).messages, 2)
      yield* Effect.forEach(paid.slice(0, 2), (p) => waitForStatus(p.id, "confirmed"), { discard: true })

      // It "crashed" after publishing, before its cursor and logs were stored: back before payment 1.
      const before = paid[0]!.block - 1n
      const back = yield* Effect.promise(() => app.devnet.publicClient.getBlock({ blockNumber: before }))
      yield* sql`DELETE FROM chain_logs WHERE network = 'anvil' AND block_number > ${before.toString()}`
      yield* sql`UPDATE chain_cursors SET block_number = ${before.toString()}, block_hash = ${back.hash} WHERE network = 'anvil'`

      // The service's listener leads again and resumes from that cursor.
      yield* Scope.close(held, Exit.void)
      const resumed = yield* eventually(cursor, (c) => c.n >= head, "the resumed listener to reach the head")
      const canonical = yield* Effect.promise(() => app.devnet.publicClient.getBlock({ blockNumber: resumed.n }))
      assert.strictEqual(resumed.hash, canonical.hash)
      const [newLeader] = yield* leaseHolders(LEASE)
      assert.isTrue(newLeader !== undefined && newLeader !== ours, "the service holds the lease again")

      // Every payment confirmed, once.
      yield* Effect.forEach(paid, (p) => waitForStatus(p.id, "confirmed"), { discard: true })
      const ids = paid.map((p) => p.id)
      const ledger = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_transactions WHERE payment_id IN ${sql.in(ids)}`
      assert.strictEqual(ledger[0]!.n, 4, "one ledger transaction per payment")
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
      const settled = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM processed_events
        WHERE payment_id IN ${sql.in(ids)} AND outcome = 'confirmed'`
      assert.strictEqual(settled[0]!.n, 4)

      // Every log once: re-published (its chain_logs row is back) but stored once by the stream.
      const minted = yield* mintedOnChain(app)
      assert.strictEqual(minted.length, 4)
      const logs = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM chain_logs WHERE network = 'anvil'`
      assert.strictEqual(logs[0]!.n, minted.length, "the lost logs were published and recorded again")
      assert.deepStrictEqual(yield* chainStream, { messages: minted.length, lastSeq: minted.length })

      // No gap: the listener advanced through every block from the kill to the head.
      const blocks = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM chain_blocks
        WHERE network = 'anvil' AND block_number BETWEEN ${start.toString()} AND ${head.toString()}`
      assert.strictEqual(blocks[0]!.n, Number(head - start) + 1)
    }))
})
