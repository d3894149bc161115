/**
 * A payment confirmed through the webhook path only, whose log the listener never recorded (its contract was
 * paused for the listener while it scanned that block), is still reversed when a deep reorg drops it: the
 * rewind re-checks every seen or confirmed payment above the common ancestor, not only its own `chain_logs`.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import { App, appHarness, PASS } from "../support/app.ts"
import { chainCall } from "../support/anvil.ts"
import { listenerCaughtUp, reorg } from "../support/chain.ts"
import {
  assertReversedInLedger,
  checkoutNative,
  mine,
  mintedEvent,
  sendPayload,
  waitForStatus
} from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 1_000_000n }
const env = { BILLING_LISTENER_POLL: "200 millis", APP_BILLING_FINANCE_OPS_USER_ID: "fin-ops" }

layer(appHarness({ env }), { timeout: 120_000, excludeTestServices: true })("a rewind re-checks payments", (it) => {
  it.effect("confirmed by webhook only, never recorded by the listener, reorged away deeply: reversed, ledger balanced", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const { checkout } = yield* checkoutNative(app, "phantom", PRICES, "phantom-user", 1)
      // The listener watches enabled contracts only; the webhook path still settles the contract's payments.
      const paused = yield* app.request("PATCH", `/v1/billing/admin/contracts/${PASS}`, { token: app.admin, body: { enabled: false } })
      assert.strictEqual(paused.status, 200)

      const [receipt] = yield* sendPayload(app, checkout, 1)
      assert.strictEqual(receipt!.status, "success")
      const hook = yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))
      assert.strictEqual(hook.status, 202)
      yield* mine(app, 2)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      const tip = yield* listenerCaughtUp(app)
      const recorded = yield* sql`SELECT 1 FROM chain_logs WHERE tx_hash = ${receipt!.transactionHash}`
      assert.strictEqual(recorded.length, 0, "the listener scanned past the payment without recording its log")

      const depth = Number(tip.number - receipt!.blockNumber) + 1
      assert.strictEqual(depth, 3, "three blocks deep, confirmations = 2")
      yield* reorg(app, depth)
      const gone = yield* Effect.either(chainCall(() => app.devnet.publicClient.getTransactionReceipt({ hash: receipt!.transactionHash })))
      assert.isTrue(Either.isLeft(gone), "the transaction is dropped for good")

      yield* waitForStatus(checkout.transaction_id, "reversed")
      yield* assertReversedInLedger(checkout.transaction_id)
    }))
})
