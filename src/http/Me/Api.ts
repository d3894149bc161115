import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { HistoryItem } from "../../domain/Checkout.ts"
import { BadRequest } from "../../domain/Errors.ts"
import { PaymentStatus } from "../../domain/Payment.ts"
import { Authentication } from "../Auth.ts"

export const SubscriptionView = Schema.Struct({
  plan_slug: Schema.String,
  status: Schema.String,
  current_period_start: Schema.String,
  current_period_end: Schema.String,
  cancel_at_period_end: Schema.Boolean
})

export const Summary = Schema.Struct({
  user_id: Schema.String,
  wallet: Schema.NullOr(Schema.String),
  subscription: Schema.NullOr(SubscriptionView),
  debt: Schema.Array(Schema.Struct({ network: Schema.String, token: Schema.String, amount: Schema.String })),
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
  .middleware(Authentication)
{}
