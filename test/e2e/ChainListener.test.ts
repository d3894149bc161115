/**
 * The ChainListener alone, no webhook anywhere: it finds payments and burns on the chain, and anvil_reorg drives
 * shallow reorgs (a seen payment returns to pending) and deep ones (a confirmed payment is reversed, or posted only
 * once when the replacement chain re-includes its transaction under another log index).
 *
 * anvil_reorg(depth, pairs) replaces the `depth` newest blocks with as many new ones (the head height stays);
 * their transactions vanish (not back in the mempool, the sender's nonce is free again); `pairs` are
 * [raw signed tx, offset] with offset 0 = the first replacement block.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { decodeEventLog, encodeFunctionData, type Hash, type Hex, type TransactionReceipt } from "viem"
import { SubscriptionPassAbi, TestTokenAbi } from "../../src/contracts/abi.ts"
import { Summary } from "../../src/http/Me/Api.ts"
import { App, appHarness, decode, eventually, type Harness, registerContractAndPlan } from "../support/app.ts"
import { chainCall, devAccount, sendTx } from "../support/anvil.ts"
import {
  assertReversedInLedger,
  checkoutOf,
  mine,
  passLogIndex,
  paymentStatus,
  postingsOf,
  sendPayload,
  unbalancedLedgerTransactions,
  waitForStatus
} from "../support/payments.ts"

const PRICE = 10n ** 16n

const reorg = (app: Harness, depth: number, include: ReadonlyArray<readonly [Hex, number]> = []) =>
  chainCall(() =>
    app.devnet.testClient.request<{ Parameters: [number, Array<readonly [Hex, number]>]; ReturnType: null }>({
      method: "anvil_reorg",
      params: [depth, [...include]]
    })
  ).pipe(Effect.orDie)

const rawTransaction = (app: Harness, hash: Hash) =>
  chainCall(() =>
    app.devnet.publicClient.request<{ Parameters: [Hash]; ReturnType: Hex }>({ method: "eth_getRawTransactionByHash", params: [hash] })
  ).pipe(Effect.orDie)

/** A signed, unsent transaction from dev account `account` that emits one log (a TestToken mint): filler for a reorg. */
const signedTokenMint = (app: Harness, account: number) =>
  Effect.gen(function*() {
    const wallet = app.devnet.wallet(account)
    const request = yield* chainCall(() =>
      wallet.prepareTransactionRequest({
        to: app.devnet.info.token_address,
        data: encodeFunctionData({ abi: TestTokenAbi, functionName: "mint", args: [devAccount(account).address, 1n] }),
        chain: app.devnet.chain
      })
    )
    return yield* chainCall(() => wallet.signTransaction(request))
  }).pipe(Effect.orDie)

const head = (app: Harness) => chainCall(() => app.devnet.publicClient.getBlock()).pipe(Effect.orDie)

/** Waits until the listener's cursor is at the chain head (same height and hash): it has scanned every block. */
const listenerCaughtUp = (app: Harness) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tip = yield* head(app)
    yield* eventually(
      sql<{ block_number: string; block_hash: string }>`SELECT block_number::text AS block_number, block_hash FROM chain_cursors
        WHERE network = 'anvil'`.pipe(Effect.orDie),
      (rows) => rows[0]?.block_number === tip.number.toString() && rows[0]?.block_hash === tip.hash,
      `listener at block ${tip.number}`
    )
    return tip
  })

/** A plan named after `user`, a native-coin checkout over HTTP, paid from dev account `account`: no webhook. */
const payWithoutWebhook = (app: Harness, user: string, account: number) =>
  Effect.gen(function*() {
    yield* registerContractAndPlan(app, user, { native: PRICE, token: 1n })
    const token = app.token(user)
    const res = yield* app.request("POST", "/v1/billing/checkout", {
      token,
      body: { plan_slug: user, wallet_address: devAccount(account).address, network: "anvil", token: "native" }
    })
    assert.strictEqual(res.status, 201)
    const checkout = checkoutOf(res)
    const [receipt] = yield* sendPayload(app, checkout, account)
    assert.strictEqual(receipt!.status, "success")
    return { checkout, token, receipt: receipt! }
  })

const passIdOf = (receipt: TransactionReceipt) => {
  const log = receipt.logs.find((l) => l.logIndex === passLogIndex(receipt))!
  const event = decodeEventLog({ abi: SubscriptionPassAbi, data: log.data, topics: log.topics })
  if (event.eventName !== "Minted") throw new Error(`expected Minted, got ${event.eventName}`)
  return event.args.passId
}

const countWhere = (table: "ledger_transactions" | "processed_events", paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ n: string }>`SELECT count(*)::text AS n FROM ${sql(table)} WHERE payment_id = ${paymentId}`).pipe(
    Effect.orDie,
    Effect.map((rows) => Number(rows[0]!.n))
  )

const subscriptionOf = (user: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ status: string; cancel_at_period_end: boolean; current_period_end: Date }>`SELECT status, cancel_at_period_end,
      current_period_end FROM subscriptions WHERE user_id = ${user}`).pipe(Effect.orDie, Effect.map((rows) => rows[0]))

const env = { BILLING_LISTENER_POLL: "200 millis", APP_BILLING_FINANCE_OPS_USER_ID: "fin-ops" }

layer(appHarness({ env }), { timeout: 120_000, excludeTestServices: true })("the chain listener, without webhooks", (it) => {
  it.effect("confirms a payment that no webhook announced", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout, token } = yield* payWithoutWebhook(app, "listener-only", 1)
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")

      assert.strictEqual(yield* countWhere("ledger_transactions", checkout.transaction_id), 1)
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [
        { account: "treasury:anvil", asset: "anvil:native", amount: PRICE.toString() },
        { account: "revenue:anvil", asset: "anvil:native", amount: (-PRICE).toString() }
      ])
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
      const sql = yield* SqlClient.SqlClient
      const sources = yield* sql<{ source: string }>`SELECT source FROM processed_events WHERE payment_id = ${checkout.transaction_id}`
      assert.deepStrictEqual(sources.map((s) => s.source.split(":")[0]), ["chain"])
      const summary = decode(Summary)(yield* app.request("GET", "/v1/billing/me/summary", { token }))
      assert.strictEqual(summary.subscription?.status, "active")
      assert.strictEqual(summary.last_payment?.status, "confirmed")
    }))

  it.effect("a reorg before confirmation: back to pending, then confirmed once when the tx is mined again", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout, receipt } = yield* payWithoutWebhook(app, "shallow-reorg", 3)
      yield* waitForStatus(checkout.transaction_id, "seen")
      const tip = yield* listenerCaughtUp(app)
      assert.strictEqual(tip.number, receipt.blockNumber, "one block deep")
      const raw = yield* rawTransaction(app, receipt.transactionHash)

      yield* reorg(app, 1)
      const replaced = yield* head(app)
      assert.strictEqual(replaced.number, receipt.blockNumber)
      assert.notStrictEqual(replaced.hash, receipt.blockHash)
      yield* waitForStatus(checkout.transaction_id, "pending")

      // The chain moves on without the transaction: nothing is confirmed or posted.
      yield* mine(app, 3)
      yield* listenerCaughtUp(app)
      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "pending")
      assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 0)

      // The same signed transaction (same nonce, same hash) lands in a later block.
      const hash = yield* chainCall(() => app.devnet.wallet(3).sendRawTransaction({ serializedTransaction: raw })).pipe(Effect.orDie)
      assert.strictEqual(hash, receipt.transactionHash)
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      yield* listenerCaughtUp(app)
      assert.strictEqual(yield* countWhere("ledger_transactions", checkout.transaction_id), 1)
      assert.strictEqual(yield* countWhere("processed_events", checkout.transaction_id), 1)
      assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 2)
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))

  it.effect("a reorg deeper than the confirmations reverses a confirmed payment", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const { checkout, receipt } = yield* payWithoutWebhook(app, "deep-reorg", 4)
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      assert.strictEqual((yield* subscriptionOf("deep-reorg"))?.status, "active")
      yield* mine(app, 1)
      const tip = yield* listenerCaughtUp(app)
      const depth = Number(tip.number - receipt.blockNumber) + 1
      assert.strictEqual(depth, 3, "three blocks deep, confirmations = 2")

      yield* reorg(app, depth)
      yield* waitForStatus(checkout.transaction_id, "reversed")

      yield* assertReversedInLedger(checkout.transaction_id)
      assert.strictEqual((yield* subscriptionOf("deep-reorg"))?.status, "expired")

      const notified = yield* sql<{ user_id: string; tx_hash: string }>`SELECT user_id, payload->>'tx_hash' AS tx_hash FROM notifications
        WHERE kind = 'payment.reversed' AND payload->>'transaction_id' = ${checkout.transaction_id} ORDER BY user_id`
      assert.deepStrictEqual(notified.map((n) => n.user_id), ["deep-reorg", "fin-ops"])
      assert.isTrue(notified.every((n) => n.tx_hash === receipt.transactionHash))
    }))

  it.effect("a burned pass, with no webhook, cancels the subscription at the period end once deep enough", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout, receipt } = yield* payWithoutWebhook(app, "burner", 5)
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      assert.strictEqual((yield* subscriptionOf("burner"))?.cancel_at_period_end, false)

      yield* sendTx(app.devnet, () =>
        app.devnet.wallet(5).writeContract({
          address: app.devnet.info.contract_address,
          abi: SubscriptionPassAbi,
          functionName: "burn",
          args: [passIdOf(receipt)],
          chain: app.devnet.chain
        })).pipe(Effect.orDie)
      yield* mine(app, 1)
      const sub = yield* eventually(subscriptionOf("burner"), (s) => s?.cancel_at_period_end === true, "cancel_at_period_end")
      assert.strictEqual(sub?.status, "active", "runs to the period end")
      assert.isTrue(sub!.current_period_end.getTime() > Date.now())
    }))

  it.effect("a deep reorg that moves a confirmed payment behind another log: still confirmed, posted once", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const { checkout, receipt } = yield* payWithoutWebhook(app, "moved", 2)
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      yield* mine(app, 1)
      yield* listenerCaughtUp(app)
      const raw = yield* rawTransaction(app, receipt.transactionHash)
      const filler = yield* signedTokenMint(app, 7)

      // Blocks N..N+2 replaced; the payment lands in N+1 after the filler's Transfer log, so its log index changes.
      yield* reorg(app, 3, [[filler, 1], [raw, 1]])
      const moved = yield* chainCall(() => app.devnet.publicClient.getTransactionReceipt({ hash: receipt.transactionHash })).pipe(Effect.orDie)
      assert.strictEqual(moved.blockNumber, receipt.blockNumber + 1n)
      assert.notStrictEqual(passLogIndex(moved), passLogIndex(receipt))
      yield* mine(app, 1)
      yield* listenerCaughtUp(app)
      // Both locations of the log were handled: the first confirmed, the moved one found the transfer already posted.
      yield* eventually(countWhere("processed_events", checkout.transaction_id), (n) => n === 2, "the moved log handled")

      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "confirmed")
      assert.strictEqual(yield* countWhere("ledger_transactions", checkout.transaction_id), 1)
      assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 2)
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
      const reversals = yield* sql`SELECT 1 FROM notifications WHERE kind = 'payment.reversed'
        AND payload->>'transaction_id' = ${checkout.transaction_id}`
      assert.strictEqual(reversals.length, 0)
    }))
})
