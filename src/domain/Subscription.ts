import { Data, Schema } from "effect"
import { Slug } from "./Ids.ts"

/** `active` and `past_due` are current (at most one per user); `canceled` and `expired` are final. */
export const SubscriptionStatus = Schema.Literal("active", "past_due", "canceled", "expired")
export type SubscriptionStatus = typeof SubscriptionStatus.Type

/** The only moves a subscription may make (migration 011 enforces the same table); an ended one may still be expired by a reversal. */
const allowed: Record<SubscriptionStatus, ReadonlyArray<SubscriptionStatus>> = {
  active: ["past_due", "canceled", "expired"],
  past_due: ["active", "canceled", "expired"],
  canceled: ["expired"],
  expired: []
}

export const canTransitionSubscription = (from: SubscriptionStatus, to: SubscriptionStatus): boolean =>
  from === to || allowed[from].includes(to)

export const subscriptionTransitions: ReadonlyArray<readonly [SubscriptionStatus, SubscriptionStatus]> = Object.entries(allowed)
  .flatMap(([from, tos]) => tos.map((to) => [from as SubscriptionStatus, to] as const))

export const SubscriptionView = Schema.Struct({
  plan_slug: Schema.String,
  status: SubscriptionStatus,
  current_period_start: Schema.String,
  current_period_end: Schema.String,
  cancel_at_period_end: Schema.Boolean,
  /** The plan the subscription moves to at the period end (a scheduled upgrade or downgrade), if any. */
  next_plan_slug: Schema.NullOr(Schema.String)
})
export type SubscriptionView = typeof SubscriptionView.Type

export const PlanChangeRequest = Schema.Struct({ plan_slug: Slug })
export type PlanChangeRequest = typeof PlanChangeRequest.Type

export class NoCurrentSubscription extends Data.TaggedError("NoCurrentSubscription")<{ readonly userId: string }> {}

export class PlanUnavailable extends Data.TaggedError("PlanUnavailable")<{ readonly slug: string }> {}

/** A move the transition table forbids, or from a status the row no longer has. */
export class IllegalSubscriptionTransition extends Data.TaggedError("IllegalSubscriptionTransition")<{
  readonly subscriptionId: string
  readonly from: SubscriptionStatus
  readonly to: SubscriptionStatus
}> {}
