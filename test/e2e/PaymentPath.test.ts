import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { TestTokenAbi } from "../../src/contracts/abi.ts"
import { HistoryPage, Summary } from "../../src/http/Me/Api.ts"
import { App, appHarness, decode, PASS, registerContractAndPlan } from "../support/app.ts"
import { devAccount, sendTx } from "../support/anvil.ts"
import { scrapeText } from "../support/metrics.ts"
import {
  checkoutOf,
  mine,
  mintedEvent,
  postingsOf,
  sendPayload,
  unbalancedLedgerTransactions,
  waitForStatus
} from "../support/payments.ts"

const NATIVE_PRICE = 10n ** 16n
const TOKEN_PRICE = 25_000_000n

const periodDays = (start: string, end: string) => (Date.parse(end) - Date.parse(start)) / 86_400_000

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("the payment path over HTTP", (it) => {
  it.effect("native coin: checkout, pay, webhook, confirmations, ledger and subscription", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const { contract, plan } = yield* registerContractAndPlan(app, "pro", { native: NATIVE_PRICE, token: TOKEN_PRICE })
      assert.strictEqual(contract.status, 201)
      assert.strictEqual(plan.status, 201)

      const user = app.token("user-native")
      const wallet = devAccount(1).address
      const res = yield* app.request("POST", "/v1/billing/checkout", {
        token: user,
        body: { plan_slug: "pro", wallet_address: wallet, network: "anvil", token: "native" }
      })
      assert.strictEqual(res.status, 201)
      const checkout = checkoutOf(res)
      assert.strictEqual(checkout.status, "pending")
      assert.strictEqual(checkout.amount, NATIVE_PRICE.toString())
      assert.strictEqual(checkout.payload.transactions.length, 1)
      assert.strictEqual(checkout.payload.transactions[0]!.value, NATIVE_PRICE.toString())
      assert.isTrue(BigInt(checkout.payload.transactions[0]!.gas) <= 1_000_000n)

      const [receipt] = yield* sendPayload(app, checkout, 1)
      assert.strictEqual(receipt!.status, "success")
      const hook = yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))
      assert.deepStrictEqual([hook.status, hook.body], [202, { accepted: true, duplicate: false }])

      // One block deep (automine): seen, not confirmed.
      yield* waitForStatus(checkout.transaction_id, "seen")
      assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 0)
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")

      const postings = yield* postingsOf(checkout.transaction_id)
      assert.deepStrictEqual(postings, [
        { account: "treasury:anvil", asset: "anvil:native", amount: NATIVE_PRICE.toString() },
        { account: "revenue:anvil", asset: "anvil:native", amount: (-NATIVE_PRICE).toString() }
      ])
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)

      const summary = decode(Summary)(yield* app.request("GET", "/v1/billing/me/summary", { token: user }))
      assert.strictEqual(summary.wallet, wallet.toLowerCase())
      assert.strictEqual(summary.subscription?.plan_slug, "pro")
      assert.strictEqual(summary.subscription?.status, "active")
      const days = periodDays(summary.subscription!.current_period_start, summary.subscription!.current_period_end)
      assert.isTrue(days >= 28 && days <= 31, `a month, got ${days} days`)
      assert.deepStrictEqual(summary.debt, [])
      assert.strictEqual(summary.last_payment?.status, "confirmed")

      const history = decode(HistoryPage)(yield* app.request("GET", "/v1/billing/me/history", { token: user }))
      assert.strictEqual(history.items.length, 1)
      assert.strictEqual(history.items[0]!.tx_hash, receipt!.transactionHash)
      assert.strictEqual(history.items[0]!.status, "confirmed")
      assert.isNotNull(history.items[0]!.confirmed_at)

      const metrics = yield* scrapeText(app.baseUrl)
      assert.match(metrics, /billing_transactions_total\{[^}]*status="confirmed"[^}]*\} [1-9]/)
      assert.match(metrics, /billing_transactions_total\{[^}]*status="pending"[^}]*\} [1-9]/)
      assert.match(metrics, /billing_webhook_to_confirmation_seconds_count [1-9]/)

      // Paying again extends from the current period end.
      const again = checkoutOf(yield* app.request("POST", "/v1/billing/checkout", {
        token: user,
        body: { plan_slug: "pro", wallet_address: wallet, token: "native" }
      }))
      const [second] = yield* sendPayload(app, again, 1)
      yield* app.webhook(mintedEvent(PASS, second!))
      yield* mine(app, 1)
      yield* waitForStatus(again.transaction_id, "confirmed")
      const [sub] = yield* sql<{ start: Date; end: Date; n: string }>`SELECT current_period_start AS start,
        current_period_end AS end, (SELECT count(*) FROM subscriptions)::text AS n FROM subscriptions`
      assert.strictEqual(sub!.n, "1")
      const extended = periodDays(sub!.start.toISOString(), sub!.end.toISOString())
      assert.isTrue(extended >= 59 && extended <= 62, `two months, got ${extended} days`)
    }))

  it.effect("ERC-20: approve then mint, confirmed by the token amount", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "tokenplan", { native: NATIVE_PRICE, token: TOKEN_PRICE })
      const wallet = devAccount(2)
      yield* sendTx(app.devnet, () =>
        app.devnet.wallet(2).writeContract({
          address: app.devnet.info.token_address,
          abi: TestTokenAbi,
          functionName: "mint",
          args: [wallet.address, TOKEN_PRICE],
          chain: app.devnet.chain
        })).pipe(Effect.orDie)

      const user = app.token("user-token")
      const checkout = checkoutOf(yield* app.request("POST", "/v1/billing/checkout", {
        token: user,
        body: { plan_slug: "tokenplan", wallet_address: wallet.address, token: app.devnet.info.token_address }
      }))
      assert.strictEqual(checkout.token, app.devnet.info.token_address.toLowerCase())
      assert.strictEqual(checkout.payload.transactions.length, 2, "approve, then mint")
      assert.strictEqual(checkout.payload.transactions[0]!.to, app.devnet.info.token_address.toLowerCase())

      const receipts = yield* sendPayload(app, checkout, 2)
      assert.deepStrictEqual(receipts.map((r) => r.status), ["success", "success"])
      yield* app.webhook(mintedEvent(PASS, receipts[1]!, checkout.order_id))
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")

      const asset = `anvil:${app.devnet.info.token_address.toLowerCase()}`
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [
        { account: "treasury:anvil", asset, amount: TOKEN_PRICE.toString() },
        { account: "revenue:anvil", asset, amount: (-TOKEN_PRICE).toString() }
      ])
      const balance = yield* Effect.promise(() =>
        app.devnet.publicClient.readContract({
          address: app.devnet.info.token_address,
          abi: TestTokenAbi,
          functionName: "balanceOf",
          args: [app.devnet.info.treasury_address]
        }))
      assert.strictEqual(balance, TOKEN_PRICE)
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))

  it.effect("plans are public and list both prices as decimal strings", () =>
    Effect.gen(function*() {
      const app = yield* App
      const res = yield* app.request("GET", "/v1/billing/plans")
      assert.strictEqual(res.status, 200)
      const body = Schema.decodeUnknownSync(Schema.Struct({ items: Schema.Array(Schema.Struct({ slug: Schema.String, prices: Schema.Array(Schema.Struct({ amount: Schema.String })) })) }))(res.body)
      const pro = body.items.find((p) => p.slug === "pro")
      assert.deepStrictEqual(pro?.prices.map((p) => p.amount), [NATIVE_PRICE.toString(), TOKEN_PRICE.toString()])
    }))
})

