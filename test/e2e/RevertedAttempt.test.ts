/**
 * Invariant 5, reverted transactions: a mint that reverts moved no money, so it is an attempt, not a verdict. It is
 * audited and told to the payer once, the order stays payable, and the proper payment of the same checkout confirms
 * it. The order a reverted transaction paid for is read from its calldata, never from the webhook.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { Hex, TransactionReceipt } from "viem"
import { TestTokenAbi } from "../../src/contracts/abi.ts"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import { Nats } from "../../services/Nats.ts"
import { App, appHarness, eventually, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { devAccount, sendTx } from "../support/anvil.ts"
import { scrapeText } from "../support/metrics.ts"
import {
  checkoutNative,
  checkoutOf,
  mine,
  mintedEvent,
  nativeCheckout,
  paymentStatus,
  postingsOf,
  revertedHook,
  sendPayload,
  settledOverHttp
} from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 25_000_000n }

/** Sends one payload step as given, with its explicit gas: the node mines it even when it reverts. */
const sendStep = (app: Harness, account: number, tx: CheckoutView["payload"]["transactions"][number], value = BigInt(tx.value)) =>
  sendTx(app.devnet, () =>
    app.devnet.wallet(account).sendTransaction({ to: tx.to as Hex, data: tx.data as Hex, value, gas: BigInt(tx.gas), chain: app.devnet.chain })
  ).pipe(Effect.orDie)

/** Every webhook delivered and acked (done, or dead-lettered). */
const allAcked = Effect.gen(function*() {
  const nats = yield* Nats
  const stream = nats.subjects.streams.webhooks
  const durable = nats.subjects.durables.paymentProcessorWebhooks
  const state = nats.use("consumer state", async ({ jsm }) => {
    const info = await jsm.streams.info(stream)
    const consumer = await jsm.consumers.info(stream, durable)
    return { last: info.state.last_seq, pending: consumer.num_pending, ackPending: consumer.num_ack_pending, floor: consumer.ack_floor.stream_seq }
  }).pipe(Effect.orDie)
  return yield* eventually(state, (s) => s.pending === 0 && s.ackPending === 0 && s.floor >= s.last, "every webhook acked")
})

const attemptsOf = (transactionId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ actor: string; before: unknown; after: { status: string; tx_hash: string; reason: string } }>`SELECT actor, before, after
      FROM audit_log WHERE resource = ${`payment:${transactionId}`} AND action = 'payment.attempt_reverted' ORDER BY id`).pipe(Effect.orDie)

const notificationsOf = (userId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ kind: string; tx_hash: string | null; body: string }>`SELECT kind, payload->>'tx_hash' AS tx_hash, payload->>'body' AS body
      FROM notifications WHERE user_id = ${userId} ORDER BY id`).pipe(Effect.orDie)

const auditActionsOf = (transactionId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ action: string }>`SELECT action FROM audit_log WHERE resource = ${`payment:${transactionId}`} ORDER BY id`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows.map((r) => r.action))
  )

/** The attempt is recorded once, on the payment the calldata names, with the payer told; the payment is still payable. */
const assertAttempt = (checkout: CheckoutView, userId: string, reverted: TransactionReceipt) =>
  Effect.gen(function*() {
    const attempts = yield* eventually(attemptsOf(checkout.transaction_id), (rows) => rows.length > 0, "the attempt audited")
    yield* allAcked
    assert.deepStrictEqual((yield* attemptsOf(checkout.transaction_id)).map((a) => [a.after.tx_hash, a.after.reason, a.after.status]), [
      [reverted.transactionHash, "reverted", "pending"]
    ])
    assert.strictEqual(attempts[0]!.actor, "system:payment-processor")
    const notes = (yield* notificationsOf(userId)).filter((n) => n.kind === "payment.attempt_failed")
    assert.deepStrictEqual(notes.map((n) => n.tx_hash), [reverted.transactionHash])
    assert.include(notes[0]!.body, "reverted on chain")
    assert.include(notes[0]!.body, checkout.expires_at)
    const row = yield* paymentStatus(checkout.transaction_id)
    assert.deepStrictEqual([row.status, row.failure_reason, row.paid_amount], ["pending", null, null])
    assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [])
  })

/** Then the proper payment of the same checkout confirms it: revenue, not credit, and an active subscription. */
const payProperly = (app: Harness, checkout: CheckoutView, token: string, account: number, asset: string) =>
  Effect.gen(function*() {
    const receipts = yield* sendPayload(app, checkout, account)
    const mint = receipts[receipts.length - 1]!
    assert.strictEqual(mint.status, "success")
    yield* app.webhook(mintedEvent(PASS, mint, checkout.order_id))
    yield* mine(app, 1)
    const { seen } = yield* settledOverHttp(app, token, checkout)
    assert.deepStrictEqual(seen.row, { status: "confirmed", failure_reason: null })
    assert.strictEqual(seen.subscription?.status, "active")
    assert.strictEqual(seen.unbalanced, 0)
    assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [
      { account: "treasury:anvil", asset, amount: BigInt(checkout.amount).toString() },
      { account: "revenue:anvil", asset, amount: (-BigInt(checkout.amount)).toString() }
    ])
    return mint
  })

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("reverted transactions are attempts", (it) => {
  it.effect("ERC-20: a mint sent before the approval reverts, is recorded once, and the proper payment then confirms", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "attempt-token"
      yield* registerContractAndPlan(app, "attempt-token", PRICES)
      const tokenAddress = app.devnet.info.token_address
      yield* sendTx(app.devnet, () =>
        app.devnet.wallet(2).writeContract({
          address: tokenAddress,
          abi: TestTokenAbi,
          functionName: "mint",
          args: [devAccount(2).address, PRICES.token],
          chain: app.devnet.chain
        })).pipe(Effect.orDie)
      const token = app.token(user)
      const res = yield* app.request("POST", "/v1/billing/checkout", {
        token,
        body: { plan_slug: "attempt-token", wallet_address: devAccount(2).address, token: tokenAddress }
      })
      assert.strictEqual(res.status, 201)
      const checkout = checkoutOf(res)
      assert.strictEqual(checkout.payload.transactions.length, 2, "approve, then mint")
      const reverted = yield* sendStep(app, 2, checkout.payload.transactions[1]!)
      assert.strictEqual(reverted.status, "reverted", "no allowance yet")

      // No order id in the first hint, the true one in a second report of the same transaction: one attempt.
      yield* app.webhook(revertedHook(PASS, reverted))
      yield* app.webhook(revertedHook(PASS, reverted, checkout.order_id))
      yield* mine(app, 2)
      yield* assertAttempt(checkout, user, reverted)

      yield* payProperly(app, checkout, token, 2, `anvil:${tokenAddress.toLowerCase()}`)
      // `payment.seen` only when the processor looked before the next block: not part of the claim.
      const trail = (yield* auditActionsOf(checkout.transaction_id)).filter((a) => a !== "payment.seen")
      assert.deepStrictEqual(trail, ["payment.pending", "payment.attempt_reverted", "payment.confirmed"])
      const metrics = yield* scrapeText(app.baseUrl)
      assert.match(metrics, /billing_payment_attempts_total\{network="anvil",outcome="reverted"\} [1-9]/)
    }))

  it.effect("native: an underpaid mint reverts; a webhook naming another user's order is not trusted", () =>
    Effect.gen(function*() {
      const app = yield* App
      const payer = "attempt-native"
      const other = "attempt-other"
      const { checkout, token } = yield* checkoutNative(app, "attempt-native", PRICES, payer, 3)
      // Another user's order from the same wallet: attribution by sender alone would accept it.
      const victim = (yield* nativeCheckout(app, "attempt-native", other, 3)).checkout
      const reverted = yield* sendStep(app, 3, checkout.payload.transactions[0]!, BigInt(checkout.amount) - 1n)
      assert.strictEqual(reverted.status, "reverted", "Underpaid")

      yield* app.webhook(revertedHook(PASS, reverted, victim.order_id))
      yield* mine(app, 2)
      yield* assertAttempt(checkout, payer, reverted)

      assert.strictEqual((yield* paymentStatus(victim.transaction_id)).status, "pending")
      assert.deepStrictEqual(yield* auditActionsOf(victim.transaction_id), ["payment.pending"])
      assert.deepStrictEqual(yield* notificationsOf(other), [])

      yield* payProperly(app, checkout, token, 3, "anvil:native")
      assert.strictEqual((yield* paymentStatus(victim.transaction_id)).status, "pending")
    }))
})
