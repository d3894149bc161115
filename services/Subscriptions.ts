import { SqlClient, type Statement } from "@effect/sql"
import { Array as Arr, Clock, Data, Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { firstPeriod, type Period, renewPeriod, revokePeriod } from "../src/domain/Period.ts"
import {
  type ConfirmedPayment,
  decidePlanChange,
  type HeldGrant,
  paidNextPeriod,
  type PaymentApplied,
  type ProrationCredit
} from "../src/domain/PlanChange.ts"
import { canTransitionSubscription, IllegalSubscriptionTransition, NoCurrentSubscription, PlanUnavailable, SubscriptionStatus, type SubscriptionView } from "../src/domain/Subscription.ts"
import { Grants } from "./Grants.ts"
import { decodeIds, decodeRow, decodeRows, transactional } from "./Rows.ts"

/** The next period is already paid for (a downgrade paid in advance): it is not changed by a scheduled change. */
export class NextPeriodPaid extends Data.TaggedError("NextPeriodPaid")<{ readonly userId: string }> {}

/** A move of one subscription, made by `Subscriptions.transition` only. */
export interface SubscriptionTransition {
  readonly id: string
  /** The status the caller read under its row lock. */
  readonly from: SubscriptionStatus
  readonly to: SubscriptionStatus
  /** Further columns set with the status (not `updated_at`). */
  readonly set?: Statement.Fragment
}

const Current = Schema.Struct({
  id: Schema.String,
  plan_id: Schema.NumberFromString,
  next_plan_id: Schema.NullOr(Schema.NumberFromString),
  status: SubscriptionStatus,
  current_period_start: Schema.DateFromSelf,
  current_period_end: Schema.DateFromSelf,
  period_anchor: Schema.DateFromSelf,
  changed_at: Schema.DateFromSelf
})
const decodeCurrent = decodeRows(Current)
const periodOf = (row: typeof Current.Type): Period => ({
  anchor: row.period_anchor,
  start: row.current_period_start,
  end: row.current_period_end
})

const ViewRow = Schema.Struct({
  plan_slug: Schema.String,
  status: SubscriptionStatus,
  current_period_start: Schema.DateFromSelf,
  current_period_end: Schema.DateFromSelf,
  cancel_at_period_end: Schema.Boolean,
  next_plan_slug: Schema.NullOr(Schema.String)
})
const decodeView = decodeRows(ViewRow)
const toView = (row: typeof ViewRow.Type): SubscriptionView => ({
  ...row,
  current_period_start: row.current_period_start.toISOString(),
  current_period_end: row.current_period_end.toISOString()
})

const Bought = Schema.Struct({ amount: Schema.BigInt, network: Schema.String, token: Schema.String, created_at: Schema.DateFromSelf })
const decodeBought = decodeRow(Bought)

const PlanRef = Schema.Struct({ id: Schema.NumberFromString })
const decodePlanRef = decodeRow(Schema.UndefinedOr(PlanRef))

const CURRENT_COLUMNS = `id::text AS id, plan_id::text AS plan_id, next_plan_id::text AS next_plan_id, status, current_period_start,
  current_period_end, coalesce(period_anchor, current_period_start) AS period_anchor, changed_at`
/** A cancel keeps a next period that is already paid (it runs to the end of what is paid). */
const KEEP_PAID_NEXT_PLAN = `next_plan_id = CASE WHEN EXISTS (SELECT 1 FROM subscription_grants g WHERE g.subscription_id = subscriptions.id
  AND g.deferred AND g.revoked_at IS NULL AND g.prorated_by IS NULL) THEN next_plan_id END`
const deferredOf = (held: ReadonlyArray<HeldGrant>) => held.filter((g) => g.deferred).reverse()
type Current = typeof Current.Type
const applied = (subscriptionId: string, reason: PaymentApplied["reason"], paidUntil: Date, over: Partial<PaymentApplied> = {}): PaymentApplied =>
  ({ subscriptionId, reason, previousPlanId: null, replacedSubscriptionId: null, credits: [], paidUntil, ...over })

/**
 * Subscription periods (by the interval each payment bought, from the time `Clock` gives) and the user's own
 * changes; the one writer of a subscription's `status`. Payment effects run inside the caller's SQL transaction;
 * the scheduler (streams/Scheduler.ts) moves periods on through `transition`.
 */
export class Subscriptions extends Effect.Service<Subscriptions>()("billing/Subscriptions", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const grants = yield* Grants
    const nowDate = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    const transition = Effect.fn("Subscriptions.transition")(function*(t: SubscriptionTransition) {
      const illegal = new IllegalSubscriptionTransition({ subscriptionId: t.id, from: t.from, to: t.to })
      if (!canTransitionSubscription(t.from, t.to)) return yield* illegal
      const moved = yield* sql`UPDATE subscriptions SET status = ${t.to}, updated_at = now()${t.set === undefined ? sql.literal("") : sql`, ${t.set}`}
        WHERE id = ${t.id} AND status = ${t.from} RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
      if (moved.length === 0) return yield* illegal
    })

    const lockCurrent = (userId: string) =>
      sql`SELECT ${sql.literal(CURRENT_COLUMNS)} FROM subscriptions
        WHERE user_id = ${userId} AND status IN ('active', 'past_due') FOR UPDATE`.pipe(Effect.flatMap(decodeCurrent))
    const lockById = (id: string) =>
      sql`SELECT ${sql.literal(CURRENT_COLUMNS)} FROM subscriptions WHERE id = ${id} FOR UPDATE`.pipe(Effect.flatMap(decodeCurrent))
    const boughtBy = (paymentId: string) =>
      sql`SELECT (amount + credit_applied)::text AS amount, network, token, created_at FROM payment_transactions WHERE id = ${paymentId}`.pipe(
        Effect.flatMap((rows) => decodeBought(rows[0]))
      )

    /** A new subscription from now; the current one, if any, is `canceled` as of now. */
    const open = (p: ConfirmedPayment, now: Date, current: Current | undefined, credits: ReadonlyArray<ProrationCredit>) =>
      Effect.gen(function*() {
        if (current !== undefined) {
          const end = new Date(Math.max(now.getTime(), current.current_period_start.getTime() + 1000))
          yield* transition({ id: current.id, from: current.status, to: "canceled", set: sql`current_period_end = ${end}, next_plan_id = NULL` })
        }
        const id = randomUUID()
        const period = firstPeriod(now, p.interval)
        yield* sql`INSERT INTO subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end,
            period_anchor, last_payment_id, changed_at)
          VALUES (${id}, ${p.userId}, ${p.planId}, 'active', ${period.start}, ${period.end}, ${period.anchor}, ${p.paymentId}, ${now})`
        yield* grants.record(p.paymentId, id, p.interval, false)
        return applied(id, "activated", period.end, { previousPlanId: current?.plan_id ?? null, replacedSubscriptionId: current?.id ?? null, credits })
      })

    /** The same plan: extended from its end (an ended period starts again now); an unpaid scheduled change or cancel is dropped. */
    const renew = (current: Current, p: ConfirmedPayment, now: Date, paidNext: boolean) =>
      Effect.gen(function*() {
        const next = renewPeriod(periodOf(current), p.interval, now)
        yield* transition({
          id: current.id,
          from: current.status,
          to: "active",
          set: sql`current_period_start = ${next.start}, current_period_end = ${next.end}, period_anchor = ${next.anchor},
            cancel_at_period_end = false, next_plan_id = ${paidNext ? current.next_plan_id : null}, last_payment_id = ${p.paymentId},
            changed_at = ${now}`
        })
        yield* grants.record(p.paymentId, current.id, p.interval, false)
        return applied(current.id, "renewed", next.end, { previousPlanId: current.plan_id })
      })

    /** Another plan's period, paid now, starts when the current one ends (after any already paid). */
    const defer = (current: Current, p: ConfirmedPayment, now: Date, waiting: ReadonlyArray<HeldGrant>) =>
      Effect.gen(function*() {
        yield* grants.record(p.paymentId, current.id, p.interval, true)
        yield* transition({
          id: current.id,
          from: current.status,
          to: current.status,
          set: sql`next_plan_id = ${p.planId}, cancel_at_period_end = false, last_payment_id = ${p.paymentId}, changed_at = ${now}`
        })
        const next = paidNextPeriod(current.current_period_end, Arr.append(waiting.map((g) => g.interval), p.interval))
        return applied(current.id, "scheduled", next.end, { previousPlanId: current.plan_id })
      })

    /**
     * A confirmed payment (docs/billing-rules.md): no current subscription → a new one from now; the same plan →
     * renewed; another plan → upgrade (at once, unused time credited), defer (from the period end), replace (the
     * period is over) or credit (stale or conflicting: nothing changes), as `decidePlanChange` says.
     */
    const applyPayment = Effect.fn("Subscriptions.applyPayment")(function*(p: ConfirmedPayment) {
      const now = yield* nowDate
      const [current] = yield* lockCurrent(p.userId)
      if (current === undefined) return yield* open(p, now, undefined, [])
      const held = yield* grants.held(current.id)
      const waiting = deferredOf(held)
      if (current.plan_id === p.planId) return yield* renew(current, p, now, waiting.length > 0)
      const bought = yield* boughtBy(p.paymentId)
      const change = decidePlanChange({
        now,
        periodEnd: current.current_period_end,
        changedAt: current.changed_at,
        basis: held.find((g) => !g.deferred),
        deferredPlanId: waiting[0]?.planId
      }, { ...bought, interval: p.interval, planId: p.planId, issuedAt: bought.created_at })
      switch (change) {
        case "stale":
          return applied(current.id, "credited", current.current_period_end, { creditedBecause: "stale_checkout" })
        case "conflict":
          return applied(current.id, "credited", current.current_period_end, { creditedBecause: "next_period_paid" })
        case "defer":
          return yield* defer(current, p, now, waiting)
        case "replace":
          return yield* open(p, now, current, [])
        case "upgrade": {
          const credits = yield* grants.prorate({
            userId: p.userId,
            upgradePaymentId: p.paymentId,
            upgradeLedgerId: p.ledgerId,
            period: periodOf(current),
            held,
            now
          })
          return yield* open(p, now, current, credits)
        }
      }
    })

    /** The paid next period starts at `start`: the plan switches, the waiting grants now hold the period. */
    const startPaid = (row: Current, start: Date, waiting: ReadonlyArray<HeldGrant>) =>
      Effect.gen(function*() {
        if (!Arr.isNonEmptyReadonlyArray(waiting)) return undefined
        const first = Arr.headNonEmpty(waiting)
        const next = paidNextPeriod(start, Arr.map(waiting, (g) => g.interval))
        yield* transition({
          id: row.id,
          from: row.status,
          to: "active",
          set: sql`plan_id = ${first.planId}, current_period_start = ${next.start}, current_period_end = ${next.end},
            period_anchor = ${next.anchor}, next_plan_id = NULL, changed_at = ${start}`
        })
        yield* grants.start(row.id)
        return { subscriptionId: row.id, planId: first.planId, previousPlanId: row.plan_id, paymentId: Arr.lastNonEmpty(waiting).paymentId }
      })

    /** The scheduler at an active subscription's period end: its paid next period starts (undefined when none is paid). */
    const startNextPeriod = Effect.fn("Subscriptions.startNextPeriod")(function*(subscriptionId: string) {
      const now = yield* nowDate
      const [row] = yield* lockById(subscriptionId)
      if (row === undefined || row.status !== "active" || row.current_period_end.getTime() > now.getTime()) return undefined
      return yield* startPaid(row, row.current_period_end, deferredOf(yield* grants.held(row.id)))
    })

    /** A burned pass: the subscription runs to the end of what is paid, then ends (an unpaid plan change is dropped). */
    const cancelAtPeriodEnd = Effect.fn("Subscriptions.cancelAtPeriodEnd")(function*(paymentId: string) {
      const rows = yield* sql`UPDATE subscriptions SET cancel_at_period_end = true, ${sql.literal(KEEP_PAID_NEXT_PLAN)}, updated_at = now()
        WHERE last_payment_id = ${paymentId} AND status IN ('active', 'past_due') RETURNING id`
      return rows.length > 0
    })

    /**
     * A reversed or refunded payment takes back exactly what it bought: its interval from the end of the subscription
     * it was granted to (whatever renewals followed; that subscription is `expired` as of now when nothing is left, or
     * its paid next period starts now), its paid next period, or, when an upgrade turned its unused time into
     * credit, that credit (reversing `proration` entries). The subscription's id, or null when it held no time.
     */
    const revokePayment = Effect.fn("Subscriptions.revokePayment")(function*(paymentId: string) {
      const now = yield* nowDate
      const subscriptionId = yield* grants.subscriptionOf(paymentId)
      if (subscriptionId === undefined) return null
      // The subscription first, then the grant: the order applyPayment takes them in.
      const [row] = yield* lockById(subscriptionId)
      const held = yield* grants.lockUnrevoked(paymentId)
      if (held === undefined) return null
      yield* grants.markRevoked(paymentId)
      if (held.prorated) {
        yield* grants.reverseProrations(paymentId)
        return null
      }
      if (row === undefined || row.status === "expired") return held.subscription_id
      const waiting = deferredOf(yield* grants.held(row.id))
      if (held.deferred) {
        const set = waiting.length > 0 ? sql`changed_at = ${now}` : sql`changed_at = ${now}, next_plan_id = NULL`
        yield* transition({ id: row.id, from: row.status, to: row.status, set })
        return row.id
      }
      const back = revokePeriod(periodOf(row), held.interval, now)
      if (back.ended && waiting.length > 0 && row.status !== "canceled") {
        yield* startPaid(row, now, waiting)
        return row.id
      }
      yield* transition({
        id: row.id,
        from: row.status,
        to: back.ended ? "expired" : row.status,
        set: sql`current_period_end = ${back.end}, period_anchor = ${back.anchor}, changed_at = ${now}`
      })
      return row.id
    })

    /** The user's current subscription, else the most recent one. */
    const view = Effect.fn("Subscriptions.view")(function*(userId: string) {
      const rows = yield* sql`SELECT p.slug AS plan_slug, s.status, s.current_period_start, s.current_period_end,
          s.cancel_at_period_end, np.slug AS next_plan_slug
        FROM subscriptions s JOIN plans p ON p.id = s.plan_id LEFT JOIN plans np ON np.id = s.next_plan_id
        WHERE s.user_id = ${userId}
        ORDER BY (s.status IN ('active', 'past_due')) DESC, s.current_period_end DESC, s.created_at DESC LIMIT 1`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeView)
      )
      return Option.map(Option.fromNullable(rows[0]), toView)
    })

    const currentView = (userId: string) =>
      Effect.flatMap(view(userId), Option.match({
        onNone: () => Effect.dieMessage(`subscription of ${userId} vanished inside its transaction`),
        onSome: Effect.succeed
      }))

    /**
     * `POST /me/subscription/cancel`: the current subscription runs to its period end and then ends (the scheduler
     * makes it `canceled` and emits then); a scheduled plan change is dropped. Repeating it changes nothing.
     */
    const cancel = Effect.fn("Subscriptions.cancel")(function*(userId: string) {
      const [current] = yield* lockCurrent(userId)
      if (current === undefined) return yield* new NoCurrentSubscription({ userId })
      yield* sql`UPDATE subscriptions SET cancel_at_period_end = true, ${sql.literal(KEEP_PAID_NEXT_PLAN)}, updated_at = now()
        WHERE id = ${current.id} AND (NOT cancel_at_period_end OR next_plan_id IS NOT NULL)`
      return yield* currentView(userId)
    }, transactional(sql))

    /**
     * `POST /me/subscription/change`: the current subscription moves to an active plan at its period end (upgrade
     * or downgrade; paying for that plan now switches at once instead). Choosing the current plan drops a
     * scheduled change; choosing a plan means continuing, so a scheduled cancel is dropped too.
     */
    const changePlan = Effect.fn("Subscriptions.changePlan")(function*(userId: string, planSlug: string) {
      const plan = yield* sql`SELECT id::text AS id FROM plans WHERE slug = ${planSlug} AND is_active AND deleted_at IS NULL`.pipe(
        Effect.flatMap((rows) => decodePlanRef(rows[0]))
      )
      if (plan === undefined) return yield* new PlanUnavailable({ slug: planSlug })
      const [current] = yield* lockCurrent(userId)
      if (current === undefined) return yield* new NoCurrentSubscription({ userId })
      if (deferredOf(yield* grants.held(current.id)).length > 0) return yield* new NextPeriodPaid({ userId })
      const next = plan.id === current.plan_id ? null : plan.id
      yield* sql`UPDATE subscriptions SET next_plan_id = ${next}, cancel_at_period_end = false, updated_at = now()
        WHERE id = ${current.id}`
      return yield* currentView(userId)
    }, transactional(sql))

    return { transition, applyPayment, startNextPeriod, cancelAtPeriodEnd, revokePayment, view, cancel, changePlan } as const
  }),
  dependencies: [Grants.Default]
}) {}
