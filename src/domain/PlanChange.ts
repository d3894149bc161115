/**
 * What a payment for another plan does to a current subscription (docs/billing-rules.md), as pure arithmetic:
 * which way it goes, and what an upgrade credits for the time it ends early. Money is bigint; `now` is an argument.
 */
import type { Array as Arr } from "effect"
import { addInterval, firstPeriod, type Period, renewPeriod, shiftBoundary } from "./Period.ts"
import type { Interval } from "./Plan.ts"

/** What one payment bought: its price (base units of one asset) for one interval. */
export interface Purchase {
  readonly amount: bigint
  readonly network: string
  readonly token: string
  readonly interval: Interval
}

const months = (interval: Interval) => (interval === "year" ? 12n : 1n)

/**
 * The sign of `a`'s price per month minus `b`'s (a year counts 12 months), compared exactly as
 * `a.amount × months(b) ⋛ b.amount × months(a)`; undefined when they are in different assets (no price to compare).
 */
export const compareWorth = (a: Purchase, b: Purchase): -1 | 0 | 1 | undefined => {
  if (a.network !== b.network || a.token !== b.token) return undefined
  const x = a.amount * months(b.interval)
  const y = b.amount * months(a.interval)
  return x > y ? 1 : x < y ? -1 : 0
}

/** A grant the subscription holds: a payment's interval, in the current period or (deferred) after it. */
export interface HeldGrant extends Purchase {
  readonly paymentId: string
  readonly planId: number
  readonly deferred: boolean
}

export interface ProrationCredit {
  readonly paymentId: string
  readonly network: string
  readonly token: string
  readonly amount: bigint
}

/** ⌈n / d⌉ for n ≥ 0, d > 0: rounding goes to the customer. */
const ceilDiv = (n: bigint, d: bigint) => (n + d - 1n) / d

/**
 * The unused value of each held grant at `now`. The current period is cut into the stretches the grants bought,
 * newest grant last, counted back from the period end on the period's grid; a stretch [a, b) credits
 * ⌈amount × (b − max(a, now)) / (b − a)⌉ (milliseconds). A deferred grant has not started: all of it.
 * `held` is newest first.
 */
export const prorationCredits = (period: Period, held: ReadonlyArray<HeldGrant>, now: Date): ReadonlyArray<ProrationCredit> => {
  const credits: Array<ProrationCredit> = []
  const credit = (g: HeldGrant, amount: bigint) => {
    if (amount > 0n) credits.push({ paymentId: g.paymentId, network: g.network, token: g.token, amount })
  }
  for (const g of held) if (g.deferred) credit(g, g.amount)
  let boundary = { anchor: period.anchor, end: period.end }
  for (const g of held) {
    if (g.deferred) continue
    if (boundary.end.getTime() <= now.getTime()) break
    const back = shiftBoundary(boundary.anchor, g.interval, boundary.end, -1)
    const length = BigInt(boundary.end.getTime() - back.end.getTime())
    const unused = BigInt(boundary.end.getTime() - Math.max(back.end.getTime(), now.getTime()))
    credit(g, ceilDiv(g.amount * unused, length))
    boundary = back
  }
  return credits
}

/** The paid next period: from `start`, one interval per deferred grant (oldest first), on `start`'s grid. */
export const paidNextPeriod = (start: Date, intervals: Arr.NonEmptyReadonlyArray<Interval>): Period =>
  intervals.slice(1).reduce((period, interval) => renewPeriod(period, interval, start), firstPeriod(start, intervals[0]))

/**
 * - `upgrade`: at once; the current subscription ends now and its unused part is credited.
 * - `defer`: the current period runs out; the payment's period of its plan starts then.
 * - `replace`: the current period is over (past_due): the payment's plan starts now, nothing to credit.
 * - `stale` (issued before the subscription last changed, and it would shorten or cheapen it) or `conflict` (another
 *   plan's next period is already paid): the payment is held as customer credit, the subscription is unchanged.
 */
export type PlanChange = "upgrade" | "defer" | "replace" | "stale" | "conflict"

export const decidePlanChange = (current: {
  readonly now: Date
  readonly periodEnd: Date
  readonly changedAt: Date
  /** What bought the latest stretch of the current period, if anything recorded did. */
  readonly basis: Purchase | undefined
  /** The plan of a paid next period already waiting, if any. */
  readonly deferredPlanId: number | undefined
}, payment: Purchase & { readonly planId: number; readonly issuedAt: Date }): PlanChange => {
  const queueable = current.deferredPlanId === undefined || current.deferredPlanId === payment.planId
  if (current.periodEnd.getTime() <= current.now.getTime()) {
    return current.deferredPlanId === undefined ? "replace" : queueable ? "defer" : "conflict"
  }
  const stale = payment.issuedAt.getTime() < current.changedAt.getTime()
  const worth = current.basis === undefined ? undefined : compareWorth(payment, current.basis)
  if (worth !== undefined && worth >= 0) {
    const shortens = addInterval(current.now, payment.interval).getTime() < current.periodEnd.getTime()
    return stale && shortens ? "stale" : "upgrade"
  }
  return stale ? "stale" : queueable ? "defer" : "conflict"
}

/** A confirmed payment, as `Subscriptions.applyPayment` applies it. */
export interface ConfirmedPayment {
  readonly userId: string
  readonly planId: number
  readonly interval: Interval
  readonly paymentId: string
  /** The ledger id of this confirmation: an upgrade's proration credits are keyed on it. */
  readonly ledgerId: string
}

/** What a confirmed payment did to the subscriptions (docs/billing-rules.md), for the events and notices the caller sends. */
export interface PaymentApplied {
  readonly subscriptionId: string
  /**
   * `activated`: a new subscription (the first one, after an ended one, or an upgrade that ended the current one now);
   * `renewed`: the same plan extended; `scheduled`: another plan's period paid to start at the current period end;
   * `credited`: stale or conflicting, applied to nothing: the caller posts the money as customer credit.
   */
  readonly reason: "activated" | "renewed" | "scheduled" | "credited"
  /** The plan of the subscription this payment renewed, replaced or follows, if there was one. */
  readonly previousPlanId: number | null
  /** The subscription another plan paid now replaced (it is `canceled` as of now). */
  readonly replacedSubscriptionId: string | null
  /** Why a `credited` payment was not applied. */
  readonly creditedBecause?: "stale_checkout" | "next_period_paid"
  /** What an upgrade credited for the replaced subscription's unused time (ledger kind `proration`). */
  readonly credits: ReadonlyArray<ProrationCredit>
  /** The end of what is paid: the current period's, or the paid next period's. */
  readonly paidUntil: Date
}
