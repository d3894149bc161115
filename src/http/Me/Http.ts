import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { Subscriptions } from "../../../services/Subscriptions.ts"
import { UserBundle } from "../../../services/UserBundle.ts"
import { BadRequest, NotFound } from "../../domain/Errors.ts"
import { Api } from "../Api.ts"
import * as E from "../Errors.ts"
import { CurrentUser } from "../Auth.ts"

export const MeLive = HttpApiBuilder.group(Api, "me", (handlers) =>
  Effect.gen(function*() {
    const bundle = yield* UserBundle
    const subscriptions = yield* Subscriptions
    const noSubscription = () => Effect.fail(new NotFound({ error: "not_found", message: "there is no current subscription" }))
    return handlers
      .handle("summary", () => Effect.flatMap(CurrentUser, (user) => bundle.summary(user.id)))
      .handle("history", ({ urlParams }) =>
        Effect.flatMap(CurrentUser, (user) => bundle.history(user.id, urlParams.cursor, urlParams.limit)).pipe(
          Effect.catchTags({ BadCursor: E.BadCursor })
        ))
      .handle("cancel", () =>
        Effect.flatMap(CurrentUser, (user) => subscriptions.cancel(user.id)).pipe(
          Effect.catchTags({ NoCurrentSubscription: noSubscription })
        ))
      .handle("change", ({ payload }) =>
        Effect.flatMap(CurrentUser, (user) => subscriptions.changePlan(user.id, payload.plan_slug)).pipe(
          Effect.catchTags({
            NoCurrentSubscription: noSubscription,
            PlanUnavailable: () =>
              Effect.fail(new BadRequest({ error: "invalid_plan", message: "plan_slug does not name an active plan" })),
            NextPeriodPaid: () =>
              Effect.fail(new BadRequest({ error: "invalid_plan", message: "the next period is already paid for; it starts at the period end" }))
          })
        ))
  })).pipe(Layer.provide([UserBundle.Default, Subscriptions.Default]))
