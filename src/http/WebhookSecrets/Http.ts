import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { WebhookDirectory } from "../../../services/WebhookDirectory.ts"
import { type WebhookSecretNotFound, type WebhookSecretRejected, WebhookSecrets } from "../../../services/WebhookSecrets.ts"
import type { ContractNotFound } from "../../domain/Contract.ts"
import { BadRequest, Conflict, NotFound } from "../../domain/Errors.ts"
import { currentActor } from "../Admin/Http.ts"
import { Api } from "../Api.ts"
import * as E from "../Errors.ts"

const missing = <A, R>(self: Effect.Effect<A, ContractNotFound | WebhookSecretNotFound, R>) =>
  Effect.catchAll(self, (e): Effect.Effect<never, NotFound> =>
    e._tag === "ContractNotFound"
      ? E.ContractNotFound(e)
      : Effect.fail(new NotFound({ error: "webhook_secret_not_found", message: "no such webhook secret on this contract" })))

const toHttp = <A, R>(self: Effect.Effect<A, ContractNotFound | WebhookSecretNotFound | WebhookSecretRejected, R>) =>
  Effect.catchAll(self, (e): Effect.Effect<never, BadRequest | Conflict | NotFound> => {
    if (e._tag !== "WebhookSecretRejected") return missing(Effect.fail(e))
    switch (e.reason) {
      case "expiry_in_past": return Effect.fail(new BadRequest({ error: "invalid_request", message: e.message }))
      case "too_many": return Effect.fail(new Conflict({ error: "too_many_webhook_secrets", message: e.message }))
      case "inactive": return Effect.fail(new Conflict({ error: "webhook_secret_inactive", message: e.message }))
    }
  })

/** Every change is audited by the service and, once committed, reaches the webhook directory of every instance. */
export const AdminWebhookSecretsLive = HttpApiBuilder.group(Api, "adminWebhookSecrets", (handlers) =>
  Effect.gen(function*() {
    const secrets = yield* WebhookSecrets
    const directory = yield* WebhookDirectory
    return handlers
      .handle("list", ({ path }) => secrets.list(path.slug).pipe(Effect.map((items) => ({ items })), missing))
      .handle("add", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => secrets.add(path.slug, payload, actor)).pipe(
          Effect.tap(() => directory.changed),
          toHttp
        ))
      .handle("schedule", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => secrets.schedule(path.slug, path.id, payload, actor)).pipe(
          Effect.tap(() => directory.changed),
          toHttp
        ))
      .handle("retire", ({ path }) =>
        Effect.flatMap(currentActor, (actor) => secrets.retire(path.slug, path.id, actor)).pipe(
          Effect.tap(() => directory.changed),
          missing
        ))
  })).pipe(Layer.provide([WebhookSecrets.Default, WebhookDirectory.Default]))
