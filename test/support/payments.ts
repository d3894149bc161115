import { SqlClient } from "@effect/sql"
// node:assert, not vitest: chaos scenarios run these helpers outside vitest.
import { strict as assert } from "node:assert"
import { Effect } from "effect"
import {
  type Account,
  type Address,
  type Chain,
  decodeEventLog,
  type Hash,
  type Hex,
  type LocalAccount,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
  zeroAddress
} from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { signQuote } from "../../src/contracts/Quote.ts"
import { awaitReceipt } from "../../src/devnet/Deploy.ts"
import { CheckoutView } from "../../src/domain/Checkout.ts"
import type { FailureReason } from "../../src/domain/Payment.ts"
import { HistoryPage, Summary } from "../../src/http/Me/Api.ts"
import { decode, eventually, type Harness, registerContractAndPlan } from "./app.ts"
import { chainCall, devAccount, sendTx } from "./anvil.ts"

export const checkoutOf = decode(CheckoutView)

/** Sends the checkout payload's transactions from a dev account, in order; the last receipt is the mint. */
export const sendPayload = (app: Harness, checkout: CheckoutView, account: number) =>
  Effect.forEach(checkout.payload.transactions, (tx) =>
    sendTx(app.devnet, () =>
      app.devnet.wallet(account).sendTransaction({
        to: tx.to as Hex,
        data: tx.data as Hex,
        value: BigInt(tx.value),
        gas: BigInt(tx.gas),
        chain: app.devnet.chain
      }))).pipe(Effect.orDie)

/** The checkout's mint, signed but not sent: its hash is known before any node has it, and it can be sent again after a reorg. */
export const signMint = (app: Harness, checkout: CheckoutView, account: number) =>
  chainCall(async () => {
    const wallet = app.devnet.wallet(account)
    const tx = checkout.payload.transactions[0]!
    const request = await wallet.prepareTransactionRequest({
      to: tx.to as Hex,
      data: tx.data as Hex,
      value: BigInt(tx.value),
      gas: BigInt(tx.gas),
      chain: app.devnet.chain
    })
    return wallet.signTransaction(request)
  }).pipe(Effect.orDie)

/** Index of the SubscriptionPass event in a receipt. */
export const passLogIndex = (receipt: TransactionReceipt) => {
  const log = receipt.logs.find((l) => {
    try {
      decodeEventLog({ abi: SubscriptionPassAbi, data: l.data, topics: l.topics })
      return true
    } catch {
      return false
    }
  })
  if (log === undefined) throw new Error("no SubscriptionPass event in the receipt")
  return log.logIndex
}

export const mintedEvent = (contract: string, receipt: TransactionReceipt, orderId?: string) => ({
  type: "payment.minted",
  contract,
  network: "anvil",
  tx_hash: receipt.transactionHash,
  log_index: passLogIndex(receipt),
  block_number: Number(receipt.blockNumber),
  ...(orderId === undefined ? {} : { order_id: orderId })
})

/** A relayer's hint for a transaction without logs (a reverted one); `orderId` is whatever the relayer claims. */
export const revertedHook = (contract: string, receipt: TransactionReceipt, orderId?: string) => ({
  type: "payment.minted",
  contract,
  network: "anvil",
  tx_hash: receipt.transactionHash,
  log_index: 0,
  block_number: Number(receipt.blockNumber),
  ...(orderId === undefined ? {} : { order_id: orderId })
})

export const mine = (app: Harness, blocks: number) =>
  Effect.promise(() => app.devnet.testClient.mine({ blocks }))

export const paymentStatus = (transactionId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ status: string; failure_reason: string | null; paid_amount: string | null }>`SELECT status, failure_reason,
      paid_amount::text AS paid_amount FROM payment_transactions WHERE id = ${transactionId}`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows[0]!)
  )

export const waitForStatus = (transactionId: string, status: string) =>
  eventually(paymentStatus(transactionId), (p) => p.status === status, `payment ${transactionId} to be ${status}`)

/** Ledger transactions whose postings do not sum to zero per asset: must always be none. */
export const unbalancedLedgerTransactions = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ ledger_transaction_id: string }>`SELECT ledger_transaction_id FROM ledger_postings
    GROUP BY ledger_transaction_id, asset HAVING sum(amount) <> 0`).pipe(Effect.orDie)

export const postingsOf = (transactionId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ account: string; asset: string; amount: string }>`SELECT p.account, p.asset, p.amount::text AS amount
      FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
      WHERE t.payment_id = ${transactionId} ORDER BY p.id`).pipe(Effect.orDie)

/**
 * A payment reversed by a deep reorg, checked in the ledger: its payment and reversal postings (4) net to zero on
 * each of its two accounts, the ledger kinds are exactly `payment` and `reversal`, and nothing is unbalanced.
 */
export const assertReversedInLedger = (transactionId: string) =>
  Effect.gen(function*() {
    const postings = yield* postingsOf(transactionId)
    assert.strictEqual(postings.length, 4, "the payment and its reversal")
    const perAccount = new Map<string, bigint>()
    for (const p of postings) perAccount.set(p.account, (perAccount.get(p.account) ?? 0n) + BigInt(p.amount))
    assert.deepStrictEqual([...perAccount.values()], [0n, 0n])
    const sql = yield* SqlClient.SqlClient
    const kinds = yield* sql<{ kind: string }>`SELECT kind FROM ledger_transactions WHERE payment_id = ${transactionId}
      ORDER BY kind`.pipe(Effect.orDie)
    assert.deepStrictEqual(kinds.map((k) => k.kind), ["payment", "reversal"])
    assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
  })

/** Terms of a quote the test signs itself (with the billing signer's key) to pay differently from a checkout. */
export interface OwnQuote {
  readonly contract: Address
  readonly orderId: Hex
  /** `zeroAddress` for the native coin. */
  readonly token: Address
  readonly amount: bigint
  readonly deadline: bigint
  /** `msg.value`; by default `amount` for the native coin and 0 for a token. */
  readonly value?: bigint
}

/** What `mintWithQuote` needs of a chain: the devnet handle, or clients for a second node. */
export interface MintClients {
  readonly chain: Chain
  readonly signer: LocalAccount
  readonly publicClient: { readonly getTransactionReceipt: (args: { hash: Hash }) => Promise<TransactionReceipt> }
  readonly wallet: (account: number) => WalletClient<Transport, Chain, Account>
}

/**
 * Calls `mint` directly with a quote for `account` as payer, signed by the quote signer: the contract accepts it,
 * so the Minted event carries whatever terms the test chose. Returns the (successful) receipt.
 */
export const mintWithQuote = (clients: MintClients, account: number, quote: OwnQuote) =>
  Effect.gen(function*() {
    const wallet = clients.wallet(account)
    const signature = yield* Effect.promise(() =>
      signQuote(clients.signer, { ...quote, chainId: clients.chain.id, payer: wallet.account.address })
    )
    const hash = yield* chainCall(() =>
      wallet.writeContract({
        address: quote.contract,
        abi: SubscriptionPassAbi,
        functionName: "mint",
        args: [quote.orderId, quote.token, quote.amount, quote.deadline, signature],
        value: quote.value ?? (quote.token === zeroAddress ? quote.amount : 0n),
        chain: clients.chain
      })
    )
    const receipt = yield* awaitReceipt(() => clients.publicClient.getTransactionReceipt({ hash }))
    if (receipt.status !== "success") return yield* Effect.dieMessage(`mint ${hash} reverted`)
    return receipt
  }).pipe(Effect.orDie)

/** Registers `plan` (priced `prices`) and checks out in native coin over HTTP for `userId` paying from dev account `account`. */
/** A native-coin checkout over HTTP for a plan that is already registered; dies unless it answers 201. */
export const nativeCheckout = (app: Harness, plan: string, userId: string, account: number) =>
  Effect.gen(function*() {
    const token = app.token(userId)
    const res = yield* app.request("POST", "/v1/billing/checkout", {
      token,
      body: { plan_slug: plan, wallet_address: devAccount(account).address, network: "anvil", token: "native" }
    })
    if (res.status !== 201) return yield* Effect.dieMessage(`checkout ${plan} failed: ${res.status} ${JSON.stringify(res.body)}`)
    return { checkout: checkoutOf(res), token }
  })

export const checkoutNative = (app: Harness, plan: string, prices: { native: bigint; token: bigint }, userId: string, account: number) =>
  Effect.zipRight(registerContractAndPlan(app, plan, prices), nativeCheckout(app, plan, userId, account))

/** Checks out and pays on chain from `account`, with no webhook: the checkout and its mint receipt. */
export const payWithoutWebhook = (app: Harness, plan: string, userId: string, account: number) =>
  Effect.gen(function*() {
    const { checkout } = yield* nativeCheckout(app, plan, userId, account)
    const [receipt] = yield* sendPayload(app, checkout, account)
    return { checkout, receipt: receipt! }
  })

/**
 * Waits until the chain event was settled (the payment left pending/seen), then reports how the payment looks
 * everywhere a client sees it: the row, `/me/history`, `/me/summary`, and whether the ledger still balances.
 * Compare `seen` with `failedEverywhere(...)`; `item` is the history entry.
 */
export const settledOverHttp = (app: Harness, token: string, checkout: CheckoutView) =>
  Effect.gen(function*() {
    const row = yield* eventually(
      paymentStatus(checkout.transaction_id),
      (p) => p.status !== "pending" && p.status !== "seen",
      `payment ${checkout.transaction_id} to be settled`
    )
    const history = decode(HistoryPage)(yield* app.request("GET", "/v1/billing/me/history", { token }))
    const summary = decode(Summary)(yield* app.request("GET", "/v1/billing/me/summary", { token }))
    const item = history.items.find((i) => i.transaction_id === checkout.transaction_id)
    const last = summary.last_payment
    const seen = {
      row: { status: row.status, failure_reason: row.failure_reason },
      history: item === undefined ? undefined : { status: item.status, failure_reason: item.failure_reason },
      subscription: summary.subscription === null ? null : { plan_slug: summary.subscription.plan_slug, status: summary.subscription.status },
      last_payment: last === null ? null : { transaction_id: last.transaction_id, status: last.status, failure_reason: last.failure_reason },
      unbalanced: (yield* unbalancedLedgerTransactions).length
    }
    return { seen, item }
  })

/** What `settledOverHttp(...).seen` must equal for a payment that failed with `reason`. */
export const failedEverywhere = (checkout: CheckoutView, reason: FailureReason) => ({
  row: { status: "failed", failure_reason: reason },
  history: { status: "failed" as const, failure_reason: reason },
  subscription: null,
  last_payment: { transaction_id: checkout.transaction_id, status: "failed" as const, failure_reason: reason },
  unbalanced: 0
})
