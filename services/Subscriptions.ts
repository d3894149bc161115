import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import type { Interval } from "../src/domain/Plan.ts"

const step = (interval: Interval) => (interval === "year" ? "1 year" : "1 month")

/** Subscription periods; runs inside the caller's SQL transaction. */
export class Subscriptions extends Effect.Service<Subscriptions>()("billing/Subscriptions", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /**
     * A paid period: the same plan extends from its current end (or from now when that has passed);
     * another plan paid now replaces the current one from now. PostgreSQL's interval arithmetic
     * clamps month ends (Jan 31 + 1 month = Feb 28/29).
     */
    const applyPayment = Effect.fn("Subscriptions.applyPayment")(function*(p: {
      readonly userId: string
      readonly planId: number
      readonly interval: Interval
      readonly paymentId: string
    }) {
      const period = step(p.interval)
      const [current] = yield* sql<{ id: string; plan_id: string }>`SELECT id::text AS id, plan_id::text AS plan_id
        FROM subscriptions WHERE user_id = ${p.userId} AND status IN ('active', 'past_due') FOR UPDATE`
      if (current !== undefined && Number(current.plan_id) === p.planId) {
        yield* sql`UPDATE subscriptions SET status = 'active',
            current_period_end = greatest(current_period_end, now()) + ${period}::interval,
            current_period_start = CASE WHEN current_period_end < now() THEN now() ELSE current_period_start END,
            cancel_at_period_end = false, last_payment_id = ${p.paymentId}, updated_at = now()
          WHERE id = ${current.id}`
        return current.id
      }
      if (current !== undefined) {
        yield* sql`UPDATE subscriptions SET status = 'canceled', current_period_end = greatest(now(), current_period_start + interval '1 second'),
            updated_at = now() WHERE id = ${current.id}`
      }
      const id = randomUUID()
      yield* sql`INSERT INTO subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end, last_payment_id)
        VALUES (${id}, ${p.userId}, ${p.planId}, 'active', now(), now() + ${period}::interval, ${p.paymentId})`
      return id
    })

    /** A burned pass: the subscription runs to its period end, then ends. */
    const cancelAtPeriodEnd = Effect.fn("Subscriptions.cancelAtPeriodEnd")(function*(paymentId: string) {
      const rows = yield* sql`UPDATE subscriptions SET cancel_at_period_end = true, updated_at = now()
        WHERE last_payment_id = ${paymentId} AND status IN ('active', 'past_due') RETURNING id`
      return rows.length > 0
    })

    /**
     * A payment that was reversed takes its period back: the subscription it paid is shortened by one interval,
     * and ends now when that leaves nothing.
     */
    const revokePayment = Effect.fn("Subscriptions.revokePayment")(function*(paymentId: string, interval: Interval) {
      const period = step(interval)
      const rows = yield* sql`UPDATE subscriptions SET
          status = CASE WHEN current_period_end - ${period}::interval <= now() THEN 'expired' ELSE status END,
          current_period_end = CASE WHEN current_period_end - ${period}::interval <= now()
            THEN greatest(now(), current_period_start + interval '1 second')
            ELSE current_period_end - ${period}::interval END,
          updated_at = now()
        WHERE last_payment_id = ${paymentId} AND status IN ('active', 'past_due', 'canceled') RETURNING status`
      return rows.length > 0
    })

    return { applyPayment, cancelAtPeriodEnd, revokePayment } as const
  })
}) {}
