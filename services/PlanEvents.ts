import { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { FailureReason, PaymentStatus } from "../src/domain/Payment.ts"
import { Interval } from "../src/domain/Plan.ts"
import { PlanChanged, type PlanChangeReason, PlanChangedType, PlanRef } from "../src/domain/PlanChanged.ts"
import { SubscriptionStatus } from "../src/domain/Subscription.ts"
import { Outbox } from "./Outbox.ts"
import { decodeRow } from "./Rows.ts"
import { PlanChangedEvents } from "./StreamCodecs.ts"

export type { PlanChangeReason } from "../src/domain/PlanChanged.ts"

export interface PlanChange {
  readonly reason: PlanChangeReason
  readonly userId: string
  readonly subscriptionId: string | null
  readonly paymentId: string | null
  readonly previousPlanId: number | null
}

const PlanRow = Schema.Struct({
  slug: Schema.String,
  interval: Interval,
  monthly_limits: PlanRef.fields.monthly_limits,
  features: PlanRef.fields.features
})
const SubscriptionRow = Schema.Struct({
  id: Schema.String,
  plan_id: Schema.NumberFromString,
  status: SubscriptionStatus,
  current_period_start: Schema.DateFromSelf,
  current_period_end: Schema.DateFromSelf,
  cancel_at_period_end: Schema.Boolean
})
const PaymentRow = Schema.Struct({
  id: Schema.String,
  order_id: Schema.String,
  plan_id: Schema.NumberFromString,
  status: PaymentStatus,
  failure_reason: Schema.NullOr(FailureReason),
  network: Schema.String,
  token: Schema.String,
  amount: Schema.BigInt,
  tx_hash: Schema.NullOr(Schema.String)
})


/**
 * `billing.plan.changed.v1`, written to the outbox in the caller's SQL transaction (Quota consumes it).
 * The payload is read from the database inside that transaction, so it shows the state being committed;
 * the event is returned as well (callers use it for notifications).
 */
export class PlanEvents extends Effect.Service<PlanEvents>()("billing/PlanEvents", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox

    /**
     * The row's columns named `<prefix>...`, decoded; none asked for (`what` null) is null. A referenced row that is
     * missing is a bug of the caller (the ids come from its transaction): a defect.
     */
    const part = <A, I>(schema: Schema.Schema<A, I>, row: Record<string, unknown>, prefix: string, what: string | null) => {
      if (what === null) return Effect.succeed(null)
      const fields = Object.fromEntries(Object.entries(row).flatMap(([k, v]) => k.startsWith(prefix) ? [[k.slice(prefix.length), v]] : []))
      return fields["id"] === null ? Effect.dieMessage(`plan.changed: ${what} not found`) : decodeRow(schema)(fields)
    }

    /** Everything the event shows, read in one statement. */
    const state = (change: PlanChange) =>
      Effect.gen(function*() {
        const [row] = yield* sql<Record<string, unknown>>`SELECT
            s.id::text AS s_id, s.plan_id::text AS s_plan_id, s.status AS s_status, s.current_period_start AS s_current_period_start,
            s.current_period_end AS s_current_period_end, s.cancel_at_period_end AS s_cancel_at_period_end,
            t.id::text AS t_id, t.order_id AS t_order_id, t.plan_id::text AS t_plan_id, t.status AS t_status,
            t.failure_reason AS t_failure_reason, t.network AS t_network, t.token AS t_token, t.amount::text AS t_amount, t.tx_hash AS t_tx_hash,
            p.id AS p_id, p.slug AS p_slug, p.interval AS p_interval, p.monthly_limits AS p_monthly_limits, p.features AS p_features,
            q.id AS q_id, q.slug AS q_slug, q.interval AS q_interval, q.monthly_limits AS q_monthly_limits, q.features AS q_features
          FROM (SELECT 1) AS one
          LEFT JOIN subscriptions s ON s.id = ${change.subscriptionId}
          LEFT JOIN payment_transactions t ON t.id = ${change.paymentId}
          LEFT JOIN plans p ON p.id = coalesce(s.plan_id, t.plan_id)
          LEFT JOIN plans q ON q.id = ${change.previousPlanId}`
        const sub = yield* part(SubscriptionRow, row!, "s_", change.subscriptionId === null ? null : `subscription ${change.subscriptionId}`)
        const tx = yield* part(PaymentRow, row!, "t_", change.paymentId === null ? null : `payment ${change.paymentId}`)
        const planId = sub?.plan_id ?? tx?.plan_id
        if (planId === undefined) return yield* Effect.dieMessage(`plan.changed ${change.reason}: neither a subscription nor a payment`)
        const plan = yield* part(PlanRow, row!, "p_", `plan ${planId}`)
        const previous = yield* part(PlanRow, row!, "q_", change.previousPlanId === null ? null : `plan ${change.previousPlanId}`)
        return { sub, tx, plan: plan!, previous }
      })

    const emit = Effect.fn("PlanEvents.emit")(function*(change: PlanChange) {
      const { sub, tx, plan, previous } = yield* state(change)
      // Clock, as Subscriptions computes periods with it (TestClock drives both in tests)
      const now = new Date(yield* Clock.currentTimeMillis)
      const event: PlanChanged = {
        event_id: randomUUID(),
        type: PlanChangedType,
        occurred_at: now,
        reason: change.reason,
        user: { id: change.userId },
        plan,
        subscription: sub === null ? null : {
          id: sub.id,
          status: sub.status,
          current_period_start: sub.current_period_start,
          current_period_end: sub.current_period_end,
          cancel_at_period_end: sub.cancel_at_period_end
        },
        previous_plan: previous,
        transaction: tx === null ? null : {
          id: tx.id,
          order_id: tx.order_id,
          status: tx.status,
          failure_reason: tx.failure_reason,
          network: tx.network,
          token: tx.token,
          amount: tx.amount,
          tx_hash: tx.tx_hash
        }
      }
      yield* outbox.add(PlanChangedEvents, event)
      yield* Effect.annotateCurrentSpan({ reason: change.reason, user_id: change.userId })
      return event
    })
    return { emit } as const
  }),
  dependencies: [Outbox.Default]
}) {}
