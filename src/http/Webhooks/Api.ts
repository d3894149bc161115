import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { WebhookEvent } from "../../domain/Events.ts"
import { BadRequest, PayloadTooLarge, Unauthorized, Unavailable, UnsupportedMediaType } from "../../domain/Errors.ts"

export const WebhookAccepted = Schema.Struct({ accepted: Schema.Literal(true), duplicate: Schema.Boolean })

export class WebhooksApi extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("webhook", "/v1/billing/contracts/webhook")
      .setPayload(WebhookEvent)
      .addSuccess(WebhookAccepted, { status: 202 })
      .addError(BadRequest)
      .addError(Unauthorized)
      .addError(PayloadTooLarge)
      .addError(UnsupportedMediaType)
      .addError(Unavailable)
      .annotate(
        OpenApi.Description,
        "Standard Webhooks signed (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256>) with one of the contract's active secrets (a whsec_ secret is its base64 key). Verified over the raw body, then queued. Every authentication failure (unknown contract, no secret, missing headers, bad signature, stale timestamp) is the same 401. The body must be sent as application/json (415 otherwise), and its network must be the contract's (400)."
      )
  )
{}
