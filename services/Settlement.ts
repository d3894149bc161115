import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { canTransition, type FailureReason, PaymentStatus } from "../src/domain/Payment.ts"
import type { Verdict } from "../src/domain/PaymentCheck.ts"
import { Interval } from "../src/domain/Plan.ts"
import { Audit, PaymentProcessorActor } from "./Audit.ts"
import { assetOf, Ledger, paymentLedgerId, type Posting, reversalLedgerId } from "./Ledger.ts"
import { Notifications } from "./Notifications.ts"
import { PlanEvents } from "./PlanEvents.ts"
import { decodeRow, decodeRows, transactional } from "./Rows.ts"
import { Subscriptions } from "./Subscriptions.ts"

/** One Minted log, read from the canonical chain and deep enough. */
export interface SettledLog {
  readonly network: string
  readonly chainId: number
  readonly txHash: string
  readonly logIndex: number
  /** The order the log pays for: one transaction may carry several. */
  readonly orderId: string
  readonly blockNumber: bigint
  readonly blockHash: string
  readonly token: string
  readonly amount: bigint
}

export type SettleOutcome = "confirmed" | "failed" | "credited" | "duplicate"

/** Why a transaction that moved no money did not pay; the payer is told `attemptDetail`. */
export type AttemptReason = "reverted"
const attemptDetail: Record<AttemptReason, string> = { reverted: "the transaction reverted on chain" }

const Locked = Schema.Struct({
  id: Schema.String,
  order_id: Schema.String,
  user_id: Schema.String,
  plan_id: Schema.NumberFromString,
  plan_slug: Schema.String,
  interval: Interval,
  network: Schema.String,
  token: Schema.String,
  amount: Schema.BigInt,
  status: PaymentStatus,
  tx_hash: Schema.NullOr(Schema.String),
  log_index: Schema.NullOr(Schema.Number)
})
const decodeLocked = decodeRow(Locked)
type Locked = typeof Locked.Type
const decodeIds = decodeRows(Schema.Struct({ id: Schema.String }))

/** Statuses in which `settleMint` has already posted the payment's transfer. */
const posted: ReadonlyArray<PaymentStatus> = ["confirmed", "failed", "reversed", "refunded"]

/**
 * The effects of a chain event, each in ONE SQL transaction with its dedupe key: a redelivered event finds
 * the key and changes nothing. Money that moved is always posted, even when the payment cannot be confirmed
 * (it is then held as customer credit for finance_ops to refund or apply). Every payment transition writes its
 * audit row, and the `billing.plan.changed.v1` event and notifications it causes, in that same transaction.
 */
export class Settlement extends Effect.Service<Settlement>()("billing/Settlement", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* Ledger
    const subscriptions = yield* Subscriptions
    const notifications = yield* Notifications
    const planEvents = yield* PlanEvents
    const audit = yield* Audit

    const claim = (dedupeKey: string, source: string, paymentId: string) =>
      Effect.map(
        sql`INSERT INTO processed_events (dedupe_key, source, payment_id, outcome)
          VALUES (${dedupeKey}, ${source}, ${paymentId}, 'processing') ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key`,
        (rows) => rows.length > 0
      )
    const finish = (dedupeKey: string, outcome: string) =>
      sql`UPDATE processed_events SET outcome = ${outcome} WHERE dedupe_key = ${dedupeKey}`

    const lock = (paymentId: string) =>
      sql`SELECT t.id::text AS id, t.order_id, t.user_id, t.plan_id::text AS plan_id, p.slug AS plan_slug, p.interval,
          t.network, t.token, t.amount::text AS amount, t.status, t.tx_hash, t.log_index
        FROM payment_transactions t JOIN plans p ON p.id = t.plan_id WHERE t.id = ${paymentId} FOR UPDATE OF t`.pipe(
        Effect.flatMap((rows) => decodeLocked(rows[0]))
      )

    const currentSubscription = (userId: string) =>
      sql`SELECT id::text AS id FROM subscriptions WHERE user_id = ${userId} AND status IN ('active', 'past_due')`.pipe(
        Effect.flatMap(decodeIds),
        Effect.map((rows) => rows[0]?.id ?? null)
      )

    /** Confirmed: subscription renewed or activated, its event, the payer and finance_ops told (of what was received). */
    const confirmed = (payment: Locked, txHash: string, paid: bigint) =>
      Effect.gen(function*() {
        yield* audit.paymentTransition({ paymentId: payment.id, from: payment.status, to: "confirmed", details: { tx_hash: txHash } })
        const applied = yield* subscriptions.applyPayment({
          userId: payment.user_id,
          planId: payment.plan_id,
          interval: payment.interval,
          paymentId: payment.id
        })
        const event = yield* planEvents.emit({
          reason: applied.reason,
          userId: payment.user_id,
          subscriptionId: applied.subscriptionId,
          paymentId: payment.id,
          // a renewal keeps the plan: no previous plan to announce
          previousPlanId: applied.previousPlanId === payment.plan_id ? null : applied.previousPlanId
        })
        const details = {
          transaction_id: payment.id,
          order_id: payment.order_id,
          user_id: payment.user_id,
          plan_slug: payment.plan_slug,
          network: payment.network,
          token: payment.token,
          amount: paid,
          price: payment.amount,
          tx_hash: txHash
        }
        const periodEnd = event.subscription?.current_period_end
        if (periodEnd === undefined) return yield* Effect.dieMessage(`payment ${payment.id} confirmed without a subscription`)
        yield* notifications.notify(payment.user_id, "payment.confirmed", { ...details, current_period_end: periodEnd })
        yield* notifications.notifyFinanceOps("payment.confirmed", details)
      })

    /** Failed with a reason: audit, `payment_failed` (the current subscription, if any, unchanged), the payer told. */
    const failed = (payment: Locked, reason: FailureReason, txHash: string) =>
      Effect.gen(function*() {
        yield* audit.paymentTransition({
          paymentId: payment.id,
          from: payment.status,
          to: "failed",
          details: { failure_reason: reason, tx_hash: txHash }
        })
        yield* planEvents.emit({
          reason: "payment_failed",
          userId: payment.user_id,
          subscriptionId: yield* currentSubscription(payment.user_id),
          paymentId: payment.id,
          previousPlanId: null
        })
        yield* notifications.notify(payment.user_id, "payment.failed", {
          transaction_id: payment.id,
          order_id: payment.order_id,
          plan_slug: payment.plan_slug,
          network: payment.network,
          failure_reason: reason,
          tx_hash: txHash
        })
      })

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
      // This order's transfer under another log index: a reorg moved the transaction into another block, where its log
      // has another index (and so another dedupe key). Its money was posted under the first index: post nothing.
      // Per order: other orders of the same transaction have logs of their own.
      const sameTransfer = payment.order_id === log.orderId.toLowerCase() &&
        payment.tx_hash?.toLowerCase() === log.txHash.toLowerCase()
      if (sameTransfer && payment.log_index !== log.logIndex && posted.includes(payment.status)) {
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
        yield* confirmed(payment, log.txHash, log.amount)
        outcome = "confirmed"
      } else if (verdict._tag === "Mismatch" && canTransition(payment.status, "failed")) {
        yield* sql`UPDATE payment_transactions SET status = 'failed', failure_reason = ${verdict.reason}, ${onChain} WHERE id = ${payment.id}`
        yield* failed(payment, verdict.reason, log.txHash)
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

    /**
     * A transaction by the payer to the contract that moved no money (it reverted): an attempt, not a verdict. It is
     * audited and told to the payer; the payment keeps its status and stays payable until its quote expires.
     */
    const recordAttempt = Effect.fn("Settlement.recordAttempt")(function*(args: {
      readonly dedupeKey: string
      readonly source: string
      readonly paymentId: string
      readonly txHash: string
      readonly reason: AttemptReason
      /** The checkout's deadline, fixed at checkout. */
      readonly expiresAt: Date
    }) {
      if (!(yield* claim(args.dedupeKey, args.source, args.paymentId))) return "duplicate" as const
      const payment = yield* lock(args.paymentId)
      // Once settled or expired there is nothing left to pay: telling the payer to retry would mislead.
      const payable = payment.status === "pending" || payment.status === "seen"
      if (payable) {
        yield* audit.record({
          actor: PaymentProcessorActor,
          action: `payment.attempt_${args.reason}`,
          resource: `payment:${payment.id}`,
          after: { status: payment.status, tx_hash: args.txHash, reason: args.reason }
        })
        yield* notifications.notify(payment.user_id, "payment.attempt_failed", {
          transaction_id: payment.id,
          order_id: payment.order_id,
          plan_slug: payment.plan_slug,
          network: payment.network,
          tx_hash: args.txHash,
          reason: args.reason,
          detail: attemptDetail[args.reason],
          expires_at: args.expiresAt
        })
      }
      yield* finish(args.dedupeKey, payable ? `attempt:${args.reason}` : "ignored")
      return payable ? "recorded" as const : "ignored" as const
    }, transactional(sql))

    /** On chain but not deep enough yet. */
    const markSeen = Effect.fn("Settlement.markSeen")(function*(paymentId: string, log: Omit<SettledLog, "network" | "chainId" | "token" | "amount">) {
      const moved = yield* sql`UPDATE payment_transactions SET status = 'seen', seen_at = coalesce(seen_at, now()), tx_hash = ${log.txHash},
          log_index = ${log.logIndex}, block_number = ${log.blockNumber.toString()}, block_hash = ${log.blockHash}, updated_at = now()
        WHERE id = ${paymentId} AND status = 'pending' RETURNING id`
      if (moved.length > 0) {
        yield* audit.paymentTransition({ paymentId, from: "pending", to: "seen", details: { tx_hash: log.txHash, block_number: log.blockNumber } })
      }
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
      if (rows.length > 0) {
        yield* audit.paymentTransition({ paymentId, from: "seen", to: "pending", details: { dropped_tx_hash: txHash } })
      }
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
      yield* audit.paymentTransition({ paymentId: payment.id, from: payment.status, to: "reversed", details: { tx_hash: args.txHash } })
      yield* subscriptions.revokePayment(payment.id, payment.interval)
      const [paid] = yield* sql`SELECT id::text AS id FROM subscriptions WHERE last_payment_id = ${payment.id}
        ORDER BY updated_at DESC LIMIT 1`.pipe(Effect.flatMap(decodeIds))
      yield* planEvents.emit({
        reason: "reversed",
        userId: payment.user_id,
        subscriptionId: paid?.id ?? null,
        paymentId: payment.id,
        previousPlanId: null
      })
      const details = { transaction_id: payment.id, user_id: payment.user_id, tx_hash: args.txHash, network: payment.network }
      yield* notifications.notify(payment.user_id, "payment.reversed", details)
      yield* notifications.notifyFinanceOps("payment.reversed", details)
      yield* finish(dedupeKey, "reversed")
      return "reversed" as const
    }, transactional(sql))

    return { settleMint, recordAttempt, markSeen, burn, unsee, reverse } as const
  }),
  dependencies: [Ledger.Default, Subscriptions.Default, Notifications.Default, PlanEvents.Default, Audit.Default]
}) {}
