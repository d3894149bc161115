import { SqlClient, type Statement } from "@effect/sql"
import { Clock, Data, Effect, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { firstPeriod, type Period, renewPeriod, revokePeriod } from "../src/domain/Period.ts"
import { Interval } from "../src/domain/Plan.ts"
import { canTransitionSubscription, SubscriptionStatus, type SubscriptionView } from "../src/domain/Subscription.ts"
import { decodeRow, decodeRows, transactional } from "./Rows.ts"

export class NoCurrentSubscription extends Data.TaggedError("NoCurrentSubscription")<{ readonly userId: string }> {}
export class PlanUnavailable extends Data.TaggedError("PlanUnavailable")<{ readonly slug: string }> {}
/** A move the transition table forbids, or from a status the row no longer has. */
export class IllegalSubscriptionTransition extends Data.TaggedError("IllegalSubscriptionTransition")<{
  readonly subscriptionId: string
  readonly from: SubscriptionStatus
  readonly to: SubscriptionStatus
}> {}

/** A move of one subscription, made by `Subscriptions.transition` only. */
export interface SubscriptionTransition {
  readonly id: string
  /** The status the caller read under its row lock. */
  readonly from: SubscriptionStatus
  readonly to: SubscriptionStatus
  /** Further columns set with the status (not `updated_at`). */
  readonly set?: Statement.Fragment
}

/** What a confirmed payment did to the subscriptions, for the `billing.plan.changed.v1` the caller emits. */
export interface PaymentApplied {
  readonly subscriptionId: string
  /** `renewed`: the same plan extended; `activated`: a new subscription (first one, or another plan paid now). */
  readonly reason: "activated" | "renewed"
  /** The plan of the subscription this payment renewed or replaced, if there was one. */
  readonly previousPlanId: number | null
  /** The subscription another plan paid now replaced (it is `canceled` as of now). */
  readonly replacedSubscriptionId: string | null
}

const Current = Schema.Struct({
  id: Schema.String,
  plan_id: Schema.NumberFromString,
  status: SubscriptionStatus,
  current_period_start: Schema.DateFromSelf,
  current_period_end: Schema.DateFromSelf,
  period_anchor: Schema.DateFromSelf
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

const Grant = Schema.Struct({ subscription_id: Schema.String, interval: Interval })
const decodeGrant = decodeRow(Schema.UndefinedOr(Grant))
const decodeIds = decodeRows(Schema.Struct({ id: Schema.String }))

const PlanRef = Schema.Struct({ id: Schema.NumberFromString })
const decodePlanRef = decodeRow(Schema.UndefinedOr(PlanRef))

const CURRENT_COLUMNS = `id::text AS id, plan_id::text AS plan_id, status, current_period_start, current_period_end,
  coalesce(period_anchor, current_period_start) AS period_anchor`

/**
 * Subscription periods (by the interval each payment bought, from the time `Clock` gives) and the user's own
 * changes; the one writer of a subscription's `status`. Payment effects run inside the caller's SQL transaction;
 * the scheduler (streams/Scheduler.ts) moves periods on through `transition`.
 */
export class Subscriptions extends Effect.Service<Subscriptions>()("billing/Subscriptions", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const nowDate = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    const transition = Effect.fn("Subscriptions.transition")(function*(t: SubscriptionTransition) {
      const illegal = new IllegalSubscriptionTransition({ subscriptionId: t.id, from: t.from, to: t.to })
      if (!canTransitionSubscription(t.from, t.to)) return yield* illegal
      const moved = yield* sql`UPDATE subscriptions SET status = ${t.to}, updated_at = now()${t.set === undefined ? sql.literal("") : sql`, ${t.set}`}
        WHERE id = ${t.id} AND status = ${t.from} RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
      if (moved.length === 0) return yield* illegal
    })

    /** What the payment bought is kept, so a reversal or refund takes back exactly that. */
    const grant = (paymentId: string, subscriptionId: string, interval: Interval) =>
      sql`INSERT INTO subscription_grants (payment_id, subscription_id, interval) VALUES (${paymentId}, ${subscriptionId}, ${interval})
        ON CONFLICT (payment_id) DO UPDATE SET subscription_id = excluded.subscription_id, interval = excluded.interval,
          granted_at = now(), revoked_at = NULL`

    const lockCurrent = (userId: string) =>
      sql`SELECT ${sql.literal(CURRENT_COLUMNS)} FROM subscriptions
        WHERE user_id = ${userId} AND status IN ('active', 'past_due') FOR UPDATE`.pipe(Effect.flatMap(decodeCurrent))

    /**
     * A confirmed payment: the same plan renews (a running period is extended from its end, an ended one starts
     * again now) and drops any scheduled cancel or plan change; another plan paid now replaces the current
     * subscription from now (the old one is `canceled` as of now).
     */
    const applyPayment = Effect.fn("Subscriptions.applyPayment")(function*(p: {
      readonly userId: string
      readonly planId: number
      readonly interval: Interval
      readonly paymentId: string
    }) {
      const now = yield* nowDate
      const [current] = yield* lockCurrent(p.userId)
      if (current !== undefined && current.plan_id === p.planId) {
        const next = renewPeriod(periodOf(current), p.interval, now)
        yield* transition({
          id: current.id,
          from: current.status,
          to: "active",
          set: sql`current_period_start = ${next.start}, current_period_end = ${next.end}, period_anchor = ${next.anchor},
            cancel_at_period_end = false, next_plan_id = NULL, last_payment_id = ${p.paymentId}`
        })
        yield* grant(p.paymentId, current.id, p.interval)
        return { subscriptionId: current.id, reason: "renewed", previousPlanId: current.plan_id, replacedSubscriptionId: null } satisfies PaymentApplied
      }
      if (current !== undefined) {
        const end = new Date(Math.max(now.getTime(), current.current_period_start.getTime() + 1000))
        yield* transition({ id: current.id, from: current.status, to: "canceled", set: sql`current_period_end = ${end}, next_plan_id = NULL` })
      }
      const id = randomUUID()
      const period = firstPeriod(now, p.interval)
      yield* sql`INSERT INTO subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end,
          period_anchor, last_payment_id)
        VALUES (${id}, ${p.userId}, ${p.planId}, 'active', ${period.start}, ${period.end}, ${period.anchor}, ${p.paymentId})`
      yield* grant(p.paymentId, id, p.interval)
      return {
        subscriptionId: id,
        reason: "activated",
        previousPlanId: current?.plan_id ?? null,
        replacedSubscriptionId: current?.id ?? null
      } satisfies PaymentApplied
    })

    /** A burned pass: the subscription runs to its period end, then ends (a scheduled plan change is dropped). */
    const cancelAtPeriodEnd = Effect.fn("Subscriptions.cancelAtPeriodEnd")(function*(paymentId: string) {
      const rows = yield* sql`UPDATE subscriptions SET cancel_at_period_end = true, next_plan_id = NULL, updated_at = now()
        WHERE last_payment_id = ${paymentId} AND status IN ('active', 'past_due') RETURNING id`
      return rows.length > 0
    })

    /**
     * A reversed or refunded payment takes back exactly the interval it bought, from the end of the subscription it
     * was granted to (whatever renewals followed); that subscription is `expired` as of now when nothing is left.
     * The subscription's id, or null when the payment bought nothing still held.
     */
    const revokePayment = Effect.fn("Subscriptions.revokePayment")(function*(paymentId: string) {
      const now = yield* nowDate
      const held = yield* sql`SELECT subscription_id::text AS subscription_id, interval FROM subscription_grants
        WHERE payment_id = ${paymentId} AND revoked_at IS NULL FOR UPDATE`.pipe(Effect.flatMap((rows) => decodeGrant(rows[0])))
      if (held === undefined) return null
      yield* sql`UPDATE subscription_grants SET revoked_at = now() WHERE payment_id = ${paymentId}`
      const [row] = yield* sql`SELECT ${sql.literal(CURRENT_COLUMNS)} FROM subscriptions
        WHERE id = ${held.subscription_id} AND status <> 'expired' FOR UPDATE`.pipe(Effect.flatMap(decodeCurrent))
      if (row === undefined) return held.subscription_id
      const back = revokePeriod(periodOf(row), held.interval, now)
      yield* transition({
        id: row.id,
        from: row.status,
        to: back.ended ? "expired" : row.status,
        set: sql`current_period_end = ${back.end}, period_anchor = ${back.anchor}`
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
      yield* sql`UPDATE subscriptions SET cancel_at_period_end = true, next_plan_id = NULL, updated_at = now()
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
      const next = plan.id === current.plan_id ? null : plan.id
      yield* sql`UPDATE subscriptions SET next_plan_id = ${next}, cancel_at_period_end = false, updated_at = now()
        WHERE id = ${current.id}`
      return yield* currentView(userId)
    }, transactional(sql))

    return { transition, applyPayment, cancelAtPeriodEnd, revokePayment, view, cancel, changePlan } as const
  })
}) {}
