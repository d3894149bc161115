/**
 * Invariant 2: every webhook and chain event takes effect exactly once, whether the relayer repeats the
 * webhook, two relayers report the same log, or the processor dies between its commit and its ack.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import type { TransactionReceipt } from "viem"
import { Nats } from "../../services/Nats.ts"
import { PaymentConfirmation } from "../../services/PaymentConfirmation.ts"
import { Rpc } from "../../services/Rpc.ts"
import { QueuedWebhook } from "../../src/domain/Events.ts"
import { App, appHarness, eventually, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"
import {
  checkoutOf,
  mine,
  mintedEvent,
  passLogIndex,
  postingsOf,
  sendPayload,
  unbalancedLedgerTransactions,
  waitForStatus
} from "../support/payments.ts"

const PRICE = 10n ** 16n

/** The webhooks stream and the processor's durable consumer, as JetStream sees them. */
const queueState = Effect.gen(function*() {
  const nats = yield* Nats
  const stream = nats.subjects.streams.webhooks
  const durable = nats.subjects.durables.paymentProcessorWebhooks
  const info = yield* nats.use("streams.info", ({ jsm }) => jsm.streams.info(stream))
  const consumer = yield* nats.use("consumers.info", ({ jsm }) => jsm.consumers.info(stream, durable))
  const dlq = yield* nats.use("dlq info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.dlq))
  return {
    lastSeq: info.state.last_seq,
    pending: consumer.num_pending,
    ackPending: consumer.num_ack_pending,
    ackFloor: consumer.ack_floor.stream_seq,
    deadLetters: dlq.state.messages
  }
})

/** Every message on the webhooks stream delivered and acked: nothing pending, nothing awaiting an ack. */
const allAcked = eventually(
  queueState,
  (s) => s.pending === 0 && s.ackPending === 0 && s.ackFloor >= s.lastSeq,
  "the payment processor to ack every webhook"
)

/** A paid checkout, one confirmation deep beyond its block (CONFIRMATIONS = 2), with no webhook yet. */
const paidCheckout = (app: Harness, plan: string, user: string, account: number) =>
  Effect.gen(function*() {
    yield* registerContractAndPlan(app, plan, { native: PRICE, token: 1_000_000n })
    const res = yield* app.request("POST", "/v1/billing/checkout", {
      token: app.token(user),
      body: { plan_slug: plan, wallet_address: devAccount(account).address, token: "native" }
    })
    assert.strictEqual(res.status, 201)
    const checkout = checkoutOf(res)
    const [receipt] = yield* sendPayload(app, checkout, account)
    assert.strictEqual(receipt!.status, "success")
    yield* mine(app, 1)
    return { checkout, receipt: receipt! }
  })

/** What the event did, counted per payment, on-chain key and user. */
const effectsOf = (paymentId: string, user: string, receipt: TransactionReceipt, chainId: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const key = `${chainId}:${receipt.transactionHash}:${passLogIndex(receipt)}:${receipt.blockHash}`
    const processed = yield* sql<{ outcome: string }>`SELECT outcome FROM processed_events WHERE dedupe_key = ${key}`
    const ledger = yield* sql<{ id: string }>`SELECT id FROM ledger_transactions WHERE payment_id = ${paymentId}`
    const confirmed = yield* sql<{ status: string; confirmed_at: Date | null }>`SELECT status, confirmed_at
      FROM payment_transactions WHERE id = ${paymentId}`
    const subs = yield* sql<{ start: Date; end: Date }>`SELECT current_period_start AS start, current_period_end AS end
      FROM subscriptions WHERE user_id = ${user}`
    return { processed, ledger, confirmed, subs, postings: yield* postingsOf(paymentId) }
  })

const days = (sub: { start: Date; end: Date }) => (sub.end.getTime() - sub.start.getTime()) / 86_400_000

/** One confirmation, one ledger transaction of two balanced postings, one month of subscription. */
const assertOnce = (effects: Effect.Effect.Success<ReturnType<typeof effectsOf>>) => {
  assert.deepStrictEqual(effects.processed.map((p) => p.outcome), ["confirmed"])
  assert.strictEqual(effects.ledger.length, 1)
  assert.deepStrictEqual(effects.postings.map((p) => [p.account, p.amount]), [
    ["treasury:anvil", PRICE.toString()],
    ["revenue:anvil", (-PRICE).toString()]
  ])
  assert.strictEqual(effects.confirmed[0]?.status, "confirmed")
  assert.isNotNull(effects.confirmed[0]?.confirmed_at)
  assert.strictEqual(effects.subs.length, 1)
  const d = days(effects.subs[0]!)
  assert.isTrue(d >= 28 && d <= 31, `one month, got ${d} days`)
}

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("exactly once (invariant 2)", (it) => {
  it.effect("the same webhook twice: JetStream drops the repeat, effects happen once", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "eo-same-id"
      const { checkout, receipt } = yield* paidCheckout(app, "eo-a", user, 1)
      const event = mintedEvent(PASS, receipt, checkout.order_id)

      const first = yield* app.webhook(event, { id: "msg_same_webhook" })
      const second = yield* app.webhook(event, { id: "msg_same_webhook" })
      assert.deepStrictEqual([first.status, first.body], [202, { accepted: true, duplicate: false }])
      assert.deepStrictEqual([second.status, second.body], [202, { accepted: true, duplicate: true }])

      yield* waitForStatus(checkout.transaction_id, "confirmed")
      yield* allAcked
      assertOnce(yield* effectsOf(checkout.transaction_id, user, receipt, checkout.chain_id))
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))

  it.effect("the same on-chain event under two webhook ids: both queued, one effect", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "eo-two-ids"
      const { checkout, receipt } = yield* paidCheckout(app, "eo-b", user, 2)
      const event = mintedEvent(PASS, receipt, checkout.order_id)

      const [a, b] = yield* Effect.all([
        app.webhook(event, { id: "msg_relayer_a" }),
        app.webhook(event, { id: "msg_relayer_b" })
      ], { concurrency: 2 })
      assert.deepStrictEqual([a!.status, a!.body], [202, { accepted: true, duplicate: false }])
      assert.deepStrictEqual([b!.status, b!.body], [202, { accepted: true, duplicate: false }])

      yield* waitForStatus(checkout.transaction_id, "confirmed")
      yield* allAcked
      assertOnce(yield* effectsOf(checkout.transaction_id, user, receipt, checkout.chain_id))
      assert.strictEqual((yield* queueState).deadLetters, 0, "the second report is a duplicate, not a failure")
    }))

  it.effect("a crash after the commit and before the ack: the redelivery changes nothing and is acked", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "eo-crash"
      const { checkout, receipt } = yield* paidCheckout(app, "eo-c", user, 3)
      const queued = Schema.decodeUnknownSync(QueuedWebhook)({
        source: "webhook",
        webhook_id: "msg_crash_before_ack",
        received_at: new Date().toISOString(),
        event: mintedEvent(PASS, receipt, checkout.order_id)
      })

      // The processor's own confirmation path commits the effects; the process "dies" before any ack is sent.
      const confirmation = yield* PaymentConfirmation.pipe(
        Effect.provide(PaymentConfirmation.Default.pipe(Layer.provide(Rpc.Default))),
        // The devnet listens on 127.0.0.1: loopback endpoints are allowed only when configured so.
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BILLING_RPC_ALLOW_LOOPBACK", "true"]])))
      )
      const outcome = yield* confirmation.webhook(queued)
      assert.strictEqual(outcome._tag, "Done")
      const committed = yield* effectsOf(checkout.transaction_id, user, receipt, checkout.chain_id)
      assertOnce(committed)

      // After the restart JetStream delivers the same event (same webhook id) to the running consumer.
      const redelivered = yield* app.webhook(queued.event, { id: queued.webhook_id })
      assert.deepStrictEqual([redelivered.status, redelivered.body], [202, { accepted: true, duplicate: false }])
      const state = yield* allAcked
      assert.strictEqual(state.deadLetters, 0, "the redelivery is acked, not dead-lettered")

      const after = yield* effectsOf(checkout.transaction_id, user, receipt, checkout.chain_id)
      assertOnce(after)
      assert.deepStrictEqual(after.ledger, committed.ledger)
      assert.strictEqual(after.subs[0]!.end.getTime(), committed.subs[0]!.end.getTime(), "the subscription was extended once")
      assert.strictEqual(after.confirmed[0]!.confirmed_at!.getTime(), committed.confirmed[0]!.confirmed_at!.getTime())
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))
})
