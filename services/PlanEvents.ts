import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Outbox } from "./Outbox.ts"

export type PlanChangeReason = "activated" | "renewed" | "past_due" | "canceled" | "expired" | "reversed" | "payment_failed"

export interface PlanChange {
  readonly reason: PlanChangeReason
  readonly userId: string
  readonly subscriptionId: string | null
  readonly paymentId: string | null
  readonly previousPlanId: number | null
}

/**
 * `billing.plan.changed.v1`, written to the outbox in the caller's SQL transaction (Quota consumes it).
 * The payload is read from the database inside that transaction, so it shows the state being committed.
 */
export class PlanEvents extends Effect.Service<PlanEvents>()("billing/PlanEvents", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox
    const emit = Effect.fn("PlanEvents.emit")(function*(change: PlanChange) {
      yield* outbox.enqueue("plan.changed.v1", {
        reason: change.reason,
        user_id: change.userId,
        subscription_id: change.subscriptionId,
        payment_id: change.paymentId,
        previous_plan_id: change.previousPlanId
      })
      void sql
    })
    return { emit } as const
  }),
  dependencies: [Outbox.Default]
}) {}
