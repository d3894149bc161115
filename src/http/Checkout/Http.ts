import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Schema } from "effect"
import { Checkout } from "../../../services/Checkout.ts"
import { BadRequest, Conflict, NotFound } from "../../domain/Errors.ts"
import { Api } from "../Api.ts"
import { CurrentUser } from "../Auth.ts"
import { CheckoutCreated, CheckoutReplayed } from "./Api.ts"

const encodeReplay = Schema.encodeSync(CheckoutReplayed)

export const CheckoutLive = HttpApiBuilder.group(Api, "checkout", (handlers) =>
  Effect.gen(function*() {
    const checkout = yield* Checkout
    return handlers.handle("checkout", ({ headers, payload }) =>
      Effect.gen(function*() {
        const user = yield* CurrentUser
        const result = yield* checkout.create(user.id, payload, headers["idempotency-key"])
        // Both statuses share one body shape, which the encoder cannot tell apart: the replay is answered directly.
        return result.created
          ? new CheckoutCreated(result.checkout)
          : HttpServerResponse.unsafeJson(encodeReplay(new CheckoutReplayed(result.checkout)), { status: 200 })
      }).pipe(
        Effect.catchTags({
          PlanNotFound: (e) => Effect.fail(new NotFound({ error: "plan_not_found", message: `plan ${e.slug} does not exist or is not active` })),
          CheckoutRejected: (e) =>
            Effect.fail(
              e.reason === "network_not_offered"
                ? new BadRequest({ error: e.reason, message: e.message })
                : new Conflict({ error: e.reason, message: e.message })
            )
        })
      ))
  })).pipe(Layer.provide(Checkout.Default))
