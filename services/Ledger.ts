import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { decodeIds, decodeRows } from "./Rows.ts"

export interface Posting {
  readonly account: string
  readonly asset: string
  /** Debit positive, credit negative; never zero. */
  readonly amount: bigint
}

const decodePostings = decodeRows(Schema.Struct({ account: Schema.String, asset: Schema.String, amount: Schema.BigInt }))
const Balance = Schema.Struct({ user_id: Schema.String, asset: Schema.String, amount: Schema.BigInt })
const decodeBalances = decodeRows(Balance)

export class UnbalancedLedgerTransaction extends Error {}

/** Asset = network + token, the unit in which a ledger transaction must balance. */
export const assetOf = (network: string, token: string) => `${network}:${token}`

/**
 * Deterministic from the transfer, so a retry cannot post twice: chain, transaction and the order it paid (a log
 * index moves when a reorg puts the transaction in another block; an order is paid at most once per transaction).
 * A transaction mined again after its reversal is a new inclusion: its id carries the new block's hash.
 */
export const paymentLedgerId = (chainId: number, txHash: string, orderId: string, reincludedIn?: string) =>
  `payment:${chainId}:${txHash}:${orderId.toLowerCase()}${reincludedIn === undefined ? "" : `:${reincludedIn}`}`
/** The reversal of one payment ledger transaction. */
export const reversalOf = (paymentLedgerTransactionId: string) => `reversal:${paymentLedgerTransactionId.slice("payment:".length)}`
/** The refund of one payment ledger transaction. */
export const refundOf = (paymentLedgerTransactionId: string) => `refund:${paymentLedgerTransactionId.slice("payment:".length)}`

export const isBalanced = (postings: ReadonlyArray<Posting>): boolean => {
  const sums = new Map<string, bigint>()
  for (const p of postings) sums.set(p.asset, (sums.get(p.asset) ?? 0n) + p.amount)
  return [...sums.values()].every((s) => s === 0n)
}

/** Double-entry, append-only postings; runs inside the caller's SQL transaction. */
export class Ledger extends Effect.Service<Ledger>()("billing/Ledger", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /** Returns false when this ledger transaction id was already posted. */
    const post = Effect.fn("Ledger.post")(function*(tx: {
      readonly id: string
      readonly paymentId: string
      readonly kind: "payment" | "reversal" | "refund" | "proration"
      readonly postings: ReadonlyArray<Posting>
    }) {
      const postings = tx.postings.filter((p) => p.amount !== 0n)
      if (!isBalanced(postings)) return yield* Effect.die(new UnbalancedLedgerTransaction(`ledger transaction ${tx.id} does not balance`))
      // One statement: the postings go in only with a transaction row that is new. Nothing moved (a zero-amount
      // transfer): the transaction is kept, with no postings.
      const inserted = yield* sql`WITH t AS (
          INSERT INTO ledger_transactions (id, payment_id, kind) VALUES (${tx.id}, ${tx.paymentId}, ${tx.kind})
          ON CONFLICT (id) DO NOTHING RETURNING id
        ), p AS (
          INSERT INTO ledger_postings (ledger_transaction_id, account, asset, amount)
          SELECT t.id, v.account, v.asset, v.amount FROM t,
            unnest(${postings.map((p) => p.account)}::text[], ${postings.map((p) => p.asset)}::text[],
              ${postings.map((p) => p.amount.toString())}::numeric[]) WITH ORDINALITY AS v(account, asset, amount, n)
          ORDER BY v.n
        )
        SELECT id FROM t`.pipe(Effect.flatMap(decodeIds))
      return inserted.length > 0
    })

    const postingsOf = (ledgerTransactionId: string) =>
      sql`SELECT account, asset, amount::text AS amount
        FROM ledger_postings WHERE ledger_transaction_id = ${ledgerTransactionId} ORDER BY id`.pipe(
        Effect.flatMap(decodePostings),
        Effect.map((rows): ReadonlyArray<Posting> => rows)
      )

    /** The payment's posting that no reversal has taken back yet (at most one: each inclusion is reversed before the next). */
    const unreversedPaymentOf = (paymentId: string) =>
      sql`SELECT t.id FROM ledger_transactions t WHERE t.payment_id = ${paymentId} AND t.kind = 'payment'
        AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.id = 'reversal:' || substr(t.id, 9))
        ORDER BY t.created_at DESC LIMIT 1`.pipe(Effect.flatMap(decodeIds), Effect.map((rows) => rows[0]?.id))

    const CREDIT = "customer_credit:"
    const split = (r: typeof Balance.Type) => {
      const at = r.asset.indexOf(":")
      return { network: r.asset.slice(0, at), token: r.asset.slice(at + 1), amount: r.amount.toString() }
    }

    /**
     * What billing holds for customers (`customer_credit:<user>`, credit balances are negative sums), per user and
     * asset in user order after `after`, and the totals per asset.
     */
    const creditBalances = (after: string | undefined, limit: number) =>
      Effect.gen(function*() {
        const from = after === undefined ? sql`true` : sql`account > ${CREDIT + after}`
        const rows = yield* sql`SELECT substr(account, ${CREDIT.length + 1}) AS user_id, asset, (-sum(amount))::text AS amount
          FROM ledger_postings WHERE starts_with(account, ${CREDIT}) AND ${from}
          GROUP BY account, asset HAVING sum(amount) <> 0 ORDER BY account, asset LIMIT ${limit}`.pipe(Effect.flatMap(decodeBalances))
        const totals = yield* sql`SELECT '' AS user_id, asset, (-sum(amount))::text AS amount FROM ledger_postings
          WHERE starts_with(account, ${CREDIT}) GROUP BY asset HAVING sum(amount) <> 0 ORDER BY asset`.pipe(Effect.flatMap(decodeBalances))
        return { items: rows.map((r) => ({ user_id: r.user_id, ...split(r) })), totals: totals.map(split) }
      }).pipe(Effect.orDie)

    /** One customer's credit per asset. */
    const creditOf = (userId: string) =>
      sql`SELECT ${userId} AS user_id, asset, (-sum(amount))::text AS amount FROM ledger_postings
        WHERE account = ${CREDIT + userId} GROUP BY asset HAVING sum(amount) <> 0 ORDER BY asset`.pipe(
        Effect.flatMap(decodeBalances),
        Effect.map((rows) => rows.map(split)),
        Effect.orDie
      )

    return { post, postingsOf, unreversedPaymentOf, creditBalances, creditOf } as const
  })
}) {}
