import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { WebhookIntake } from "../../../services/WebhookIntake.ts"
import { Api } from "../Api.ts"
import { webhookAnswer } from "../WebhookRoute.ts"

/**
 * The declared route. Served requests take the node-level route in WebhookRoute.ts ahead of the router; this handler
 * answers the same way for any server without it.
 */
export const WebhooksLive = HttpApiBuilder.group(Api, "webhooks", (handlers) =>
  Effect.map(webhookAnswer, (answer) =>
    handlers.handleRaw("webhook", ({ request }) =>
      Effect.flatMap(answer(NodeHttpServerRequest.toIncomingMessage(request)), ({ body, status }) =>
        HttpServerResponse.json(body, { status })).pipe(Effect.orDie)))).pipe(Layer.provide(WebhookIntake.Default))
