import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { RetryPolicyStore } from "../../../services/RetryPolicyStore.ts"
import { currentActor } from "../Admin/Http.ts"
import { Api } from "../Api.ts"
import * as E from "../Errors.ts"

const unavailable = E.Unavailable("retry policies", "not_ready")

export const AdminRetryPoliciesLive = HttpApiBuilder.group(Api, "adminRetryPolicies", (handlers) =>
  Effect.gen(function*() {
    const store = yield* RetryPolicyStore
    return handlers
      .handle("list", () => store.list.pipe(Effect.map((items) => ({ items })), Effect.catchTag("SqlError", unavailable)))
      .handle("get", ({ path }) => store.get(path.name).pipe(Effect.catchTag("SqlError", unavailable)))
      .handle("set", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => store.set(path.name, payload, actor)).pipe(Effect.catchTag("SqlError", unavailable)))
  })).pipe(Layer.provide(RetryPolicyStore.Default))
