import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { CheckoutRequest, CheckoutView } from "../../domain/Checkout.ts"
import { BadRequest, Conflict, NotFound } from "../../domain/Errors.ts"
import { Authentication } from "../Auth.ts"

/** 201: a new checkout. */
export class CheckoutCreated extends Schema.Class<CheckoutCreated>("CheckoutCreated")(CheckoutView.fields) {}
/** 200: the same checkout again (same Idempotency-Key, or the same user and plan while pending). */
export class CheckoutReplayed extends Schema.Class<CheckoutReplayed>("CheckoutReplayed")(CheckoutView.fields) {}

export class CheckoutApi extends HttpApiGroup.make("checkout")
  .add(
    HttpApiEndpoint.post("checkout", "/v1/billing/checkout")
      .setPayload(CheckoutRequest)
      .setHeaders(Schema.Struct({
        "idempotency-key": Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255)))
      }))
      .addSuccess(CheckoutCreated, { status: 201 })
      .addSuccess(CheckoutReplayed, { status: 200 })
      .addError(BadRequest)
      .addError(NotFound)
      .addError(Conflict)
      .annotate(OpenApi.Description, "Issue a pending payment with a signed quote and the wallet transactions to send.")
  )
  .middleware(Authentication)
{}
