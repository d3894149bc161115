import { SqlClient, type Statement } from "@effect/sql"
import { Effect } from "effect"
import { canTransition, type FailureReason, type PaymentStatus } from "../src/domain/Payment.ts"
import type { Verdict } from "../src/domain/PaymentCheck.ts"
import { Audit, PaymentProcessorActor } from "./Audit.ts"
import { pending } from "./BatchWrites.ts"
import { ChainState } from "./ChainState.ts"
import type { RpcError, UnknownNetwork } from "./RpcError.ts"
import type { PaymentApplied } from "../src/domain/PlanChange.ts"
import { assetOf, Ledger, paymentLedgerId, type Posting, reversalOf } from "./Ledger.ts"
import { Notifications } from "./Notifications.ts"
import { type PaymentRow, Payments } from "./Payments.ts"
import { PlanEvents } from "./PlanEvents.ts"
import { decodeIds, transactional } from "./Rows.ts"
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

/** `stale`: the log's block was replaced before the listener scanned that height; nothing was written. */
export type SettleOutcome = "confirmed" | "failed" | "credited" | "duplicate" | "stale"

/** Why a transaction that moved no money did not pay; the payer is told `attemptDetail`. */
export type AttemptReason = "reverted"
const attemptDetail: Record<AttemptReason, string> = { reverted: "the transaction reverted on chain" }

type Locked = PaymentRow

/** Statuses in which the payment's recorded transfer is posted and not reversed. */
const posted: ReadonlyArray<PaymentStatus> = ["confirmed", "failed", "refunded"]

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
    const payments = yield* Payments
    const subscriptions = yield* Subscriptions
    const notifications = yield* Notifications
    const planEvents = yield* PlanEvents
    const audit = yield* Audit
    const chainState = yield* ChainState

    const claim = (dedupeKey: string, source: string, paymentId: string) =>
      Effect.map(
        sql`INSERT INTO processed_events (dedupe_key, source, payment_id, outcome)
          VALUES (${dedupeKey}, ${source}, ${paymentId}, 'processing') ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key`,
        (rows) => rows.length > 0
      )
    const finish = (dedupeKey: string, outcome: string) =>
      Effect.flatMap(pending, (batch) =>
        batch === undefined
          ? Effect.asVoid(sql`UPDATE processed_events SET outcome = ${outcome} WHERE dedupe_key = ${dedupeKey}`)
          : Effect.sync(() => void batch.outcomes.push({ dedupe_key: dedupeKey, outcome })))

    const lock = payments.lock
    /** Every status move goes through the payments' owner; a refused one here is a defect (the caller checked). */
    const move = (payment: Locked, to: PaymentStatus, set: Statement.Fragment | undefined, details: Record<string, unknown>) =>
      payments.transition({ paymentId: payment.id, from: payment.status, to, set, details }).pipe(Effect.orDie)

    const currentSubscription = (userId: string) =>
      sql`SELECT id::text AS id FROM subscriptions WHERE user_id = ${userId} AND status IN ('active', 'past_due')`.pipe(
        Effect.flatMap(decodeIds),
        Effect.map((rows) => rows[0]?.id ?? null)
      )

    /**
     * Confirmed (the row already moved): the event of the subscription change (none when nothing changed now: a
     * paid next period, a payment held as credit), the payer and finance_ops told what was received and what it did.
     */
    const confirmed = (payment: Locked, applied: PaymentApplied, txHash: string, paid: bigint) =>
      Effect.gen(function*() {
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
        if (applied.reason === "credited") {
          const reason = applied.creditedBecause === "next_period_paid"
            ? "another plan's next period is already paid"
            : "it was issued before your subscription last changed"
          yield* notifications.notify(payment.user_id, "payment.credited", { ...details, reason })
          return yield* notifications.notifyFinanceOps("payment.credited", { ...details, reason: applied.creditedBecause ?? "stale_checkout" })
        }
        const event = applied.reason === "scheduled" ? undefined : yield* planEvents.emit({
          reason: applied.reason,
          userId: payment.user_id,
          subscriptionId: applied.subscriptionId,
          paymentId: payment.id,
          // a renewal keeps the plan: no previous plan to announce
          previousPlanId: applied.previousPlanId === payment.plan_id ? null : applied.previousPlanId
        })
        const paidUntil = { current_period_end: applied.paidUntil }
        yield* notifications.notify(payment.user_id, "payment.confirmed", { ...details, ...paidUntil })
        if (applied.reason === "scheduled") yield* notifications.notify(payment.user_id, "subscription.next_period_paid", { ...details, ...paidUntil })
        for (const credit of applied.credits) {
          yield* notifications.notify(payment.user_id, "credit.proration", {
            transaction_id: payment.id,
            funding_transaction_id: credit.paymentId,
            plan_slug: event?.previous_plan?.slug ?? payment.plan_slug,
            network: credit.network,
            token: credit.token,
            amount: credit.amount
          })
        }
        yield* notifications.notifyFinanceOps("payment.confirmed", details)
      })

    /** Failed with a reason (the row already moved): `payment_failed` (the current subscription, if any, unchanged), the payer told. */
    const failed = (payment: Locked, reason: FailureReason, txHash: string) =>
      Effect.gen(function*() {
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
      /** The payment's row as the caller read it FOR UPDATE in this transaction; read here otherwise. */
      readonly locked?: PaymentRow
      readonly log: SettledLog
      readonly verdict: Verdict
      /** Whether the log's block is still the canonical one at its height, asked only when the listener disagrees. */
      readonly stillCanonical: Effect.Effect<boolean, RpcError | UnknownNetwork>
    }) {
      const { log, verdict } = args
      // The log was read before this transaction; a reorg the listener has handled since must not be confirmed. The
      // listener's cursor stays share-locked until commit, so a reorg it sees later re-checks this payment.
      const witnessed = yield* chainState.witness(log.network, log)
      if (witnessed === "absent" && !(yield* args.stillCanonical)) return "stale" as SettleOutcome
      if (!(yield* claim(args.dedupeKey, args.source, args.paymentId))) return "duplicate" as SettleOutcome
      const payment = args.locked ?? (yield* lock(args.paymentId))
      // The same transfer of this order again (a reorg moved it to another block or log index): its money is posted;
      // post nothing. Per order: other orders of the same transaction have logs of their own.
      const sameTransfer = payment.order_id === log.orderId.toLowerCase() && payment.tx_hash?.toLowerCase() === log.txHash.toLowerCase()
      if (sameTransfer && posted.includes(payment.status)) {
        // Where it sits now, so a later reorg is checked against the right block.
        yield* sql`UPDATE payment_transactions SET log_index = ${log.logIndex}, block_number = ${log.blockNumber.toString()},
          block_hash = ${log.blockHash}, updated_at = now() WHERE id = ${payment.id}`
        yield* finish(args.dedupeKey, `duplicate:moved_from_log_${payment.log_index}`)
        return "duplicate" as SettleOutcome
      }
      // A reversed transfer seen again in the very block it was reversed for is stale news, not a new inclusion.
      const reincluded = sameTransfer && payment.status === "reversed"
      if (reincluded && payment.block_hash === log.blockHash) {
        yield* finish(args.dedupeKey, "duplicate:reversed_inclusion")
        return "duplicate" as SettleOutcome
      }
      const asset = assetOf(log.network, log.token)
      const received: Posting = { account: `treasury:${log.network}`, asset, amount: log.amount }
      const credit: Posting = { account: `customer_credit:${payment.user_id}`, asset, amount: -log.amount }
      const onChain = sql`tx_hash = ${log.txHash}, log_index = ${log.logIndex}, block_number = ${log.blockNumber.toString()},
        block_hash = ${log.blockHash}, paid_amount = ${log.amount.toString()}, seen_at = coalesce(seen_at, now())`

      const ledgerId = paymentLedgerId(log.chainId, log.txHash, log.orderId, reincluded ? log.blockHash : undefined)
      let outcome: SettleOutcome
      let postings: ReadonlyArray<Posting>
      let note = ""
      if (verdict._tag === "Match" && canTransition(payment.status, "confirmed")) {
        const applied = yield* subscriptions.applyPayment({
          userId: payment.user_id,
          planId: payment.plan_id,
          interval: payment.interval,
          paymentId: payment.id,
          ledgerId
        }).pipe(Effect.orDie)
        // Not applied to the subscription (docs/billing-rules.md): confirmed, and all of it held as customer credit.
        const credited = applied.reason === "credited"
        yield* move(payment, "confirmed", sql`confirmed_at = now(), ${onChain}`, {
          tx_hash: log.txHash,
          ...(reincluded ? { reincluded_in: log.blockHash } : {}),
          ...(credited ? { credited: applied.creditedBecause } : {})
        })
        const revenue = credited ? 0n : log.amount - verdict.excess
        // Credit the checkout reserved is spent now, in this same ledger transaction (so a reversal or refund of the
        // payment gives it back); a payment held as credit spends none.
        const spent = credited ? 0n : payment.credit_applied
        postings = [
          received,
          { account: `customer_credit:${payment.user_id}`, asset, amount: spent },
          { account: `revenue:${log.network}`, asset, amount: -(revenue + spent) },
          { account: `customer_credit:${payment.user_id}`, asset, amount: -(log.amount - revenue) }
        ]
        yield* confirmed(payment, applied, log.txHash, log.amount)
        outcome = "confirmed"
        note = credited ? ":credited" : ""
      } else if (verdict._tag === "Mismatch" && canTransition(payment.status, "failed")) {
        yield* move(payment, "failed", sql`failure_reason = ${verdict.reason}, ${onChain}`, {
          failure_reason: verdict.reason,
          tx_hash: log.txHash
        })
        yield* failed(payment, verdict.reason, log.txHash)
        postings = [received, credit]
        outcome = "failed"
      } else {
        postings = [received, credit]
        outcome = "credited"
      }
      yield* ledger.post({ id: ledgerId, paymentId: payment.id, kind: "payment", postings })
      yield* finish(args.dedupeKey, verdict._tag === "Mismatch" ? `${outcome}:${verdict.reason}` : `${outcome}${note}`)
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
      const payment = yield* lock(paymentId)
      if (payment.status !== "pending") return
      yield* move(payment, "seen", sql`seen_at = coalesce(seen_at, now()), tx_hash = ${log.txHash}, log_index = ${log.logIndex},
        block_number = ${log.blockNumber.toString()}, block_hash = ${log.blockHash}`, { tx_hash: log.txHash, block_number: log.blockNumber })
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
      const payment = yield* lock(paymentId)
      if (payment.status !== "seen" || payment.tx_hash !== txHash) return false
      yield* move(payment, "pending", sql`tx_hash = NULL, log_index = NULL, block_number = NULL, block_hash = NULL`, {
        dropped_tx_hash: txHash
      })
      return true
    }, transactional(sql))

    /**
     * A reorg deeper than the confirmation depth removed a confirmed payment: the posting of its current inclusion
     * is reversed (never an UPDATE), the subscription loses exactly what the payment bought, the payer and
     * finance_ops are notified. A later inclusion of the same transaction confirms it again (`settleMint`).
     */
    const reverse = Effect.fn("Settlement.reverse")(function*(args: {
      readonly source: string
      readonly paymentId: string
      readonly chainId: number
      readonly txHash: string
      readonly logIndex: number
    }) {
      const payment = yield* lock(args.paymentId)
      const posting = yield* ledger.unreversedPaymentOf(payment.id)
      if (!canTransition(payment.status, "reversed") || posting === undefined) return "ignored" as const
      const reversalId = reversalOf(posting)
      if (!(yield* claim(reversalId, args.source, args.paymentId))) return "duplicate" as const
      yield* move(payment, "reversed", undefined, { tx_hash: args.txHash, block_hash: payment.block_hash })
      const original = yield* ledger.postingsOf(posting)
      yield* ledger.post({ id: reversalId, paymentId: payment.id, kind: "reversal", postings: original.map((p) => ({ ...p, amount: -p.amount })) })
      const subscriptionId = yield* subscriptions.revokePayment(payment.id).pipe(Effect.orDie)
      yield* planEvents.emit({ reason: "reversed", userId: payment.user_id, subscriptionId, paymentId: payment.id, previousPlanId: null })
      const details = { transaction_id: payment.id, user_id: payment.user_id, tx_hash: args.txHash, network: payment.network }
      yield* notifications.notify(payment.user_id, "payment.reversed", details)
      yield* notifications.notifyFinanceOps("payment.reversed", details)
      yield* finish(reversalId, "reversed")
      return "reversed" as const
    }, transactional(sql))

    return { settleMint, recordAttempt, markSeen, burn, unsee, reverse } as const
  }),
  dependencies: [
    Ledger.Default,
    Payments.Default,
    Subscriptions.Default,
    Notifications.Default,
    PlanEvents.Default,
    Audit.Default,
    ChainState.Default
  ]
}) {}
