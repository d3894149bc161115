/**
 * finance_ops records refunds paid on chain and resolves payments that disagree with the chain, over HTTP against
 * real PostgreSQL, NATS and anvil. The refund transaction is verified like a payment (final, from the contract's
 * treasury to the payer, exactly what was paid); anything else is a 4xx that writes nothing.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { Hex } from "viem"
import { CreditsPage, RefundView, ResolveView } from "../../src/domain/Refund.ts"
import { Summary } from "../../src/http/Me/Api.ts"
import { devAccount, sendTx } from "../support/anvil.ts"
import { App, appHarness, CONFIRMATIONS, decode, errorOf, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import {
  checkoutNative,
  checkoutOf,
  mine,
  mintedEvent,
  nativeCheckout,
  paymentStatus,
  postingsOf,
  sendPayload,
  unbalancedLedgerTransactions,
  waitForStatus
} from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 1_000_000n }
const FINANCE_OPS = "fin-ops-refunds"
const TREASURY = 9
const env = { APP_BILLING_FINANCE_OPS_USER_ID: FINANCE_OPS }

/** A checkout paid from `account` and confirmed through the webhook path. */
const paid = (app: Harness, user: string, account: number) =>
  Effect.gen(function*() {
    const { checkout } = yield* nativeCheckout(app, "refundable", user, account)
    const [receipt] = yield* sendPayload(app, checkout, account)
    assert.strictEqual((yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))).status, 202)
    yield* mine(app, CONFIRMATIONS)
    yield* waitForStatus(checkout.transaction_id, "confirmed")
    return checkout
  })

/** Native coin sent on chain from dev account `from` to `to`, then buried `depth` blocks deep. */
const transfer = (app: Harness, from: number, to: number, value: bigint, depth = CONFIRMATIONS) =>
  Effect.gen(function*() {
    const receipt = yield* sendTx(app.devnet, () =>
      app.devnet.wallet(from).sendTransaction({ to: devAccount(to).address, value, chain: app.devnet.chain })).pipe(Effect.orDie)
    if (depth > 1) yield* mine(app, depth - 1)
    return receipt.transactionHash as Hex
  })

/** A native checkout of plan `refundable` paid with `extra` wei too much and confirmed: `extra` becomes the user's credit. */
const overpay = (app: Harness, user: string, account: number, extra: bigint) =>
  Effect.gen(function*() {
    const { checkout } = yield* nativeCheckout(app, "refundable", user, account)
    const step = checkout.payload.transactions[0]!
    const receipt = yield* sendTx(app.devnet, () =>
      app.devnet.wallet(account).sendTransaction({
        to: step.to as Hex,
        data: step.data as Hex,
        value: BigInt(step.value) + extra,
        gas: BigInt(step.gas),
        chain: app.devnet.chain
      })).pipe(Effect.orDie)
    assert.strictEqual((yield* app.webhook(mintedEvent(PASS, receipt, checkout.order_id))).status, 202)
    yield* mine(app, CONFIRMATIONS)
    yield* waitForStatus(checkout.transaction_id, "confirmed")
  })

const refund = (app: Harness, id: string, txHash: string, reason = "customer asked within the refund window") =>
  app.request("POST", `/v1/billing/overview/payments/${id}/refund`, {
    token: app.token(FINANCE_OPS, ["finance_ops"]),
    body: { tx_hash: txHash, reason }
  })

const ledgerKinds = (paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ kind: string }>`SELECT kind FROM ledger_transactions WHERE payment_id = ${paymentId} ORDER BY kind`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows.map((r) => r.kind))
  )

const subscriptionStatus = (user: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ status: string }>`SELECT status FROM subscriptions WHERE user_id = ${user} ORDER BY created_at DESC LIMIT 1`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows[0]?.status)
  )

layer(appHarness({ env }), { timeout: 180_000, excludeTestServices: true })("refunds and resolutions by finance_ops", (it) => {
  it.effect("a refund that does not verify on chain is refused and writes nothing", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout: pending } = yield* checkoutNative(app, "refundable", PRICES, "refund-bad", 2)
      const checkout = yield* paid(app, "refund-bad-paid", 2)
      const price = BigInt(checkout.amount)
      const cases = [
        ["too little", yield* transfer(app, TREASURY, 2, price - 1n)],
        ["not from the treasury", yield* transfer(app, 3, 2, price)],
        ["to someone else", yield* transfer(app, TREASURY, 4, price)],
        ["not final", yield* transfer(app, TREASURY, 2, price, 1)]
      ] as const
      for (const [what, tx] of cases) {
        const res = yield* refund(app, checkout.transaction_id, tx)
        assert.deepStrictEqual([res.status, errorOf(res).error], [400, "refund_unverified"], what)
      }
      const bad = yield* refund(app, checkout.transaction_id, "0x1234")
      assert.strictEqual(bad.status, 400)
      const short = yield* refund(app, checkout.transaction_id, cases[0][1], "")
      assert.strictEqual(short.status, 400, "a reason is required")
      const notYet = yield* refund(app, pending.transaction_id, yield* transfer(app, TREASURY, 2, price))
      assert.deepStrictEqual([notYet.status, errorOf(notYet).error], [409, "payment_not_refundable"])
      const missing = yield* refund(app, "00000000-0000-4000-8000-000000000000", cases[0][1])
      assert.deepStrictEqual([missing.status, errorOf(missing).error], [404, "payment_not_found"])

      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "confirmed")
      assert.deepStrictEqual(yield* ledgerKinds(checkout.transaction_id), ["payment"])
      assert.strictEqual(yield* subscriptionStatus("refund-bad-paid"), "active")
    }))

  it.effect("a verified refund posts a refund, moves the payment to refunded and ends the subscription; once", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const checkout = yield* paid(app, "refund-ok", 5)
      const price = BigInt(checkout.amount)
      const tx = yield* transfer(app, TREASURY, 5, price)

      const res = yield* refund(app, checkout.transaction_id, tx)
      assert.strictEqual(res.status, 200)
      const view = decode(RefundView)(res)
      assert.deepStrictEqual([view.status, view.amount, view.refund_tx_hash], ["refunded", price.toString(), tx.toLowerCase()])
      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "refunded")
      assert.deepStrictEqual(yield* ledgerKinds(checkout.transaction_id), ["payment", "refund"])
      const net = new Map<string, bigint>()
      for (const p of yield* postingsOf(checkout.transaction_id)) net.set(p.account, (net.get(p.account) ?? 0n) + BigInt(p.amount))
      assert.deepStrictEqual([...net.values()], [0n, 0n], "treasury and revenue back to zero")
      assert.deepStrictEqual(yield* unbalancedLedgerTransactions, [])
      assert.strictEqual(yield* subscriptionStatus("refund-ok"), "expired")
      const audit = yield* sql<{ actor: string; after: { reason: string } }>`SELECT actor, after FROM audit_log
        WHERE resource = ${`payment:${checkout.transaction_id}`} AND action = 'payment.refunded'`
      assert.deepStrictEqual(audit.map((a) => [a.actor, a.after.reason]), [[FINANCE_OPS, "customer asked within the refund window"]])
      const told = yield* sql<{ user_id: string }>`SELECT user_id FROM notifications WHERE kind = 'payment.refunded' ORDER BY user_id`
      assert.deepStrictEqual(told.map((n) => n.user_id), [FINANCE_OPS, "refund-ok"])

      // The same request again answers the same and posts nothing; the same transaction cannot refund another payment.
      const again = yield* refund(app, checkout.transaction_id, tx)
      assert.deepStrictEqual([again.status, decode(RefundView)(again).status], [200, "refunded"])
      assert.deepStrictEqual(yield* ledgerKinds(checkout.transaction_id), ["payment", "refund"])
      const other = yield* paid(app, "refund-other", 5)
      const reused = yield* refund(app, other.transaction_id, tx)
      assert.deepStrictEqual([reused.status, errorOf(reused).error], [409, "refund_tx_used"])
      assert.strictEqual((yield* paymentStatus(other.transaction_id)).status, "confirmed")
    }))

  it.effect("resolve applies what the chain says to a payment that lost its event; credits list what is held", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const fin = app.token(FINANCE_OPS, ["finance_ops"])
      const { checkout } = yield* nativeCheckout(app, "refundable", "resolve-me", 6)
      // The listener watches enabled contracts only: with no webhook either, the payment's event is lost.
      assert.strictEqual((yield* app.request("PATCH", `/v1/billing/admin/contracts/${PASS}`, { token: app.admin, body: { enabled: false } })).status, 200)
      const [receipt] = yield* sendPayload(app, checkout, 6)
      yield* mine(app, CONFIRMATIONS)
      yield* sql`UPDATE payment_transactions SET status = 'seen', tx_hash = ${receipt!.transactionHash}, log_index = ${mintedEvent(PASS, receipt!).log_index},
          block_number = ${receipt!.blockNumber.toString()}, block_hash = ${receipt!.blockHash} WHERE id = ${checkout.transaction_id}`

      const noReason = yield* app.request("POST", `/v1/billing/overview/payments/${checkout.transaction_id}/resolve`, { token: fin, body: {} })
      assert.strictEqual(noReason.status, 400)
      const user = yield* app.request("POST", `/v1/billing/overview/payments/${checkout.transaction_id}/resolve`, {
        token: app.token("resolve-me"),
        body: { reason: "I paid" }
      })
      assert.strictEqual(user.status, 403)
      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "seen")

      const res = yield* app.request("POST", `/v1/billing/overview/payments/${checkout.transaction_id}/resolve`, {
        token: fin,
        body: { reason: "ledger mismatch reported by reconcile" }
      })
      assert.strictEqual(res.status, 200)
      assert.deepStrictEqual(decode(ResolveView)(res), { transaction_id: checkout.transaction_id, before: "seen", after: "confirmed", checked: "done" })
      assert.deepStrictEqual(yield* ledgerKinds(checkout.transaction_id), ["payment"])
      const audit = yield* sql<{ actor: string }>`SELECT actor FROM audit_log WHERE resource = ${`payment:${checkout.transaction_id}`}
        AND action = 'payment.resolved'`
      assert.deepStrictEqual(audit.map((a) => a.actor), [FINANCE_OPS])
      yield* app.request("PATCH", `/v1/billing/admin/contracts/${PASS}`, { token: app.admin, body: { enabled: true } })

      // Credit: an overpayment's excess is held for the payer and listed, with the total per asset.
      const extra = 12_345n
      yield* overpay(app, "credit-holder", 7, extra)
      const credits = decode(CreditsPage)(yield* app.request("GET", "/v1/billing/overview/credits", { token: fin }))
      assert.deepStrictEqual(credits.items.filter((c) => c.user_id === "credit-holder"), [
        { user_id: "credit-holder", network: "anvil", token: "native", amount: extra.toString() }
      ])
      const total = credits.totals.find((t) => t.network === "anvil" && t.token === "native")
      assert.strictEqual(total?.amount, credits.items.filter((c) => c.token === "native").reduce((a, c) => a + BigInt(c.amount), 0n).toString())
      const after = decode(CreditsPage)(yield* app.request("GET", "/v1/billing/overview/credits?after=credit-holder", { token: fin }))
      assert.isFalse(after.items.some((c) => c.user_id === "credit-holder"), "paged after the user")
      const page = yield* app.request("GET", "/v1/billing/overview/credits?limit=0", { token: fin })
      assert.strictEqual(page.status, 400)
    }))

  it.effect("credit applied to a checkout: the quote asks for the price minus the credit, reserved once, spent at confirmation", () =>
    Effect.gen(function*() {
      const app = yield* App
      const fin = app.token(FINANCE_OPS, ["finance_ops"])
      const user = "credit-spender"
      const price = PRICES.native
      // Credit from an overpayment.
      const extra = 3_000n
      yield* overpay(app, user, 8, extra)
      // The user sees their credit in their summary, and finance_ops in theirs.
      const creditOf = Effect.map(app.request("GET", "/v1/billing/me/summary", { token: app.token(user) }), (res) =>
        decode(Summary)(res).credit.map((c) => c.amount))
      const seenByOps = decode(Summary)(yield* app.request("GET", `/v1/billing/overview/users/${user}/summary`, { token: fin })).credit
      assert.deepStrictEqual(seenByOps, [{ network: "anvil", token: "native", amount: extra.toString() }])
      assert.deepStrictEqual(yield* creditOf, [extra.toString()])

      yield* registerContractAndPlan(app, "refundable-more", PRICES)
      const withCredit = yield* app.request("POST", "/v1/billing/checkout", {
        token: app.token(user),
        body: { plan_slug: "refundable", wallet_address: devAccount(8).address, network: "anvil", token: "native", apply_credit: true }
      })
      assert.strictEqual(withCredit.status, 201)
      const reduced = checkoutOf(withCredit)
      assert.deepStrictEqual([reduced.amount, reduced.credit_applied], [(price - extra).toString(), extra.toString()])
      assert.strictEqual(reduced.payload.transactions[0]!.value, (price - extra).toString())
      // Reserved: another checkout cannot use the same credit.
      const again = yield* app.request("POST", "/v1/billing/checkout", {
        token: app.token(user),
        body: { plan_slug: "refundable-more", wallet_address: devAccount(8).address, network: "anvil", token: "native", apply_credit: true }
      })
      assert.deepStrictEqual([again.status, checkoutOf(again).credit_applied, checkoutOf(again).amount], [201, "0", price.toString()])

      // A renewal of the same plan (no plan change, so no proration credit muddles the balance).
      const [receipt] = yield* sendPayload(app, reduced, 8)
      assert.strictEqual((yield* app.webhook(mintedEvent(PASS, receipt!, reduced.order_id))).status, 202)
      yield* mine(app, CONFIRMATIONS)
      yield* waitForStatus(reduced.transaction_id, "confirmed")
      assert.deepStrictEqual(yield* creditOf, [], "the credit is spent")
      const net = new Map<string, bigint>()
      for (const p of yield* postingsOf(reduced.transaction_id)) net.set(p.account, (net.get(p.account) ?? 0n) + BigInt(p.amount))
      assert.deepStrictEqual(Object.fromEntries(net), {
        "treasury:anvil": price - extra,
        [`customer_credit:${user}`]: extra,
        "revenue:anvil": -price
      })
      assert.deepStrictEqual(yield* unbalancedLedgerTransactions, [])
    }))
})
