import { HttpApiBuilder, HttpIncomingMessage } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { MAX_WEBHOOK_BYTES, WebhookIntake } from "../../../services/WebhookIntake.ts"
import { BadRequest, PayloadTooLarge, Unauthorized, Unavailable } from "../../domain/Errors.ts"
import { Api } from "../Api.ts"

const tooLarge = new PayloadTooLarge({ error: "payload_too_large", message: "webhook body exceeds 64 KiB" })

/** Raw handler: the signature covers the exact bytes, so the body is not parsed before it is verified. */
export const WebhooksLive = HttpApiBuilder.group(Api, "webhooks", (handlers) =>
  Effect.gen(function*() {
    const intake = yield* WebhookIntake
    return handlers.handleRaw("webhook", ({ request }) =>
      Effect.gen(function*() {
        const declared = Number(request.headers["content-length"] ?? "0")
        if (declared > MAX_WEBHOOK_BYTES) return yield* Effect.fail(tooLarge)
        const body = yield* request.arrayBuffer.pipe(
          HttpIncomingMessage.withMaxBodySize(Option.some(MAX_WEBHOOK_BYTES)),
          Effect.mapError(() => tooLarge)
        )
        return yield* intake.accept({
          id: request.headers["webhook-id"],
          timestamp: request.headers["webhook-timestamp"],
          signature: request.headers["webhook-signature"]
        }, new Uint8Array(body)).pipe(
          Effect.catchTags({
            WebhookRejected: ({ message, reason }) => {
              switch (reason) {
                case "invalid_webhook": return Effect.fail(new BadRequest({ error: reason, message }))
                case "unauthorized": return Effect.fail(new Unauthorized({ error: reason, message }))
                case "payload_too_large": return Effect.fail(new PayloadTooLarge({ error: reason, message }))
              }
            },
            NatsError: (e) =>
              Effect.logError("webhook could not be queued", e).pipe(
                Effect.zipRight(Effect.fail(new Unavailable({ error: "queue_unavailable", message: "the event queue is unavailable, retry later" })))
              )
          })
        )
      }))
  })).pipe(Layer.provide(WebhookIntake.Default))
