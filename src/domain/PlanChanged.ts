/**
 * `billing.plan.changed.v1`: what Quota (and anyone else downstream) hears when a user's plan changes.
 * The wire form (snake_case JSON, amounts as decimal strings, ISO 8601 times) is documented as JSON Schema
 * draft 2020-12 in `docs/events/billing.plan.changed.v1.schema.json`; a test validates emitted events against it.
 */
import { Schema } from "effect"
import { Amount } from "./Money.ts"
import { FailureReason, PaymentStatus } from "./Payment.ts"
import { Interval } from "./Plan.ts"
import { SubscriptionStatus } from "./Subscription.ts"

export const PlanChangedType = "billing.plan.changed.v1" as const

export const PlanChangeReason = Schema.Literal(
  "activated",
  "renewed",
  "past_due",
  "canceled",
  "expired",
  "reversed",
  "payment_failed"
)
export type PlanChangeReason = typeof PlanChangeReason.Type

export const PlanRef = Schema.Struct({
  slug: Schema.String,
  interval: Interval,
  monthly_limits: Schema.Record({ key: Schema.String, value: Schema.Number }),
  features: Schema.Array(Schema.String)
})
export type PlanRef = typeof PlanRef.Type

export const SubscriptionRef = Schema.Struct({
  id: Schema.UUID,
  status: SubscriptionStatus,
  current_period_start: Schema.Date,
  current_period_end: Schema.Date,
  cancel_at_period_end: Schema.Boolean
})
export type SubscriptionRef = typeof SubscriptionRef.Type

export const TransactionRef = Schema.Struct({
  id: Schema.UUID,
  order_id: Schema.String,
  status: PaymentStatus,
  failure_reason: Schema.NullOr(FailureReason),
  network: Schema.String,
  token: Schema.String,
  amount: Amount,
  tx_hash: Schema.NullOr(Schema.String)
})
export type TransactionRef = typeof TransactionRef.Type

/**
 * - `plan`: the plan the change is about: the subscription's plan, or for `payment_failed` (and a reversal that
 *   left no subscription) the plan the transaction paid for.
 * - `subscription`: the subscription after the change; for `payment_failed` the user's current subscription, which
 *   the failure leaves as it was; null when the user has none.
 * - `previous_plan`: the plan the user had before, when the change replaced it; otherwise null.
 * - `transaction`: the payment that caused the change, or null (scheduler transitions, cancellation).
 */
export const PlanChanged = Schema.Struct({
  event_id: Schema.UUID,
  type: Schema.Literal(PlanChangedType),
  occurred_at: Schema.Date,
  reason: PlanChangeReason,
  user: Schema.Struct({ id: Schema.String }),
  plan: PlanRef,
  subscription: Schema.NullOr(SubscriptionRef),
  previous_plan: Schema.NullOr(PlanRef),
  transaction: Schema.NullOr(TransactionRef)
}).annotations({ identifier: "PlanChanged" })
export type PlanChanged = typeof PlanChanged.Type
export type PlanChangedJson = typeof PlanChanged.Encoded
