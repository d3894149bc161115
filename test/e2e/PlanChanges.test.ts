/**
 * docs/billing-rules.md through the running service (HTTP, JetStream, anvil): an upgrade paid on chain starts at once
 * and credits the unused part of the current period, to the base unit; a checkout issued before the subscription
 * changed and paid afterwards is held as customer credit and leaves the subscription as it was.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { TransactionReceipt } from "viem"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import { Summary } from "../../src/http/Me/Api.ts"
import { App, appHarness, decode, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { mine, mintedEvent, nativeCheckout, postingsOf, sendPayload, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"
import { notificationsOf } from "../services/SubscriptionFixtures.ts"

const BASIC = { native: 10n ** 16n, token: 5_000_000n }
const PRO = { native: 3n * 10n ** 16n, token: 15_000_000n }

/** Sends the checkout's payload from `account`, posts the webhook, mines past the confirmations. */
const payAndConfirm = (app: Harness, checkout: CheckoutView, account: number) =>
  Effect.gen(function*() {
    const [receipt] = yield* sendPayload(app, checkout, account)
    yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))
    yield* waitForStatus(checkout.transaction_id, "seen")
    yield* mine(app, 1)
    yield* waitForStatus(checkout.transaction_id, "confirmed")
    return receipt!
  })

const subscriptionOf = (app: Harness, token: string) =>
  Effect.map(app.request("GET", "/v1/billing/me/summary", { token }), (res) => decode(Summary)(res).subscription)

/** The payment ledger id of a checkout's mint: chain, transaction and the order it paid. */
const ledgerId = (app: Harness, receipt: TransactionReceipt, orderId: string) =>
  `payment:${app.devnet.info.chain_id}:${receipt.transactionHash}:${orderId}`

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("plan changes over HTTP and anvil", (it) => {
  it.effect("upgrade: pro paid on chain starts now; basic's unused time is credited exactly, rounded up", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      yield* registerContractAndPlan(app, "e2e-up-basic", BASIC)
      yield* registerContractAndPlan(app, "e2e-up-pro", PRO)
      const basic = yield* nativeCheckout(app, "e2e-up-basic", "e2e-up", 6)
      yield* payAndConfirm(app, basic.checkout, 6)
      const before = yield* subscriptionOf(app, basic.token)
      assert.strictEqual(before?.plan_slug, "e2e-up-basic")

      const pro = yield* nativeCheckout(app, "e2e-up-pro", "e2e-up", 6)
      const receipt = yield* payAndConfirm(app, pro.checkout, 6)
      const after = yield* subscriptionOf(app, basic.token)
      assert.deepStrictEqual([after?.plan_slug, after?.status], ["e2e-up-pro", "active"])

      // The upgrade happened at the pro period's start: credit = ⌈price × unused / period⌉ in milliseconds.
      const start = BigInt(Date.parse(before!.current_period_start))
      const end = BigInt(Date.parse(before!.current_period_end))
      const upgradedAt = BigInt(Date.parse(after!.current_period_start))
      const credit = (BASIC.native * (end - upgradedAt) + (end - start) - 1n) / (end - start)
      assert.isTrue(credit > 0n && credit <= BASIC.native)
      const proration = yield* sql<{ id: string; kind: string; account: string; amount: string }>`SELECT t.id, t.kind, p.account,
          p.amount::text AS amount FROM ledger_transactions t JOIN ledger_postings p ON p.ledger_transaction_id = t.id
        WHERE t.payment_id = ${basic.checkout.transaction_id} AND t.kind = 'proration' ORDER BY p.id`
      const id = `proration:${basic.checkout.transaction_id}:${ledgerId(app, receipt, pro.checkout.order_id)}`
      assert.deepStrictEqual(proration.map((r) => [r.id, r.account, r.amount]), [
        [id, "revenue:anvil", credit.toString()],
        [id, "customer_credit:e2e-up", (-credit).toString()]
      ])
      assert.deepStrictEqual((yield* postingsOf(pro.checkout.transaction_id)).filter((p) => p.account.startsWith("revenue")), [
        { account: "revenue:anvil", asset: "anvil:native", amount: (-PRO.native).toString() }
      ])
      const notice = (yield* notificationsOf("e2e-up")).find((n) => n.kind === "credit.proration")
      assert.strictEqual(notice?.payload["amount"], credit.toString())
      assert.deepStrictEqual(yield* unbalancedLedgerTransactions, [])
    }))

  it.effect("stale checkout: basic checked out before pro was paid, mined after it, is held as credit; pro stays", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      yield* registerContractAndPlan(app, "e2e-stale-basic", BASIC)
      yield* registerContractAndPlan(app, "e2e-stale-pro", PRO)
      const stale = yield* nativeCheckout(app, "e2e-stale-basic", "e2e-stale", 7)
      const pro = yield* nativeCheckout(app, "e2e-stale-pro", "e2e-stale", 7)
      yield* payAndConfirm(app, pro.checkout, 7)
      const before = yield* subscriptionOf(app, pro.token)
      assert.strictEqual(before?.plan_slug, "e2e-stale-pro")

      yield* payAndConfirm(app, stale.checkout, 7)
      assert.deepStrictEqual(yield* subscriptionOf(app, pro.token), before, "the subscription is unchanged")
      assert.deepStrictEqual(yield* postingsOf(stale.checkout.transaction_id), [
        { account: "treasury:anvil", asset: "anvil:native", amount: BASIC.native.toString() },
        { account: "customer_credit:e2e-stale", asset: "anvil:native", amount: (-BASIC.native).toString() }
      ])
      const [processed] = yield* sql<{ outcome: string }>`SELECT outcome FROM processed_events
        WHERE payment_id = ${stale.checkout.transaction_id} AND outcome LIKE 'confirmed%'`
      assert.strictEqual(processed?.outcome, "confirmed:credited")
      const kinds = (yield* notificationsOf("e2e-stale")).map((n) => n.kind)
      assert.deepStrictEqual(kinds, ["payment.confirmed", "payment.credited"])
      assert.deepStrictEqual(yield* unbalancedLedgerTransactions, [])
    }))
})
