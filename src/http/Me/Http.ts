import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { UserBundle } from "../../../services/UserBundle.ts"
import { BadRequest } from "../../domain/Errors.ts"
import { Api } from "../Api.ts"
import { CurrentUser } from "../Auth.ts"

export const MeLive = HttpApiBuilder.group(Api, "me", (handlers) =>
  Effect.gen(function*() {
    const bundle = yield* UserBundle
    return handlers
      .handle("summary", () => Effect.flatMap(CurrentUser, (user) => bundle.summary(user.id)))
      .handle("history", ({ urlParams }) =>
        Effect.flatMap(CurrentUser, (user) => bundle.history(user.id, urlParams.cursor, urlParams.limit)).pipe(
          Effect.catchTags({ BadCursor: () => Effect.fail(new BadRequest({ error: "invalid_cursor", message: "cursor is not valid" })) })
        ))
  })).pipe(Layer.provide(UserBundle.Default))
