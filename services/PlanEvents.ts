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

    /** A referenced row that is missing is a bug of the caller (the ids come from its transaction): a defect. */
    const one = <A, I>(schema: Schema.Schema<A, I>, what: string) => (rows: ReadonlyArray<unknown>) =>
      rows[0] === undefined ? Effect.dieMessage(`plan.changed: ${what} not found`) : decodeRow(schema)(rows[0])

    const plan = (id: number) =>
      sql`SELECT slug, interval, monthly_limits, features FROM plans WHERE id = ${id}`.pipe(
        Effect.flatMap(one(PlanRow, `plan ${id}`))
      )
    const subscription = (id: string) =>
      sql`SELECT id::text AS id, plan_id::text AS plan_id, status, current_period_start, current_period_end, cancel_at_period_end
        FROM subscriptions WHERE id = ${id}`.pipe(Effect.flatMap(one(SubscriptionRow, `subscription ${id}`)))
    const payment = (id: string) =>
      sql`SELECT id::text AS id, order_id, plan_id::text AS plan_id, status, failure_reason, network, token,
          amount::text AS amount, tx_hash
        FROM payment_transactions WHERE id = ${id}`.pipe(Effect.flatMap(one(PaymentRow, `payment ${id}`)))

    const emit = Effect.fn("PlanEvents.emit")(function*(change: PlanChange) {
      const sub = change.subscriptionId === null ? null : yield* subscription(change.subscriptionId)
      const tx = change.paymentId === null ? null : yield* payment(change.paymentId)
      const planId = sub?.plan_id ?? tx?.plan_id
      if (planId === undefined) return yield* Effect.dieMessage(`plan.changed ${change.reason}: neither a subscription nor a payment`)
      // Clock, as Subscriptions computes periods with it (TestClock drives both in tests)
      const now = new Date(yield* Clock.currentTimeMillis)
      const event: PlanChanged = {
        event_id: randomUUID(),
        type: PlanChangedType,
        occurred_at: now,
        reason: change.reason,
        user: { id: change.userId },
        plan: yield* plan(planId),
        subscription: sub === null ? null : {
          id: sub.id,
          status: sub.status,
          current_period_start: sub.current_period_start,
          current_period_end: sub.current_period_end,
          cancel_at_period_end: sub.cancel_at_period_end
        },
        previous_plan: change.previousPlanId === null ? null : yield* plan(change.previousPlanId),
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
