/**
 * Invariant 5 end to end: a payment whose on-chain terms do not match its checkout fails with the right
 * `failure_reason`, never activates a subscription, and money that moved is held as customer credit. A reverted
 * transaction moved nothing: it is an attempt, and the checkout stays payable.
 * The contract enforces the EIP-712 quote, so mismatching payments are made with quotes the test signs itself
 * with the billing signer's key (`mintWithQuote`).
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { type Hex, zeroAddress } from "viem"
import { TestTokenAbi } from "../../src/contracts/abi.ts"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import { DeadLetterHeaders } from "../../services/Subjects.ts"
import { Nats } from "../../services/Nats.ts"
import { App, appHarness, eventually, type Harness, PASS } from "../support/app.ts"
import { devAccount, latestTimestamp, sendTx } from "../support/anvil.ts"
import {
  checkoutNative,
  failedEverywhere,
  mine,
  mintedEvent,
  mintWithQuote,
  type OwnQuote,
  paymentStatus,
  postingsOf,
  revertedHook,
  settledOverHttp
} from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 25_000_000n }
const NATIVE_ASSET = "anvil:native"

/** A quote for the checkout's order and payer on the devnet's contract, with the checkout's terms unless overridden. */
const quoteFor = (app: Harness, checkout: CheckoutView, over: Partial<OwnQuote> = {}): OwnQuote => ({
  contract: app.devnet.info.contract_address,
  orderId: checkout.order_id as Hex,
  token: zeroAddress,
  amount: BigInt(checkout.amount),
  deadline: BigInt(checkout.payload.deadline),
  ...over
})

/** The relayer's hint, then enough blocks on top for the processor to settle it. */
const notifyAndBury = (app: Harness, event: unknown) =>
  Effect.gen(function*() {
    const hook = yield* app.webhook(event)
    assert.deepStrictEqual([hook.status, hook.body], [202, { accepted: true, duplicate: false }])
    yield* mine(app, 2)
  })

/** Money that moved but paid for nothing: the treasury holds it as the user's credit, no revenue. */
const heldAsCredit = (userId: string, asset: string, paid: bigint) => [
  { account: "treasury:anvil", asset, amount: paid.toString() },
  { account: `customer_credit:${userId}`, asset, amount: (-paid).toString() }
]

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("payment failures over HTTP", (it) => {
  it.effect("underpaid: a smaller amount on chain fails the payment and credits what was paid", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "user-underpaid"
      const { checkout, token } = yield* checkoutNative(app, "underpaid", PRICES, user, 1)
      const paid = PRICES.native / 2n
      const receipt = yield* mintWithQuote(app.devnet, 1, quoteFor(app, checkout, { amount: paid }))
      yield* notifyAndBury(app, mintedEvent(PASS, receipt, checkout.order_id))

      const { item, seen } = yield* settledOverHttp(app, token, checkout)
      assert.deepStrictEqual(seen, failedEverywhere(checkout, "underpaid"))
      assert.deepStrictEqual([item?.tx_hash, item?.paid_amount], [receipt.transactionHash, paid.toString()])
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), heldAsCredit(user, NATIVE_ASSET, paid))
    }))

  it.effect("wrong_token: paying a native-coin checkout with the test token fails it and credits the token", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "user-wrong-token"
      const { checkout, token } = yield* checkoutNative(app, "wrongtoken", PRICES, user, 2)
      const tokenAddress = app.devnet.info.token_address
      const wallet = app.devnet.wallet(2)
      for (const [functionName, args] of [
        ["mint", [devAccount(2).address, PRICES.token]],
        ["approve", [app.devnet.info.contract_address, PRICES.token]]
      ] as const) {
        yield* sendTx(app.devnet, () =>
          wallet.writeContract({ address: tokenAddress, abi: TestTokenAbi, functionName, args, chain: app.devnet.chain })).pipe(Effect.orDie)
      }
      const receipt = yield* mintWithQuote(app.devnet, 2, quoteFor(app, checkout, { token: tokenAddress, amount: PRICES.token }))
      yield* notifyAndBury(app, mintedEvent(PASS, receipt, checkout.order_id))

      const { item, seen } = yield* settledOverHttp(app, token, checkout)
      assert.deepStrictEqual(seen, failedEverywhere(checkout, "wrong_token"))
      assert.strictEqual(item?.paid_amount, PRICES.token.toString())
      assert.deepStrictEqual(
        yield* postingsOf(checkout.transaction_id),
        heldAsCredit(user, `anvil:${tokenAddress.toLowerCase()}`, PRICES.token)
      )
    }))

  it.effect("reverted: a mint that reverts on chain is only an attempt: nothing posted, the checkout stays payable", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const { checkout } = yield* checkoutNative(app, "reverted", PRICES, "user-reverted", 3)
      const tx = checkout.payload.transactions[0]!
      // An explicit gas limit: viem does not estimate, so the node mines the transaction and it reverts (Underpaid).
      const receipt = yield* sendTx(app.devnet, () =>
        app.devnet.wallet(3).sendTransaction({
          to: tx.to as Hex,
          data: tx.data as Hex,
          value: BigInt(tx.value) - 1n,
          gas: BigInt(tx.gas),
          chain: app.devnet.chain
        })).pipe(Effect.orDie)
      assert.strictEqual(receipt.status, "reverted")
      yield* notifyAndBury(app, revertedHook(PASS, receipt, checkout.order_id))

      // The full story (the proper payment afterwards) is in RevertedAttempt.test.ts.
      const attempts = sql<{ tx_hash: string }>`SELECT after->>'tx_hash' AS tx_hash FROM audit_log
        WHERE resource = ${`payment:${checkout.transaction_id}`} AND action = 'payment.attempt_reverted'`.pipe(Effect.orDie)
      const recorded = yield* eventually(attempts, (rows) => rows.length > 0, "the attempt recorded")
      assert.deepStrictEqual(recorded.map((r) => r.tx_hash), [receipt.transactionHash])
      const row = yield* paymentStatus(checkout.transaction_id)
      assert.deepStrictEqual([row.status, row.failure_reason, row.paid_amount], ["pending", null, null])
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [])
    }))

  it.effect("a webhook for a transaction that does not exist is accepted, retried, then dead-lettered", () =>
    Effect.gen(function*() {
      const app = yield* App
      const nats = yield* Nats
      const sql = yield* SqlClient.SqlClient
      const { checkout } = yield* checkoutNative(app, "ghost", PRICES, "user-ghost", 4)
      const txHash = `0x${randomBytes(32).toString("hex")}`
      const hook = yield* app.webhook({ type: "payment.minted", contract: PASS, network: "anvil", tx_hash: txHash, log_index: 0, order_id: checkout.order_id })
      assert.deepStrictEqual([hook.status, hook.body], [202, { accepted: true, duplicate: false }])

      const stream = nats.subjects.streams.dlq
      const deadLetters = nats.use(`read ${stream}`, async ({ jsm }) => {
        const { state } = await jsm.streams.info(stream)
        const letters: Array<{ readonly data: string; readonly reason: string }> = []
        for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
          const msg = await jsm.streams.getMessage(stream, { seq })
          if (msg !== null) letters.push({ data: new TextDecoder().decode(msg.data), reason: msg.header.get(DeadLetterHeaders.reason) })
        }
        return letters
      }).pipe(Effect.orDie)
      const letters = yield* eventually(deadLetters, (ls) => ls.some((l) => l.data.includes(txHash)), "the webhook to be dead-lettered")
      const letter = letters.find((l) => l.data.includes(txHash))!
      assert.include(letter.reason, "not found")
      assert.include(letter.reason, "gave up after 3 failed deliveries")

      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "pending")
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [])
      const [ledger] = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM ledger_transactions
        WHERE payment_id = ${checkout.transaction_id} OR id LIKE ${`%${txHash}%`}`
      assert.strictEqual(ledger?.n, "0")
    }))

  it.effect("overpaid: a larger amount confirms, earns the price and credits the excess", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "user-overpaid"
      const { checkout, token } = yield* checkoutNative(app, "overpaid", PRICES, user, 5)
      const excess = 3n * 10n ** 15n
      const paid = PRICES.native + excess
      const receipt = yield* mintWithQuote(app.devnet, 5, quoteFor(app, checkout, { amount: paid }))
      yield* notifyAndBury(app, mintedEvent(PASS, receipt, checkout.order_id))

      const { item, seen } = yield* settledOverHttp(app, token, checkout)
      assert.deepStrictEqual(seen, {
        row: { status: "confirmed", failure_reason: null },
        history: { status: "confirmed", failure_reason: null },
        subscription: { plan_slug: "overpaid", status: "active" },
        last_payment: { transaction_id: checkout.transaction_id, status: "confirmed", failure_reason: null },
        unbalanced: 0
      })
      assert.strictEqual(item?.paid_amount, paid.toString())
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [
        { account: "treasury:anvil", asset: NATIVE_ASSET, amount: paid.toString() },
        { account: "revenue:anvil", asset: NATIVE_ASSET, amount: (-PRICES.native).toString() },
        { account: `customer_credit:${user}`, asset: NATIVE_ASSET, amount: (-excess).toString() }
      ])
    }))

  // Moves the devnet's clock past every checkout issued so far: keep this test last in the file.
  it.effect("expired: a payment mined after the checkout's deadline fails and credits what was paid", () =>
    Effect.gen(function*() {
      const app = yield* App
      const user = "user-expired"
      const { checkout, token } = yield* checkoutNative(app, "expired", PRICES, user, 6)
      const expiresAt = BigInt(Date.parse(checkout.expires_at) / 1000)
      assert.strictEqual(expiresAt, BigInt(checkout.payload.deadline))
      assert.isTrue((yield* latestTimestamp(app.devnet).pipe(Effect.orDie)) < expiresAt)
      yield* Effect.promise(() => app.devnet.testClient.setNextBlockTimestamp({ timestamp: expiresAt + 60n }))
      const receipt = yield* mintWithQuote(app.devnet, 6, quoteFor(app, checkout, { deadline: expiresAt + 3600n }))
      yield* notifyAndBury(app, mintedEvent(PASS, receipt, checkout.order_id))

      const { seen } = yield* settledOverHttp(app, token, checkout)
      assert.deepStrictEqual(seen, failedEverywhere(checkout, "expired"))
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), heldAsCredit(user, NATIVE_ASSET, PRICES.native))
    }))
})
