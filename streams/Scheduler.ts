import { SqlClient } from "@effect/sql"
import { Clock, Config, Duration, Effect, Layer, Schedule, Schema } from "effect"
import { serviceActor } from "../src/domain/Actor.ts"
import { SubscriptionStatus } from "../src/domain/Subscription.ts"
import { Leases } from "../services/Leases.ts"
import { Notifications } from "../services/Notifications.ts"
import { Payments } from "../services/Payments.ts"
import { PlanEvents } from "../services/PlanEvents.ts"
import { decodeIds, decodeRows } from "../services/Rows.ts"
import { Subscriptions } from "../services/Subscriptions.ts"

export const SchedulerConfig = Config.all({
  every: Config.duration("BILLING_SCHEDULER_EVERY").pipe(Config.withDefault(Duration.seconds(30))),
  /** How long a past_due subscription waits for its renewal before it expires. */
  grace: Config.duration("BILLING_GRACE_PERIOD").pipe(Config.withDefault(Duration.days(3))),
  /** How long before its period end a subscription's owner is told that it renews. */
  renewalNotice: Config.duration("BILLING_RENEWAL_NOTICE").pipe(Config.withDefault(Duration.days(3))),
  /** How long past its deadline a checkout with nothing seen on chain stays pending (late webhooks, clock skew). */
  pendingTtlGrace: Config.duration("BILLING_PENDING_TTL_GRACE").pipe(Config.withDefault(Duration.minutes(10)))
})

/** What one pass changed. */
export interface SchedulerReport {
  /** Subscriptions whose paid next period (a downgrade paid in advance) started. */
  readonly nextPeriods: number
  readonly pastDue: number
  readonly canceled: number
  readonly expired: number
  readonly renewalDue: number
  readonly checkoutsExpired: number
}

/** Rows the scheduler takes per kind of work and pass; the rest waits for the next pass. */
const BATCH = 500

const Locked = Schema.Struct({
  id: Schema.String,
  user_id: Schema.String,
  status: SubscriptionStatus,
  plan_id: Schema.NumberFromString,
  next_plan_id: Schema.NullOr(Schema.NumberFromString),
  cancel_at_period_end: Schema.Boolean,
  current_period_end: Schema.DateFromSelf
})
type Locked = typeof Locked.Type
const decodeLocked = decodeRows(Locked)
const decodeSlugs = decodeRows(Schema.Struct({ slug: Schema.String }))
const decodeNotice = decodeRows(Schema.Struct({ user_id: Schema.String, plan_slug: Schema.String, current_period_end: Schema.DateFromSelf }))

/**
 * Moves subscriptions and checkouts on with time, `now` from `Clock`: an active subscription past its period end
 * starts its paid next period, if one is paid (docs/billing-rules.md), else becomes `past_due` (on its scheduled
 * next plan, if any) or `canceled` (cancel at period end); a past_due one
 * is `canceled` when its owner canceled, `expired` after the grace period; owners are told once per period
 * that a renewal is due; checkouts pending past their deadline + grace with nothing on chain expire.
 * Each transition is one SQL transaction with its `billing.plan.changed.v1` and notification (or audit row).
 */
export class Scheduler extends Effect.Service<Scheduler>()("billing/Scheduler", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const planEvents = yield* PlanEvents
    const notifications = yield* Notifications
    const payments = yield* Payments
    const subscriptions = yield* Subscriptions
    const config = yield* SchedulerConfig
    const ms = Duration.toMillis

    /** One row's transition, isolated: a failure is logged and the pass goes on with the others. */
    const each = <A>(ids: ReadonlyArray<{ readonly id: string }>, what: string, step: (id: string) => Effect.Effect<A, unknown>) =>
      Effect.forEach(ids, ({ id }) =>
        sql.withTransaction(step(id)).pipe(
          Effect.catchAllCause((cause) =>
            Effect.logWarning(`scheduler: ${what} failed`, cause).pipe(Effect.annotateLogs("id", id), Effect.as(undefined)))
        ))

    const lock = (id: string, condition: ReturnType<typeof sql.and>) =>
      sql`SELECT id::text AS id, user_id, status, plan_id::text AS plan_id, next_plan_id::text AS next_plan_id,
          cancel_at_period_end, current_period_end
        FROM subscriptions WHERE id = ${id} AND ${condition} FOR UPDATE`.pipe(Effect.flatMap(decodeLocked), Effect.map((rows) => rows[0]))

    const slugOf = (planId: number) =>
      Effect.flatMap(sql`SELECT slug FROM plans WHERE id = ${planId}`.pipe(Effect.flatMap(decodeSlugs)), (rows) =>
        rows[0] === undefined ? Effect.dieMessage(`plan ${planId} missing`) : Effect.succeed(rows[0].slug))

    /**
     * The status change, its plan.changed event (no transaction caused it; `previous_plan` only when the plan
     * changed) and the owner's notification.
     */
    const move = (
      row: Locked,
      to: Exclude<SubscriptionStatus, "active">,
      planId: number,
      kind: "subscription.past_due" | "subscription.expired",
      extra: Record<string, string>
    ) =>
      Effect.gen(function*() {
        yield* subscriptions.transition({ id: row.id, from: row.status, to, set: sql`plan_id = ${planId}, next_plan_id = NULL` })
        yield* planEvents.emit({
          reason: to,
          userId: row.user_id,
          subscriptionId: row.id,
          paymentId: null,
          previousPlanId: planId === row.plan_id ? null : row.plan_id
        })
        yield* notifications.notify(row.user_id, kind, {
          subscription_id: row.id,
          plan_slug: yield* slugOf(planId),
          status: to,
          current_period_end: row.current_period_end.toISOString(),
          ...extra
        })
        return to
      })

    /** The paid next period started: `activated` on the new plan (its transaction: the payment), the owner told. */
    const nextPeriod = (row: Locked, started: { readonly paymentId: string }) =>
      Effect.gen(function*() {
        const event = yield* planEvents.emit({
          reason: "activated",
          userId: row.user_id,
          subscriptionId: row.id,
          paymentId: started.paymentId,
          previousPlanId: row.plan_id
        })
        yield* notifications.notify(row.user_id, "subscription.next_period_started", {
          subscription_id: row.id,
          plan_slug: event.plan.slug,
          current_period_end: event.subscription?.current_period_end ?? row.current_period_end
        })
        return "next_period" as const
      })

    /** Active subscriptions whose period has ended. */
    const endPeriods = (now: Date) =>
      Effect.gen(function*() {
        const due = yield* sql`SELECT id::text AS id FROM subscriptions WHERE status = 'active' AND current_period_end <= ${now}
          ORDER BY current_period_end LIMIT ${BATCH}`.pipe(Effect.flatMap(decodeIds))
        return yield* each(due, "end of period", (id) =>
          Effect.gen(function*() {
            const row = yield* lock(id, sql.and([sql`status = 'active'`, sql`current_period_end <= ${now}`]))
            if (row === undefined) return undefined
            const started = yield* subscriptions.startNextPeriod(row.id)
            if (started !== undefined) return yield* nextPeriod(row, started)
            if (row.cancel_at_period_end) return yield* move(row, "canceled", row.plan_id, "subscription.expired", {})
            const graceUntil = new Date(row.current_period_end.getTime() + ms(config.grace)).toISOString()
            return yield* move(row, "past_due", row.next_plan_id ?? row.plan_id, "subscription.past_due", { grace_until: graceUntil })
          }))
      })

    /** Past-due subscriptions their owner canceled, or whose grace period is over. */
    const closePastDue = (now: Date) =>
      Effect.gen(function*() {
        const graceStart = new Date(now.getTime() - ms(config.grace))
        const lapsing = sql.and([sql`status = 'past_due'`, sql`(cancel_at_period_end OR current_period_end <= ${graceStart})`])
        const due = yield* sql`SELECT id::text AS id FROM subscriptions WHERE ${lapsing} ORDER BY current_period_end LIMIT ${BATCH}`.pipe(
          Effect.flatMap(decodeIds)
        )
        return yield* each(due, "closing a past_due subscription", (id) =>
          Effect.gen(function*() {
            const row = yield* lock(id, lapsing)
            if (row === undefined) return undefined
            return yield* move(row, row.cancel_at_period_end ? "canceled" : "expired", row.plan_id, "subscription.expired", {})
          }))
      })

    /** One notice per period (marked by the period end it was sent for) for subscriptions that will renew. */
    const noticeRenewals = (now: Date) =>
      Effect.gen(function*() {
        const horizon = new Date(now.getTime() + ms(config.renewalNotice))
        const upcoming = sql.and([
          sql`status = 'active'`,
          sql`NOT cancel_at_period_end`,
          sql`current_period_end > ${now}`,
          sql`NOT EXISTS (SELECT 1 FROM subscription_grants g WHERE g.subscription_id = s.id AND g.deferred AND g.revoked_at IS NULL
            AND g.prorated_by IS NULL)`,
          sql`current_period_end <= ${horizon}`,
          sql`renewal_notified_for IS DISTINCT FROM current_period_end`
        ])
        const due = yield* sql`SELECT id::text AS id FROM subscriptions s WHERE ${upcoming} ORDER BY current_period_end LIMIT ${BATCH}`.pipe(
          Effect.flatMap(decodeIds)
        )
        return yield* each(due, "renewal notice", (id) =>
          Effect.gen(function*() {
            const [row] = yield* sql`UPDATE subscriptions s SET renewal_notified_for = current_period_end
              WHERE s.id = ${id} AND ${upcoming}
              RETURNING s.user_id, s.current_period_end,
                (SELECT slug FROM plans WHERE id = coalesce(s.next_plan_id, s.plan_id)) AS plan_slug`.pipe(Effect.flatMap(decodeNotice))
            if (row === undefined) return undefined
            yield* notifications.notify(row.user_id, "subscription.renewal_due", {
              subscription_id: id,
              plan_slug: row.plan_slug,
              current_period_end: row.current_period_end.toISOString()
            })
            return "notified" as const
          }))
      })

    /** Checkouts pending past their deadline + grace with no transaction seen: abandoned. */
    const expireCheckouts = (now: Date) =>
      Effect.gen(function*() {
        const cutoff = new Date(now.getTime() - ms(config.pendingTtlGrace))
        const stale = sql.and([sql`status = 'pending'`, sql`tx_hash IS NULL`, sql`expires_at <= ${cutoff}`])
        const due = yield* sql`SELECT id::text AS id FROM payment_transactions WHERE ${stale} ORDER BY expires_at LIMIT ${BATCH}`.pipe(
          Effect.flatMap(decodeIds)
        )
        return yield* each(due, "checkout expiry", (id) =>
          Effect.gen(function*() {
            const [row] = yield* sql`SELECT id::text AS id FROM payment_transactions WHERE id = ${id} AND ${stale} FOR UPDATE`.pipe(
              Effect.flatMap(decodeIds)
            )
            if (row === undefined) return undefined
            yield* payments.transition({ paymentId: id, from: "pending", to: "expired", actor: serviceActor("scheduler") })
            return "expired" as const
          }))
      })

    const count = <A>(results: ReadonlyArray<A>, value: A) => results.filter((r) => r === value).length

    /** One pass over everything that is due at the `Clock`'s now. */
    const pass = Effect.gen(function*() {
      const now = new Date(yield* Clock.currentTimeMillis)
      const ended = yield* endPeriods(now)
      const closed = yield* closePastDue(now)
      const notices = yield* noticeRenewals(now)
      const checkouts = yield* expireCheckouts(now)
      return {
        nextPeriods: count(ended, "next_period"),
        pastDue: count(ended, "past_due"),
        canceled: count(ended, "canceled") + count(closed, "canceled"),
        expired: count(closed, "expired"),
        renewalDue: count(notices, "notified"),
        checkoutsExpired: count(checkouts, "expired")
      } satisfies SchedulerReport
    }).pipe(Effect.orDie, Effect.withSpan("Scheduler.pass"))

    /** Passes every `BILLING_SCHEDULER_EVERY`, the first at once; a failed pass is logged and the next one runs. */
    const loop = pass.pipe(
      Effect.tap((r) =>
        Object.values(r).some((n) => n > 0) ? Effect.logInfo("scheduler pass", r) : Effect.void
      ),
      Effect.catchAllCause((cause) => Effect.logWarning("scheduler pass failed", cause)),
      Effect.repeat(Schedule.spaced(config.every)),
      Effect.zipRight(Effect.never)
    )

    return { pass, loop } as const
  }),
  dependencies: [PlanEvents.Default, Notifications.Default, Payments.Default, Subscriptions.Default]
}) {}

/** The scheduler runs on the leader only (a PostgreSQL advisory lock): one pass at a time across instances. */
export const SchedulerLive = Layer.scopedDiscard(Effect.gen(function*() {
  const leases = yield* Leases
  const scheduler = yield* Scheduler
  yield* Effect.forkScoped(leases.whileLeader("scheduler", scheduler.loop))
})).pipe(Layer.provide([Leases.Default, Scheduler.Default]))
