import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { canTransition, type FailureReason, PaymentStatus } from "../src/domain/Payment.ts"
import type { Verdict } from "../src/domain/PaymentCheck.ts"
import { Interval } from "../src/domain/Plan.ts"
import { assetOf, Ledger, paymentLedgerId, type Posting, reversalLedgerId } from "./Ledger.ts"
import { Notifications } from "./Notifications.ts"
import { decodeRow, transactional } from "./Rows.ts"
import { Subscriptions } from "./Subscriptions.ts"

/** One Minted log, read from the canonical chain and deep enough. */
export interface SettledLog {
  readonly network: string
  readonly chainId: number
  readonly txHash: string
  readonly logIndex: number
  readonly blockNumber: bigint
  readonly blockHash: string
  readonly token: string
  readonly amount: bigint
}

export type SettleOutcome = "confirmed" | "failed" | "credited" | "duplicate"

const Locked = Schema.Struct({
  id: Schema.String,
  user_id: Schema.String,
  plan_id: Schema.NumberFromString,
  interval: Interval,
  network: Schema.String,
  amount: Schema.BigInt,
  status: PaymentStatus,
  tx_hash: Schema.NullOr(Schema.String),
  log_index: Schema.NullOr(Schema.Number)
})
const decodeLocked = decodeRow(Locked)

/** Statuses in which `settleMint` has already posted the payment's transfer. */
const posted: ReadonlyArray<PaymentStatus> = ["confirmed", "failed", "reversed", "refunded"]

/**
 * The effects of a chain event, each in ONE SQL transaction with its dedupe key: a redelivered event finds
 * the key and changes nothing. Money that moved is always posted, even when the payment cannot be confirmed
 * (it is then held as customer credit for finance_ops to refund or apply).
 */
export class Settlement extends Effect.Service<Settlement>()("billing/Settlement", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* Ledger
    const subscriptions = yield* Subscriptions
    const notifications = yield* Notifications

    const claim = (dedupeKey: string, source: string, paymentId: string) =>
      Effect.map(
        sql`INSERT INTO processed_events (dedupe_key, source, payment_id, outcome)
          VALUES (${dedupeKey}, ${source}, ${paymentId}, 'processing') ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key`,
        (rows) => rows.length > 0
      )
    const finish = (dedupeKey: string, outcome: string) =>
      sql`UPDATE processed_events SET outcome = ${outcome} WHERE dedupe_key = ${dedupeKey}`

    const lock = (paymentId: string) =>
      sql`SELECT t.id::text AS id, t.user_id, t.plan_id::text AS plan_id, p.interval, t.network, t.amount::text AS amount, t.status,
          t.tx_hash, t.log_index
        FROM payment_transactions t JOIN plans p ON p.id = t.plan_id WHERE t.id = ${paymentId} FOR UPDATE OF t`.pipe(
        Effect.flatMap((rows) => decodeLocked(rows[0]))
      )

    const settleMint = Effect.fn("Settlement.settleMint")(function*(args: {
      readonly dedupeKey: string
      readonly source: string
      readonly paymentId: string
      readonly log: SettledLog
      readonly verdict: Verdict
    }) {
      const { log, verdict } = args
      if (!(yield* claim(args.dedupeKey, args.source, args.paymentId))) return "duplicate" as SettleOutcome
      const payment = yield* lock(args.paymentId)
      // The same transfer under another log index: a reorg moved the transaction into another block, where its log
      // has another index (and so another dedupe key). Its money was posted under the first index: post nothing.
      if (payment.tx_hash?.toLowerCase() === log.txHash.toLowerCase() && payment.log_index !== log.logIndex && posted.includes(payment.status)) {
        yield* finish(args.dedupeKey, `duplicate:moved_from_log_${payment.log_index}`)
        return "duplicate" as SettleOutcome
      }
      const asset = assetOf(log.network, log.token)
      const received: Posting = { account: `treasury:${log.network}`, asset, amount: log.amount }
      const credit: Posting = { account: `customer_credit:${payment.user_id}`, asset, amount: -log.amount }
      const onChain = sql`tx_hash = ${log.txHash}, log_index = ${log.logIndex}, block_number = ${log.blockNumber.toString()},
        block_hash = ${log.blockHash}, paid_amount = ${log.amount.toString()}, seen_at = coalesce(seen_at, now()), updated_at = now()`

      let outcome: SettleOutcome
      let postings: ReadonlyArray<Posting>
      if (verdict._tag === "Match" && canTransition(payment.status, "confirmed")) {
        yield* sql`UPDATE payment_transactions SET status = 'confirmed', confirmed_at = now(), ${onChain} WHERE id = ${payment.id}`
        postings = [
          received,
          { account: `revenue:${log.network}`, asset, amount: -(log.amount - verdict.excess) },
          { account: `customer_credit:${payment.user_id}`, asset, amount: -verdict.excess }
        ]
        yield* subscriptions.applyPayment({ userId: payment.user_id, planId: payment.plan_id, interval: payment.interval, paymentId: payment.id })
        outcome = "confirmed"
      } else if (verdict._tag === "Mismatch" && canTransition(payment.status, "failed")) {
        yield* sql`UPDATE payment_transactions SET status = 'failed', failure_reason = ${verdict.reason}, ${onChain} WHERE id = ${payment.id}`
        postings = [received, credit]
        outcome = "failed"
      } else {
        postings = [received, credit]
        outcome = "credited"
      }
      yield* ledger.post({ id: paymentLedgerId(log.chainId, log.txHash, log.logIndex), paymentId: payment.id, kind: "payment", postings })
      yield* finish(args.dedupeKey, verdict._tag === "Mismatch" ? `${outcome}:${verdict.reason}` : outcome)
      return outcome
    }, transactional(sql))

    /** A transaction by the payer to the contract that reverted: nothing moved, the payment failed. */
    const failWithoutTransfer = Effect.fn("Settlement.failWithoutTransfer")(function*(args: {
      readonly dedupeKey: string
      readonly source: string
      readonly paymentId: string
      readonly txHash: string
      readonly reason: FailureReason
    }) {
      if (!(yield* claim(args.dedupeKey, args.source, args.paymentId))) return "duplicate" as const
      const payment = yield* lock(args.paymentId)
      const applied = canTransition(payment.status, "failed")
      if (applied) {
        yield* sql`UPDATE payment_transactions SET status = 'failed', failure_reason = ${args.reason},
          tx_hash = coalesce(tx_hash, ${args.txHash}), updated_at = now() WHERE id = ${payment.id}`
      }
      yield* finish(args.dedupeKey, applied ? `failed:${args.reason}` : "ignored")
      return applied ? "failed" as const : "ignored" as const
    }, transactional(sql))

    /** On chain but not deep enough yet. */
    const markSeen = Effect.fn("Settlement.markSeen")(function*(paymentId: string, log: Omit<SettledLog, "network" | "chainId" | "token" | "amount">) {
      yield* sql`UPDATE payment_transactions SET status = 'seen', seen_at = coalesce(seen_at, now()), tx_hash = ${log.txHash},
          log_index = ${log.logIndex}, block_number = ${log.blockNumber.toString()}, block_hash = ${log.blockHash}, updated_at = now()
        WHERE id = ${paymentId} AND status = 'pending'`
    }, transactional(sql))

    /** A burned pass ends its subscription at the period end. */
    const burn = Effect.fn("Settlement.burn")(function*(args: { readonly dedupeKey: string; readonly source: string; readonly paymentId: string }) {
      if (!(yield* claim(args.dedupeKey, args.source, args.paymentId))) return "duplicate" as const
      const ended = yield* subscriptions.cancelAtPeriodEnd(args.paymentId)
      yield* finish(args.dedupeKey, ended ? "cancel_at_period_end" : "no_subscription")
      return ended ? "canceled" as const : "ignored" as const
    }, transactional(sql))

    /** A reorg dropped the transaction before it was deep enough: back to pending, nothing was posted. */
    const unsee = Effect.fn("Settlement.unsee")(function*(paymentId: string, txHash: string) {
      const rows = yield* sql`UPDATE payment_transactions SET status = 'pending', tx_hash = NULL, log_index = NULL,
          block_number = NULL, block_hash = NULL, updated_at = now()
        WHERE id = ${paymentId} AND status = 'seen' AND tx_hash = ${txHash} RETURNING id`
      return rows.length > 0
    }, transactional(sql))

    /**
     * A reorg deeper than the confirmation depth removed a confirmed payment: reversing postings (never an UPDATE),
     * the subscription loses the period, the payer and finance_ops are notified.
     */
    const reverse = Effect.fn("Settlement.reverse")(function*(args: {
      readonly source: string
      readonly paymentId: string
      readonly chainId: number
      readonly txHash: string
      readonly logIndex: number
    }) {
      const dedupeKey = `${args.chainId}:${args.txHash}:${args.logIndex}:reversed`
      if (!(yield* claim(dedupeKey, args.source, args.paymentId))) return "duplicate" as const
      const payment = yield* lock(args.paymentId)
      if (!canTransition(payment.status, "reversed")) {
        yield* finish(dedupeKey, "ignored")
        return "ignored" as const
      }
      yield* sql`UPDATE payment_transactions SET status = 'reversed', updated_at = now() WHERE id = ${payment.id}`
      const original = yield* ledger.postingsOf(paymentLedgerId(args.chainId, args.txHash, args.logIndex))
      yield* ledger.post({
        id: reversalLedgerId(args.chainId, args.txHash, args.logIndex),
        paymentId: payment.id,
        kind: "reversal",
        postings: original.map((p) => ({ ...p, amount: -p.amount }))
      })
      yield* subscriptions.revokePayment(payment.id, payment.interval)
      const details = { transaction_id: payment.id, user_id: payment.user_id, tx_hash: args.txHash, network: payment.network }
      yield* notifications.notify(payment.user_id, "payment.reversed", details)
      yield* notifications.notifyFinanceOps("payment.reversed", details)
      yield* finish(dedupeKey, "reversed")
      return "reversed" as const
    }, transactional(sql))

    return { settleMint, failWithoutTransfer, markSeen, burn, unsee, reverse } as const
  }),
  dependencies: [Ledger.Default, Subscriptions.Default, Notifications.Default]
}) {}
