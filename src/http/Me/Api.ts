import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { HistoryItem } from "../../domain/Checkout.ts"
import { BadRequest, NotFound } from "../../domain/Errors.ts"
import { PaymentStatus } from "../../domain/Payment.ts"
import { PlanChangeRequest, SubscriptionView } from "../../domain/Subscription.ts"
import { Authentication } from "../Auth.ts"

export { SubscriptionView }

/** The unpaid period of a past_due subscription: the price of its plan (or the plan it moves to). */
export const Debt = Schema.Struct({
  plan_slug: Schema.String,
  network: Schema.String,
  token: Schema.String,
  amount: Schema.String,
  /** Start of the unpaid period (the end of the last paid one). */
  due_since: Schema.String
})

export const Summary = Schema.Struct({
  user_id: Schema.String,
  wallet: Schema.NullOr(Schema.String),
  subscription: Schema.NullOr(SubscriptionView),
  debt: Schema.Array(Debt),
  /** Customer credit held for the user per network and token (base units); a checkout can spend it (`apply_credit`). */
  credit: Schema.Array(Schema.Struct({ network: Schema.String, token: Schema.String, amount: Schema.String })),
  last_payment: Schema.NullOr(Schema.Struct({
    transaction_id: Schema.String,
    status: PaymentStatus,
    failure_reason: Schema.NullOr(Schema.String),
    created_at: Schema.String
  }))
})
export type Summary = typeof Summary.Type

export const HistoryPage = Schema.Struct({ items: Schema.Array(HistoryItem), next_cursor: Schema.NullOr(Schema.String) })
export type HistoryPage = typeof HistoryPage.Type

export const HistoryParams = Schema.Struct({
  cursor: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100)))
})

export class MeApi extends HttpApiGroup.make("me")
  .add(HttpApiEndpoint.get("summary", "/v1/billing/me/summary").addSuccess(Summary))
  .add(HttpApiEndpoint.get("history", "/v1/billing/me/history").setUrlParams(HistoryParams).addSuccess(HistoryPage).addError(BadRequest))
  .add(
    HttpApiEndpoint.post("cancel", "/v1/billing/me/subscription/cancel")
      .addSuccess(SubscriptionView)
      .addError(NotFound)
      .annotate(
        OpenApi.Description,
        "Cancel at the period end: the subscription stays usable until then and ends (canceled) at the end; idempotent."
      )
  )
  .add(
    HttpApiEndpoint.post("change", "/v1/billing/me/subscription/change")
      .setPayload(PlanChangeRequest)
      .addSuccess(SubscriptionView)
      .addError(BadRequest)
      .addError(NotFound)
      .annotate(
        OpenApi.Description,
        "Schedule an upgrade or downgrade for the next period (paying for another plan at checkout switches at once). " +
          "The current plan's slug drops a scheduled change; choosing a plan also drops a scheduled cancel."
      )
  )
  .middleware(Authentication)
{}
