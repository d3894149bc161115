/**
 * Reorgs that land between two reads (the chaos suite's reorg scenario found these): a confirmation read from the
 * chain before a reorg must not commit after the listener has handled that reorg (the listener would never look at
 * the block again); the listener refuses to commit a range in which a payment was settled since it looked; and a
 * reorg between the listener's log read and its block reads must not hide the mints the new blocks carry.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { Hex, TransactionReceipt } from "viem"
import { ChainState } from "../../services/ChainState.ts"
import { Settlement } from "../../services/Settlement.ts"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import { App, appHarness, eventually, type Harness, PASS } from "../support/app.ts"
import { chainCall } from "../support/anvil.ts"
import { cursor, listenerCaughtUp, reorg } from "../support/chain.ts"
import { rpcProxy } from "../support/rpcProxy.ts"
import { assertReversedInLedger, checkoutNative, mine, mintedEvent, passLogIndex, paymentStatus, sendPayload, waitForStatus } from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 1_000_000n }
const env = { BILLING_LISTENER_POLL: "200 millis" }

/** What the processor would settle from a receipt it read, whether or not that receipt is still canonical. */
const settleFrom = (app: Harness, checkout: CheckoutView, receipt: TransactionReceipt) =>
  Effect.flatMap(Settlement, (settlement) =>
    settlement.settleMint({
      dedupeKey: `31337:${receipt.transactionHash}:${passLogIndex(receipt)}:${receipt.blockHash}`,
      source: "test:stale-read",
      paymentId: checkout.transaction_id,
      verdict: { _tag: "Match", excess: 0n },
      log: {
        network: "anvil",
        chainId: 31337,
        txHash: receipt.transactionHash,
        logIndex: passLogIndex(receipt),
        orderId: checkout.order_id,
        blockNumber: receipt.blockNumber,
        blockHash: receipt.blockHash,
        token: "native",
        amount: PRICES.native
      },
      stillCanonical: chainCall(() => app.devnet.publicClient.getBlock({ blockNumber: receipt.blockNumber })).pipe(
        Effect.orDie,
        Effect.map((b) => b.hash === receipt.blockHash)
      )
    })).pipe(Effect.provide(Settlement.Default))

/** The service's RPC endpoints, as crypto-config sets them. */
const useEndpoints = (app: Harness, urls: ReadonlyArray<string>) =>
  app.request("POST", "/v1/billing/overview/crypto-config", { token: app.token("fin", ["finance_ops"]), body: { rpc_endpoints: { anvil: urls } } })

/**
 * The service's one RPC endpoint becomes a proxy the test can break or hook (see rpcProxy), until the test's scope
 * closes: then the node itself again, before the proxy goes, so the next test finds a working endpoint.
 */
const onlyThroughProxy = (app: Harness) =>
  Effect.gen(function*() {
    const proxy = yield* rpcProxy(app.devnet.info.rpc_url)
    const switched = yield* Effect.acquireRelease(useEndpoints(app, [proxy.url]), () => useEndpoints(app, [app.devnet.info.rpc_url]))
    assert.strictEqual(switched.status, 200)
    return proxy
  })

const ledgerRowsOf = (paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1 FROM ledger_transactions WHERE payment_id = ${paymentId}`).pipe(Effect.orDie)

layer(appHarness({ env }), { timeout: 120_000, excludeTestServices: true })("reorg races", (it) => {
  it.effect("a receipt read before a reorg the listener has since scanned over is not settled", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout } = yield* checkoutNative(app, "stale", PRICES, "stale-user", 1)
      const [receipt] = yield* sendPayload(app, checkout, 1)
      assert.strictEqual(receipt!.status, "success")
      // The read the processor made; then the block is replaced and the listener scans past its height.
      yield* reorg(app, 1)
      const gone = yield* Effect.either(chainCall(() => app.devnet.publicClient.getTransactionReceipt({ hash: receipt!.transactionHash })))
      assert.isTrue(Either.isLeft(gone), "the transaction is gone with its block")
      yield* mine(app, 3)
      const tip = yield* listenerCaughtUp(app)
      assert.isTrue(tip.number > receipt!.blockNumber)
      yield* waitForStatus(checkout.transaction_id, "pending")

      const outcome = yield* settleFrom(app, checkout, receipt!)
      assert.strictEqual(outcome, "stale")
      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "pending")
      assert.strictEqual((yield* ledgerRowsOf(checkout.transaction_id)).length, 0, "nothing posted")
    }))

  it.effect("a log the listener skipped (its contract was not watched) in a block still canonical is settled", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout } = yield* checkoutNative(app, "unwatched", PRICES, "unwatched-user", 2)
      const paused = yield* app.request("PATCH", `/v1/billing/admin/contracts/${PASS}`, { token: app.admin, body: { enabled: false } })
      assert.strictEqual(paused.status, 200)
      const [receipt] = yield* sendPayload(app, checkout, 2)
      yield* mine(app, 3)
      yield* listenerCaughtUp(app)
      const sql = yield* SqlClient.SqlClient
      assert.strictEqual((yield* sql`SELECT 1 FROM chain_logs WHERE tx_hash = ${receipt!.transactionHash}`.pipe(Effect.orDie)).length, 0)

      assert.strictEqual(yield* settleFrom(app, checkout, receipt!), "confirmed")
      const resumed = yield* app.request("PATCH", `/v1/billing/admin/contracts/${PASS}`, { token: app.admin, body: { enabled: true } })
      assert.strictEqual(resumed.status, 200)
    }))

  it.effect("a webhook naming the log index its transaction had before it was mined again still names its pass event", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout } = yield* checkoutNative(app, "moved", PRICES, "moved-user", 4)
      // Unwatched, so only the webhook can confirm it.
      yield* app.request("PATCH", `/v1/billing/admin/contracts/${PASS}`, { token: app.admin, body: { enabled: false } })
      const [receipt] = yield* sendPayload(app, checkout, 4)
      const hook = yield* app.webhook({ ...mintedEvent(PASS, receipt!, checkout.order_id), log_index: passLogIndex(receipt!) + 3 })
      assert.strictEqual(hook.status, 202)
      yield* mine(app, 2)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      yield* app.request("PATCH", `/v1/billing/admin/contracts/${PASS}`, { token: app.admin, body: { enabled: true } })
    }))

  it.scoped("a reorg between the listener's log read and its block reads does not hide the mint the new block carries", () =>
    Effect.gen(function*() {
      const app = yield* App
      const proxy = yield* onlyThroughProxy(app)
      const { checkout } = yield* checkoutNative(app, "hidden", PRICES, "hidden-user", 5)
      yield* listenerCaughtUp(app)
      const tx = checkout.payload.transactions[0]!
      const wallet = app.devnet.wallet(5)
      const raw = yield* chainCall(async () =>
        wallet.signTransaction(
          await wallet.prepareTransactionRequest({ to: tx.to as Hex, data: tx.data as Hex, value: BigInt(tx.value), gas: BigInt(tx.gas), chain: app.devnet.chain })
        ))
      // The listener's next log read is answered from the chain as it was; before the answer reaches it, the newest
      // block is replaced by one holding the mint. No webhook: only the listener can find this payment.
      let reorged = false
      yield* proxy.beforeAnswer(async (methods) => {
        if (reorged || !methods.includes("eth_getLogs")) return
        reorged = true
        await app.devnet.testClient.request<{ Parameters: [number, Array<readonly [Hex, number]>]; ReturnType: null }>({
          method: "anvil_reorg",
          params: [1, [[raw, 0]]]
        })
      })
      yield* mine(app, 2)
      yield* eventually(Effect.sync(() => reorged), (done) => done, "the reorg during a log read")
      yield* proxy.beforeAnswer(undefined)
      yield* mine(app, 2)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
    }))

  it.scoped("a payment left in a replaced block behind the listener (its bookkeeping missed the reorg) is still reversed", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const proxy = yield* onlyThroughProxy(app)
      const { checkout } = yield* checkoutNative(app, "missed", PRICES, "missed-user", 6)
      const [receipt] = yield* sendPayload(app, checkout, 6)
      yield* mine(app, 2)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      const tip = yield* listenerCaughtUp(app)

      // The service blind for a moment; the payment's block replaced and the listener's state rewritten as if it had
      // scanned the new blocks without noticing (the kind of miss a race would leave).
      yield* proxy.setMode("fail")
      yield* reorg(app, Number(tip.number - receipt!.blockNumber) + 1)
      const now = yield* chainCall(() => app.devnet.publicClient.getBlock({ blockNumber: tip.number }))
      yield* sql`DELETE FROM chain_logs WHERE tx_hash = ${receipt!.transactionHash}`.pipe(Effect.orDie)
      yield* sql`UPDATE chain_blocks SET block_hash = ${now.hash} WHERE network = 'anvil' AND block_number = ${tip.number.toString()}`.pipe(Effect.orDie)
      yield* sql`DELETE FROM chain_blocks WHERE network = 'anvil' AND block_number >= ${receipt!.blockNumber.toString()}
        AND block_number < ${tip.number.toString()}`.pipe(Effect.orDie)
      yield* sql`UPDATE chain_cursors SET block_hash = ${now.hash} WHERE network = 'anvil'`.pipe(Effect.orDie)
      yield* proxy.setMode("proxy")

      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "reversed")
      yield* assertReversedInLedger(checkout.transaction_id)
    }))

  it.effect("the listener does not commit a range in which a payment was settled, since it looked, in a block it did not see", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const state = yield* ChainState.pipe(Effect.provide(ChainState.Default))
      const tip = yield* listenerCaughtUp(app)
      const { checkout } = yield* checkoutNative(app, "racing", PRICES, "racing-user", 3)
      // A payment settled just above the cursor, as a processor commit racing the listener's tick would leave it.
      const above = tip.number + 1n
      const stale = `0x${"5e".repeat(32)}`
      yield* sql`UPDATE payment_transactions SET status = 'seen', tx_hash = ${`0x${"ab".repeat(32)}`}, log_index = 0,
        block_number = ${above.toString()}, block_hash = ${stale} WHERE id = ${checkout.transaction_id}`.pipe(Effect.orDie)
      const from = { blockNumber: tip.number, blockHash: tip.hash }
      const to = { blockNumber: above + 1n, blockHash: `0x${"0e".repeat(32)}` }

      const racing = yield* state.commitRange("anvil", [], to, { from, settled: [], hashAt: () => undefined })
      assert.isFalse(racing, "a payment settled in the range since the tick read them")
      const moved = yield* state.commitRange("anvil", [], to, { from: { ...from, blockHash: stale }, settled: [], hashAt: () => stale })
      assert.isFalse(moved, "the cursor is not where the tick started")
      const held = yield* cursor
      assert.deepStrictEqual(held, { number: tip.number, hash: tip.hash }, "nothing committed")
      yield* sql`UPDATE payment_transactions SET status = 'pending', tx_hash = NULL, log_index = NULL, block_number = NULL,
        block_hash = NULL WHERE id = ${checkout.transaction_id}`.pipe(Effect.orDie)
    }))
})
