/**
 * One transaction that pays several orders (a contract wallet calling `mint` twice) carries several Minted logs:
 * each order is settled, and reversed by a deep reorg, on its own log. The listener is idle here, so webhooks are
 * the only hints and the test decides which log is reported when.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { decodeEventLog, type Hex, type TransactionReceipt } from "viem"
import { Payments } from "../../services/Payments.ts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import { App, appHarness, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { chainCall } from "../support/anvil.ts"
import { deployMultiPayer } from "../support/multiPayer.ts"
import { checkoutOf, mine, paymentStatus, postingsOf, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"

const PRICE = 10n ** 16n

/** The Minted logs of a receipt: which order each log index pays. */
const mintedLogs = (receipt: TransactionReceipt) =>
  receipt.logs.flatMap((log) => {
    const event = decodeEventLog({ abi: SubscriptionPassAbi, data: log.data, topics: log.topics })
    return event.eventName === "Minted" ? [{ orderId: event.args.orderId.toLowerCase(), logIndex: log.logIndex }] : []
  })

const hook = (receipt: TransactionReceipt, logIndex: number) => ({
  type: "payment.minted",
  contract: PASS,
  network: "anvil",
  tx_hash: receipt.transactionHash,
  log_index: logIndex
})

const ledgerOf = (paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: string; kind: string }>`SELECT id, kind FROM ledger_transactions WHERE payment_id = ${paymentId} ORDER BY kind, id`).pipe(Effect.orDie)

/** Two users check out one plan with the helper contract as their wallet; the helper pays both in one transaction. */
const payTwoOrders = (app: Harness, plan: string) =>
  Effect.gen(function*() {
    const payer = yield* deployMultiPayer(app.devnet, 6)
    yield* registerContractAndPlan(app, plan, { native: PRICE, token: 1n })
    const checkouts: Array<CheckoutView> = []
    for (const user of [`${plan}-a`, `${plan}-b`]) {
      const res = yield* app.request("POST", "/v1/billing/checkout", {
        token: app.token(user),
        body: { plan_slug: plan, wallet_address: payer.address, network: "anvil", token: "native" }
      })
      assert.strictEqual(res.status, 201)
      checkouts.push(checkoutOf(res))
    }
    const receipt = yield* payer.payAll(checkouts).pipe(Effect.orDie)
    assert.strictEqual(receipt.status, "success")
    const logs = mintedLogs(receipt)
    assert.deepStrictEqual(logs.map((l) => l.orderId), checkouts.map((c) => c.order_id), "one Minted log per order, in order")
    for (const { logIndex } of logs) yield* app.webhook(hook(receipt, logIndex))
    yield* mine(app, 1)
    for (const c of checkouts) yield* waitForStatus(c.transaction_id, "confirmed")
    return { receipt, orders: checkouts.map((c, i) => ({ checkout: c, logIndex: logs[i]!.logIndex })) }
  })

layer(appHarness({ env: { BILLING_LISTENER_POLL: "1 hour" } }), { timeout: 180_000, excludeTestServices: true })("several orders in one transaction", (it) => {
  it.effect("both orders of one transaction are confirmed, each with its own ledger transaction", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { orders } = yield* payTwoOrders(app, "multi")
      const ids = new Set<string>()
      for (const { checkout } of orders) {
        const ledger = yield* ledgerOf(checkout.transaction_id)
        assert.deepStrictEqual(ledger.map((l) => l.kind), ["payment"])
        ids.add(ledger[0]!.id)
        assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [
          { account: "treasury:anvil", asset: "anvil:native", amount: PRICE.toString() },
          { account: "revenue:anvil", asset: "anvil:native", amount: (-PRICE).toString() }
        ])
      }
      assert.strictEqual(ids.size, 2)
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))

  // Rewrites the chain's last blocks: keep this test last in the file.
  it.effect("a deep reorg of that transaction reverses each order on the hint about its own log", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { orders, receipt } = yield* payTwoOrders(app, "multi-reorg")
      yield* mine(app, 1)
      const head = yield* chainCall(() => app.devnet.publicClient.getBlockNumber()).pipe(Effect.orDie)
      const depth = Number(head - receipt.blockNumber) + 1
      yield* chainCall(() =>
        app.devnet.testClient.request<{ Parameters: [number, Array<readonly [Hex, number]>]; ReturnType: null }>({
          method: "anvil_reorg",
          params: [depth, []]
        })).pipe(Effect.orDie)

      // First the order that a lookup by transaction hash alone would not pick: its own log must reverse it.
      const naive = yield* Effect.flatMap(Payments, (p) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => p.findOne(sql`t.tx_hash = ${receipt.transactionHash.toLowerCase()}`))).pipe(
        Effect.provide(Payments.Default)
      )
      const picked = Option.getOrThrow(naive).id
      const first = orders.find((o) => o.checkout.transaction_id !== picked)!
      const then = orders.find((o) => o.checkout.transaction_id === picked)!
      yield* app.webhook(hook(receipt, first.logIndex))
      yield* waitForStatus(first.checkout.transaction_id, "reversed")
      assert.strictEqual((yield* paymentStatus(then.checkout.transaction_id)).status, "confirmed", "the other order is untouched")

      yield* app.webhook(hook(receipt, then.logIndex))
      yield* waitForStatus(then.checkout.transaction_id, "reversed")
      const ids = new Set<string>()
      for (const { checkout } of orders) {
        const ledger = yield* ledgerOf(checkout.transaction_id)
        assert.deepStrictEqual(ledger.map((l) => l.kind), ["payment", "reversal"])
        for (const l of ledger) ids.add(l.id)
        const postings = yield* postingsOf(checkout.transaction_id)
        assert.strictEqual(postings.reduce((sum, p) => sum + BigInt(p.amount), 0n), 0n)
        assert.strictEqual(postings.length, 4)
      }
      assert.strictEqual(ids.size, 4)
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))
})
