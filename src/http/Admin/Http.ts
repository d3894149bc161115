import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer } from "effect"
import { Contracts } from "../../../services/Contracts.ts"
import { Gateways } from "../../../services/Gateways.ts"
import { Plans, toPlanView } from "../../../services/Plans.ts"
import { WebhookDirectory } from "../../../services/WebhookDirectory.ts"
import { WebhookSecrets } from "../../../services/WebhookSecrets.ts"
import { Api } from "../Api.ts"
import { CurrentUser } from "../Auth.ts"
import * as E from "../Errors.ts"

/** Who acts, for the audit trail: the bearer's user id and the request's id (src/http/RequestId.ts). */
export const currentActor = Effect.gen(function*() {
  const user = yield* CurrentUser
  const request = yield* HttpServerRequest.HttpServerRequest
  return { id: user.id, requestId: request.headers["x-request-id"] }
})

/** Contract writes seal a given webhook secret first, and tell the webhook directory once committed. */
export const AdminContractsLive = HttpApiBuilder.group(Api, "adminContracts", (handlers) =>
  Effect.gen(function*() {
    const contracts = yield* Contracts
    const secrets = yield* WebhookSecrets
    const directory = yield* WebhookDirectory
    return handlers
      .handle("list", () => Effect.map(contracts.list, (items) => ({ items })))
      .handle("get", ({ path }) => contracts.view(path.slug).pipe(Effect.catchTags({ ContractNotFound: E.ContractNotFound })))
      .handle("create", ({ payload: { webhook_secret, ...contract } }) =>
        Effect.gen(function*() {
          const sealed = webhook_secret == null ? undefined : yield* secrets.seal(contract.slug, webhook_secret)
          return yield* contracts.create(contract, yield* currentActor, sealed)
        }).pipe(Effect.tap(() => directory.changed), Effect.catchTags({ ContractExists: E.ContractExists })))
      .handle("update", ({ path, payload: { webhook_secret, ...patch } }) =>
        Effect.gen(function*() {
          const sealed = webhook_secret == null ? webhook_secret : yield* secrets.seal(path.slug, webhook_secret)
          return yield* contracts.update(path.slug, patch, yield* currentActor, sealed)
        }).pipe(
          Effect.tap(() => directory.changed),
          Effect.catchTags({ ContractExists: E.ContractExists, ContractNotFound: E.ContractNotFound })
        ))
      .handle("remove", ({ path }) =>
        Effect.flatMap(currentActor, (actor) => contracts.remove(path.slug, actor)).pipe(
          Effect.tap(() => directory.changed),
          Effect.as({ deleted: true as const, soft: false }),
          Effect.catchTags({ ContractNotFound: E.ContractNotFound, ContractInUse: E.ContractInUse })
        ))
  })).pipe(Layer.provide([Contracts.Default, WebhookSecrets.Default, WebhookDirectory.Default]))

export const AdminPlansLive = HttpApiBuilder.group(Api, "adminPlans", (handlers) =>
  Effect.gen(function*() {
    const plans = yield* Plans
    return handlers
      .handle("list", () => Effect.map(plans.list, (items) => ({ items: items.map(toPlanView) })))
      .handle("get", ({ path }) =>
        plans.get(path.slug).pipe(Effect.map(toPlanView), Effect.catchTags({ PlanNotFound: E.PlanNotFound })))
      .handle("create", ({ payload }) =>
        Effect.flatMap(currentActor, (actor) => plans.create(payload, actor)).pipe(
          Effect.catchTags({ PlanExists: E.PlanExists, PlanInvalid: E.PlanInvalid })
        ))
      .handle("update", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => plans.update(path.slug, payload, actor)).pipe(
          Effect.catchTags({ PlanNotFound: E.PlanNotFound, PlanInvalid: E.PlanInvalid })
        ))
      .handle("remove", ({ path }) =>
        Effect.flatMap(currentActor, (actor) => plans.remove(path.slug, actor)).pipe(
          Effect.catchTags({ PlanNotFound: E.PlanNotFound })
        ))
  })).pipe(Layer.provide(Plans.Default))

export const AdminGatewaysLive = HttpApiBuilder.group(Api, "adminGateways", (handlers) =>
  Effect.gen(function*() {
    const gateways = yield* Gateways
    return handlers
      .handle("list", () => Effect.map(gateways.list, (items) => ({ items })))
      .handle("get", ({ path }) => gateways.get(path.slug).pipe(Effect.catchTags({ GatewayNotFound: E.GatewayNotFound })))
      .handle("create", ({ payload }) =>
        Effect.flatMap(currentActor, (actor) => gateways.create(payload, actor)).pipe(
          Effect.catchTags({ GatewayExists: E.GatewayExists })
        ))
      .handle("update", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => gateways.update(path.slug, payload, actor)).pipe(
          Effect.catchTags({ GatewayNotFound: E.GatewayNotFound })
        ))
      .handle("remove", ({ path }) =>
        Effect.flatMap(currentActor, (actor) => gateways.remove(path.slug, actor)).pipe(
          Effect.as({ deleted: true as const, soft: false }),
          Effect.catchTags({ GatewayNotFound: E.GatewayNotFound })
        ))
  })).pipe(Layer.provide(Gateways.Default))
