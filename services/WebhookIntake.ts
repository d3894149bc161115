import { Clock, Config, Data, Effect, Either, Option, Redacted, Schema } from "effect"
import { type QueuedWebhook, WebhookEvent } from "../src/domain/Events.ts"
import { verifyWebhook } from "../src/domain/WebhookSignature.ts"
import { Contracts } from "./Contracts.ts"
import { traceHeaders } from "./TraceContext.ts"
import { Nats } from "./Nats.ts"

export const MAX_WEBHOOK_BYTES = 64 * 1024

export class WebhookRejected extends Data.TaggedError("WebhookRejected")<{
  readonly reason: "payload_too_large" | "unauthorized" | "invalid_signature" | "invalid_webhook" | "unknown_contract"
  readonly message: string
}> {}

export interface WebhookHeaders {
  readonly id: string | undefined
  readonly timestamp: string | undefined
  readonly signature: string | undefined
}

const decodeEvent = Schema.decodeUnknownEither(Schema.parseJson(WebhookEvent))
const encodeQueued = (q: QueuedWebhook) => new TextEncoder().encode(JSON.stringify(q))

/** The `contract` field read before verification, only to choose the key; nothing else is trusted yet. */
const claimedContract = (body: Uint8Array): string | undefined => {
  const loose = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ contract: Schema.String })))(
    new TextDecoder().decode(body)
  )
  return Either.isRight(loose) ? loose.right.contract : undefined
}

/**
 * Verifies a relayer's webhook over the raw bytes and queues it on JetStream with `Nats-Msg-Id` = webhook-id.
 * Every rejection happens before anything is written or published.
 */
export class WebhookIntake extends Effect.Service<WebhookIntake>()("billing/WebhookIntake", {
  effect: Effect.gen(function*() {
    const contracts = yield* Contracts
    const nats = yield* Nats
    const fallbackSecret = yield* Config.option(Config.redacted("BILLING_WEBHOOK_SECRET"))
    const reject = (reason: WebhookRejected["reason"], message: string) => Effect.fail(new WebhookRejected({ reason, message }))

    const accept = Effect.fn("WebhookIntake.accept")(function*(headers: WebhookHeaders, body: Uint8Array) {
      if (body.byteLength > MAX_WEBHOOK_BYTES) return yield* reject("payload_too_large", "webhook body exceeds 64 KiB")
      const slug = claimedContract(body)
      const contract = slug === undefined
        ? Option.none()
        : yield* contracts.get(slug).pipe(Effect.option)
      const secret = Option.orElse(Option.flatMap(contract, (c) => c.webhookSecret), () => fallbackSecret)
      if (Option.isNone(secret)) return yield* reject("unauthorized", "no webhook secret is configured for this contract")
      const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      const verified = verifyWebhook({ ...headers, secret: Redacted.value(secret.value), body, nowSeconds: now })
      if (Either.isLeft(verified)) {
        return yield* reject("invalid_signature", `webhook rejected: ${verified.left.replaceAll("_", " ")}`)
      }
      const event = decodeEvent(new TextDecoder().decode(body))
      if (Either.isLeft(event)) return yield* reject("invalid_webhook", "webhook body does not match the event schema")
      if (Option.isNone(contract)) return yield* reject("unknown_contract", `contract ${event.right.contract} is not registered`)

      const queued: QueuedWebhook = {
        source: "webhook",
        webhook_id: headers.id!,
        received_at: new Date(now * 1000).toISOString(),
        event: event.right
      }
      const published = yield* nats.publish(nats.subjects.webhook(event.right.contract), encodeQueued(queued), {
        msgId: headers.id!,
        headers: yield* traceHeaders
      })
      yield* Effect.logInfo("webhook queued").pipe(
        Effect.annotateLogs({ contract_slug: event.right.contract, tx_hash: event.right.tx_hash, duplicate: published.duplicate })
      )
      return { accepted: true as const, duplicate: published.duplicate }
    })

    return { accept } as const
  }),
  dependencies: [Contracts.Default]
}) {}
