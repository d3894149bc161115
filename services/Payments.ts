import { SqlClient, type Statement } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { CheckoutPayload, type CheckoutView, type HistoryItem } from "../src/domain/Checkout.ts"
import { canTransition, FailureReason, IllegalPaymentTransition, PaymentNotFound, PaymentStatus } from "../src/domain/Payment.ts"
import { Interval } from "../src/domain/Plan.ts"
import { Audit } from "./Audit.ts"
import { decodeRow, decodeRows } from "./Rows.ts"

/** A payment_transactions row as the services read it (money as bigint). */
export const PaymentRow = Schema.Struct({
  id: Schema.String,
  order_id: Schema.String,
  user_id: Schema.String,
  plan_id: Schema.NumberFromString,
  plan_slug: Schema.String,
  /** The plan's interval when the checkout was issued: what the payment buys. */
  interval: Interval,
  contract_slug: Schema.String,
  network: Schema.String,
  chain_id: Schema.NumberFromString,
  contract_address: Schema.String,
  token: Schema.String,
  /** What the quote asks the chain for: the price minus `credit_applied`. */
  amount: Schema.BigInt,
  /** Customer credit this checkout uses (reserved while pending or seen, consumed at confirmation). */
  credit_applied: Schema.BigInt,
  paid_amount: Schema.NullOr(Schema.BigInt),
  wallet_address: Schema.String,
  status: PaymentStatus,
  failure_reason: Schema.NullOr(FailureReason),
  idempotency_key: Schema.NullOr(Schema.String),
  tx_hash: Schema.NullOr(Schema.String),
  log_index: Schema.NullOr(Schema.Number),
  block_number: Schema.NullOr(Schema.BigInt),
  block_hash: Schema.NullOr(Schema.String),
  quote_signature: Schema.String,
  payload: CheckoutPayload,
  expires_at: Schema.DateFromSelf,
  created_at: Schema.DateFromSelf,
  confirmed_at: Schema.NullOr(Schema.DateFromSelf),
  /** created_at as PostgreSQL wrote it (microseconds), for keyset cursors. */
  cursor_at: Schema.String
})
export type PaymentRow = typeof PaymentRow.Type

/** Columns for PaymentRow; numeric and bigint columns cast to text so no JS number holds them. */
export const PAYMENT_COLUMNS = `t.id::text AS id, t.order_id, t.user_id, t.plan_id::text AS plan_id, p.slug AS plan_slug,
  t.interval, t.contract_slug, t.network, t.chain_id::text AS chain_id, t.contract_address, t.token, t.amount::text AS amount, t.credit_applied::text AS credit_applied,
  t.paid_amount::text AS paid_amount, t.wallet_address, t.status, t.failure_reason, t.idempotency_key, t.tx_hash,
  t.log_index, t.block_number::text AS block_number, t.block_hash, t.quote_signature, t.payload, t.expires_at, t.created_at,
  t.confirmed_at, to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at`

export const toCheckoutView = (p: PaymentRow): CheckoutView => ({
  transaction_id: p.id,
  order_id: p.order_id,
  status: p.status,
  network: p.network,
  chain_id: p.chain_id,
  token: p.token,
  amount: p.amount.toString(),
  credit_applied: p.credit_applied.toString(),
  expires_at: p.expires_at.toISOString(),
  quote_signature: p.quote_signature,
  payload: p.payload
})

export const toHistoryItem = (p: PaymentRow): HistoryItem => ({
  transaction_id: p.id,
  plan_slug: p.plan_slug,
  status: p.status,
  order_id: p.order_id,
  tx_hash: p.tx_hash,
  network: p.network,
  token: p.token,
  amount: p.amount.toString(),
  paid_amount: p.paid_amount === null ? null : p.paid_amount.toString(),
  failure_reason: p.failure_reason,
  created_at: p.created_at.toISOString(),
  confirmed_at: p.confirmed_at === null ? null : p.confirmed_at.toISOString()
})

const decodePayments = decodeRows(PaymentRow)
const decodeStatus = decodeRow(Schema.UndefinedOr(Schema.Struct({ status: PaymentStatus })))

/** A move of one payment, made by `Payments.transition` only. */
export interface Transition {
  readonly paymentId: string
  /** The status the caller read (under its row lock); the move fails if the row has another. */
  readonly from: PaymentStatus
  readonly to: PaymentStatus
  /** Further columns set with the status (`failure_reason`, the on-chain reference, ...; not `updated_at`). */
  readonly set?: Statement.Fragment
  /** Default: the payment processor. */
  readonly actor?: string
  readonly details?: Readonly<Record<string, unknown>>
}

/**
 * payment_transactions: the shared reads, and the one writer of `status`. Every move is checked against the
 * transition table (src/domain/Payment.ts; migration 011's trigger enforces the same) and audited in the
 * caller's SQL transaction.
 */
export class Payments extends Effect.Service<Payments>()("billing/Payments", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit
    const findOne = (where: Statement.Fragment) =>
      sql`SELECT ${sql.literal(PAYMENT_COLUMNS)} FROM payment_transactions t JOIN plans p ON p.id = t.plan_id WHERE ${where}`.pipe(
        Effect.orDie,
        Effect.flatMap(decodePayments),
        Effect.map((rows) => Option.fromNullable(rows[0]))
      )

    /** Locks the rows `where` picks (inside the caller's transaction) and reads them. */
    const locked = (where: Statement.Fragment) =>
      sql`SELECT ${sql.literal(PAYMENT_COLUMNS)} FROM payment_transactions t JOIN plans p ON p.id = t.plan_id
        WHERE ${where} FOR UPDATE OF t`.pipe(Effect.flatMap(decodePayments))
    const lock = (id: string) =>
      Effect.flatMap(locked(sql`t.id = ${id}`), (rows) => rows[0] === undefined ? Effect.dieMessage(`payment ${id} vanished`) : Effect.succeed(rows[0]))

    const transition = Effect.fn("Payments.transition")(function*(t: Transition) {
      const illegal = new IllegalPaymentTransition({ paymentId: t.paymentId, from: t.from, to: t.to })
      if (!canTransition(t.from, t.to)) return yield* illegal
      const moved = yield* sql`UPDATE payment_transactions SET status = ${t.to}, updated_at = now()${t.set === undefined ? sql.literal("") : sql`, ${t.set}`}
        WHERE id = ${t.paymentId} AND status = ${t.from} RETURNING status`.pipe(Effect.flatMap((rows) => decodeStatus(rows[0])))
      if (moved === undefined) return yield* illegal
      yield* audit.paymentTransition({
        paymentId: t.paymentId,
        from: t.from,
        to: t.to,
        ...(t.actor === undefined ? {} : { actor: t.actor }),
        ...(t.details === undefined ? {} : { details: t.details })
      })
    })

    return {
      findOne,
      byOrderId: (orderId: string) => findOne(sql`t.order_id = ${orderId.toLowerCase()}`),
      byId: (id: string) => findOne(sql`t.id = ${id}`),
      /** The payment, or PaymentNotFound. */
      get: (id: string) =>
        Effect.flatMap(findOne(sql`t.id = ${id}`), Option.match({
          onNone: () => Effect.fail(new PaymentNotFound({ paymentId: id })),
          onSome: Effect.succeed
        })),
      lock,
      /** The order's payment, locked (inside the caller's transaction), if there is one. */
      lockByOrderId: (orderId: string) => Effect.map(locked(sql`t.order_id = ${orderId.toLowerCase()}`), (rows) => Option.fromNullable(rows[0])),
      transition
    } as const
  }),
  dependencies: [Audit.Default]
}) {}
