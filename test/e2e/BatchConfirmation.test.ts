/**
 * Batched, block-driven confirmation (issue 9, items 3 and 4): a batch commits in one SQL transaction, a poison event
 * rolls it back and then fails alone while its mates are confirmed once, a crash between the batch's commit and its
 * acks changes nothing on redelivery, and a payment waiting for depth is confirmed by the next blocks, not by the
 * confirmation poll (set to an hour here).
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import type { TransactionReceipt } from "viem"
import { Nats } from "../../services/Nats.ts"
import { PaymentConfirmation } from "../../services/PaymentConfirmation.ts"
import { Rpc } from "../../services/Rpc.ts"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import type { QueuedWebhook } from "../../src/domain/Events.ts"
import { App, appHarness, eventually, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { deployMultiPayer } from "../support/multiPayer.ts"
import { checkoutOf, mine, paymentStatus, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"
import { decodeEventLog } from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"

const PRICE = 10n ** 15n

interface Paid {
  readonly checkout: CheckoutView
  readonly receipt: TransactionReceipt
  readonly logIndex: number
}

/** `count` checkouts paid in ONE transaction (MultiPayer), each with its own Minted log. */
const payTogether = (app: Harness, plan: string, count: number, deep = true) =>
  Effect.gen(function*() {
    const payer = yield* deployMultiPayer(app.devnet, 7)
    yield* registerContractAndPlan(app, plan, { native: PRICE, token: 1n })
    const checkouts = yield* Effect.forEach(Array.from({ length: count }, (_, i) => `${plan}-${i}`), (user) =>
      Effect.map(app.request("POST", "/v1/billing/checkout", {
        token: app.token(user),
        body: { plan_slug: plan, wallet_address: payer.address, network: "anvil", token: "native" }
      }), checkoutOf))
    const receipt = yield* payer.payAll(checkouts).pipe(Effect.orDie)
    const logs = receipt.logs.flatMap((log) => {
      const e = decodeEventLog({ abi: SubscriptionPassAbi, data: log.data, topics: log.topics })
      return e.eventName === "Minted" ? [log.logIndex] : []
    })
    if (deep) yield* mine(app, 1)
    return checkouts.map((checkout, i): Paid => ({ checkout, receipt, logIndex: logs[i]! }))
  })

const queued = (p: Paid, id: string): QueuedWebhook => ({
  source: "webhook",
  webhook_id: id,
  received_at: new Date().toISOString(),
  event: { type: "payment.minted", contract: PASS, network: "anvil", tx_hash: p.receipt.transactionHash, log_index: p.logIndex, order_id: p.checkout.order_id }
})
const hookOf = (p: Paid) => ({ type: "payment.minted", contract: PASS, network: "anvil", tx_hash: p.receipt.transactionHash, log_index: p.logIndex })

/** The processor's own confirmation service, run here as the consumer would (as if the process died before its acks). */
const confirmation = PaymentConfirmation.pipe(
  Effect.provide(PaymentConfirmation.Default.pipe(Layer.provide(Rpc.Default))),
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BILLING_RPC_ALLOW_LOOPBACK", "true"]])))
)

/** A test-only trigger: claiming this payment's event fails (a poison the batch transaction cannot commit). */
const poison = (paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.zipRight(
      sql`CREATE OR REPLACE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.payment_id::text = ${sql.literal(`'${paymentId}'`)} THEN RAISE EXCEPTION 'poisoned payment'; END IF; RETURN NEW; END $$`,
      sql`CREATE OR REPLACE TRIGGER test_poison BEFORE INSERT ON processed_events FOR EACH ROW EXECUTE FUNCTION test_poison()`
    )).pipe(Effect.orDie)

const claims = (paymentIds: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ payment_id: string; outcome: string }>`SELECT payment_id::text AS payment_id, outcome FROM processed_events
      WHERE payment_id IN ${sql.in(paymentIds)} ORDER BY payment_id`).pipe(Effect.orDie)
const ledgerCount = (paymentIds: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_transactions WHERE payment_id IN ${sql.in(paymentIds)}`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows[0]!.n)
  )

const deadLetters = Effect.gen(function*() {
  const nats = yield* Nats
  const info = yield* nats.use("dlq info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.dlq))
  return info.state.messages
}).pipe(Effect.orDie)

layer(
  appHarness({ env: { BILLING_CONFIRMATION_POLL: "1 hour", BILLING_CHAIN_HEAD_POLL: "100 millis", BILLING_LISTENER_POLL: "1 hour" } }),
  { timeout: 180_000, excludeTestServices: true }
)("batched, block-driven confirmation", (it) => {
  it.effect("a poison event rolls its batch back, then fails alone; its mates are confirmed once", () =>
    Effect.gen(function*() {
      const app = yield* App
      const paid = yield* payTogether(app, "batch-poison", 4)
      const bad = paid[2]!
      yield* poison(bad.checkout.transaction_id)
      const service = yield* confirmation
      const { results } = yield* service.webhooks(paid.map((p, i) => queued(p, `msg_batch_poison_${i}`)))
      assert.deepStrictEqual(results.map((r) => Exit.isSuccess(r) ? r.value._tag : "failed"), ["Done", "Done", "failed", "Done"])
      const mates = paid.filter((p) => p !== bad).map((p) => p.checkout.transaction_id)
      for (const id of mates) assert.strictEqual((yield* paymentStatus(id)).status, "confirmed")
      assert.strictEqual((yield* paymentStatus(bad.checkout.transaction_id)).status, "pending", "nothing of the poison committed")
      assert.deepStrictEqual((yield* claims(mates)).map((c) => c.outcome), ["confirmed", "confirmed", "confirmed"])
      assert.strictEqual(yield* ledgerCount(mates), 3, "one ledger transaction each, nothing twice after the rollback")
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)

      // Through the processor: the same mates again (acked as duplicates) and the poison, retried and dead-lettered.
      const before = yield* deadLetters
      for (const [i, p] of paid.entries()) yield* app.webhook(hookOf(p), { id: `msg_batch_poison_again_${i}` })
      yield* eventually(deadLetters, (n) => n === before + 1, "the poison to be dead-lettered")
      assert.strictEqual(yield* ledgerCount(mates), 3)
      assert.strictEqual((yield* paymentStatus(bad.checkout.transaction_id)).status, "pending")
      const sql = yield* SqlClient.SqlClient
      yield* sql`DROP TRIGGER test_poison ON processed_events`.pipe(Effect.orDie)
    }))

  it.effect("a crash after the batch committed and before its acks: the redeliveries change nothing", () =>
    Effect.gen(function*() {
      const app = yield* App
      const paid = yield* payTogether(app, "batch-crash", 3)
      const ids = paid.map((p) => p.checkout.transaction_id)
      const service = yield* confirmation
      const hooks = paid.map((p, i) => queued(p, `msg_batch_crash_${i}`))
      const { results } = yield* service.webhooks(hooks)
      assert.isTrue(results.every((r) => Exit.isSuccess(r) && r.value._tag === "Done"))
      const committed = yield* claims(ids)
      assert.strictEqual(committed.length, 3)

      // JetStream redelivers the whole batch after the restart: all handled, nothing posted twice.
      for (const q of hooks) yield* app.webhook(q.event, { id: q.webhook_id })
      const sql = yield* SqlClient.SqlClient
      const dedupeKeys = paid.map((p) => `${p.checkout.chain_id}:${p.receipt.transactionHash}:${p.logIndex}:${p.receipt.blockHash}`)
      yield* eventually(
        sql<{ n: number }>`SELECT count(*)::int AS n FROM processed_events WHERE dedupe_key IN ${sql.in(dedupeKeys)}`.pipe(Effect.orDie),
        (rows) => rows[0]!.n === 3
      )
      // the redeliveries are answered once the consumer has nothing left pending
      const nats = yield* Nats
      yield* eventually(
        nats.use("consumer info", ({ jsm }) => jsm.consumers.info(nats.subjects.streams.webhooks, nats.subjects.durables.paymentProcessorWebhooks)).pipe(Effect.orDie),
        (c) => c.num_pending === 0 && c.num_ack_pending === 0,
        "every redelivery acked"
      )
      assert.deepStrictEqual(yield* claims(ids), committed)
      assert.strictEqual(yield* ledgerCount(ids), 3)
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))

  it.effect("block-driven: a payment waiting for depth is confirmed when the blocks come, not after the poll", () =>
    Effect.gen(function*() {
      const app = yield* App
      const [p] = yield* payTogether(app, "batch-blocks", 1, false)
      yield* app.webhook(hookOf(p!))
      // one confirmation of two: seen, and waiting on the head watcher (the poll is an hour)
      yield* waitForStatus(p!.checkout.transaction_id, "seen")
      yield* mine(app, 1)
      yield* waitForStatus(p!.checkout.transaction_id, "confirmed")
    }))
})
