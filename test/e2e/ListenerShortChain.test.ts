/**
 * A chain head below the listener's cursor (evm_revert to a snapshot) is a possible reorg: the listener holds its
 * cursor until the drop is confirmed, by a second endpoint of the network or by `BILLING_LISTENER_SHORT_CHAIN_TIMEOUT`,
 * then rewinds to the common ancestor, publishes removals and goes on on the shorter chain, without waiting for
 * it to grow past the old cursor. No webhook anywhere: only the listener finds payments.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { App, appHarness, eventually, type Harness, registerContractAndPlan } from "../support/app.ts"
import { cursor, listenerCaughtUp, revert, snapshot } from "../support/chain.ts"
import { scrape, total } from "../support/metrics.ts"
import { mine, payWithoutWebhook, postingsOf, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"
import { rpcProxy } from "../support/rpcProxy.ts"

const PRICES = { native: 10n ** 16n, token: 1_000_000n }
const ANVIL = { network: "anvil" }

// Metrics live in the process: both harnesses of this file add to the same counters, so tests compare deltas.
const metric = (app: Harness, name: string) => Effect.map(scrape(app.baseUrl), (m) => total(m, name, ANVIL))

layer(
  appHarness({ env: { BILLING_LISTENER_POLL: "200 millis", BILLING_LISTENER_SHORT_CHAIN_TIMEOUT: "1 second" } }),
  { timeout: 120_000, excludeTestServices: true }
)("a chain shorter than the cursor, one endpoint", (it) => {
  it.effect("after the timeout the listener rewinds, the dropped payment is reversed and a new one confirmed below the old cursor", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      yield* registerContractAndPlan(app, "short", PRICES)
      yield* listenerCaughtUp(app)
      const saved = yield* snapshot(app)
      const dropped = yield* payWithoutWebhook(app, "short", "short-1", 1)
      yield* mine(app, 6)
      yield* waitForStatus(dropped.checkout.transaction_id, "confirmed")
      const old = yield* listenerCaughtUp(app)
      const shortHeads = yield* metric(app, "billing_chain_short_head_total")
      const reorgs = yield* metric(app, "billing_chain_reorgs_total")

      yield* revert(app, saved)
      // Two blocks on the shorter chain: the dropped payment's height is then held by a final block without it.
      yield* mine(app, 2)
      const kept = yield* payWithoutWebhook(app, "short", "short-2", 2)
      yield* mine(app, 1)
      assert.isTrue(kept.receipt.blockNumber + 1n < old.number, "the new chain stays below the old cursor")

      yield* waitForStatus(kept.checkout.transaction_id, "confirmed")
      yield* waitForStatus(dropped.checkout.transaction_id, "reversed")
      const tip = yield* listenerCaughtUp(app)
      assert.isTrue(tip.number < old.number, "the listener went on before the chain grew past its old cursor")

      const reversal = yield* postingsOf(dropped.checkout.transaction_id)
      assert.strictEqual(reversal.length, 4, "the dropped payment and its reversal")
      assert.strictEqual((yield* postingsOf(kept.checkout.transaction_id)).length, 2)
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
      const logs = yield* sql<{ tx_hash: string }>`SELECT tx_hash FROM chain_logs WHERE network = 'anvil'`
      assert.deepStrictEqual(logs.map((l) => l.tx_hash), [kept.receipt.transactionHash], "the dropped log is forgotten")

      assert.strictEqual(yield* metric(app, "billing_chain_short_head_total"), shortHeads + 1)
      assert.strictEqual(yield* metric(app, "billing_chain_short_head_blocks"), 0)
      assert.strictEqual(yield* metric(app, "billing_chain_reorgs_total"), reorgs + 1)
    }))
})

layer(
  appHarness({ env: { BILLING_LISTENER_POLL: "200 millis", BILLING_LISTENER_SHORT_CHAIN_TIMEOUT: "1 hour" } }),
  { timeout: 120_000, excludeTestServices: true }
)("a chain shorter than the cursor, two endpoints", (it) => {
  it.scoped("one endpoint alone holds the cursor; a second endpoint agreeing confirms the rewind at once", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "agreed", PRICES)
      const base = yield* listenerCaughtUp(app)
      const saved = yield* snapshot(app)
      yield* mine(app, 5)
      const old = yield* listenerCaughtUp(app)
      const shortHeads = yield* metric(app, "billing_chain_short_head_total")

      yield* revert(app, saved)
      // One endpoint, the timeout an hour away: the listener sees the short head and keeps its cursor.
      const below = Number(old.number - base.number)
      yield* eventually(metric(app, "billing_chain_short_head_blocks"), (n) => n === below, "the short head to be seen")
      assert.deepStrictEqual(yield* cursor, { number: old.number, hash: old.hash })

      const proxy = yield* rpcProxy(app.devnet.info.rpc_url)
      const switched = yield* app.request("POST", "/v1/billing/overview/crypto-config", {
        token: app.token("fin", ["finance_ops"]),
        body: { rpc_endpoints: { anvil: [app.devnet.info.rpc_url, proxy.url] } }
      })
      assert.strictEqual(switched.status, 200)

      const paid = yield* payWithoutWebhook(app, "agreed", "agreed-1", 1)
      yield* mine(app, 1)
      assert.isTrue(paid.receipt.blockNumber + 1n < old.number)
      yield* waitForStatus(paid.checkout.transaction_id, "confirmed")
      const tip = yield* listenerCaughtUp(app)
      assert.isTrue(tip.number < old.number, "the listener went on before the chain grew past its old cursor")
      assert.isAbove(yield* proxy.requests, 0, "the second endpoint was asked")
      assert.strictEqual(yield* metric(app, "billing_chain_short_head_total"), shortHeads + 1)
      assert.strictEqual(yield* metric(app, "billing_chain_short_head_blocks"), 0)
    }))
})
