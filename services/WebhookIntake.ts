import { Clock, Config, ConfigError, Data, Effect, Either, Option, Redacted, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { type QueuedWebhook, WebhookEvent } from "../src/domain/Events.ts"
import { Slug } from "../src/domain/Ids.ts"
import { verifyWebhook, webhookKey } from "../src/domain/WebhookSignature.ts"
import { Nats } from "./Nats.ts"
import { WebhookStream } from "./StreamCodecs.ts"
import { traceHeaders } from "./TraceContext.ts"
import { type DirectoryEntry, WebhookDirectory } from "./WebhookDirectory.ts"

export const MAX_WEBHOOK_BYTES = 64 * 1024

/** Every authentication failure is one reason on the wire, so nothing tells a caller which contracts exist. */
export class WebhookRejected extends Data.TaggedError("WebhookRejected")<{
  readonly reason: "payload_too_large" | "unauthorized" | "invalid_webhook"
  readonly message: string
}> {}

export interface WebhookHeaders {
  readonly id: string | undefined
  readonly timestamp: string | undefined
  readonly signature: string | undefined
}

const decodeEvent = Schema.decodeUnknownEither(Schema.parseJson(WebhookEvent))
const isSlug = Schema.is(Slug)

/** The `contract` field read before verification, only to choose the keys; nothing else is trusted yet. */
const claimedContract = (body: Uint8Array): string | undefined => {
  const loose = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ contract: Schema.String })))(
    new TextDecoder().decode(body)
  )
  return Either.isRight(loose) && isSlug(loose.right.contract) ? loose.right.contract : undefined
}

const FallbackSecret = Config.option(Config.redacted("BILLING_WEBHOOK_SECRET")).pipe(
  Config.mapOrFail((secret): Either.Either<Option.Option<Uint8Array>, ConfigError.ConfigError> =>
    Option.isNone(secret)
      ? Either.right(Option.none())
      : Either.mapBoth(webhookKey(Redacted.value(secret.value)), {
        onLeft: (why) => ConfigError.InvalidData(["BILLING_WEBHOOK_SECRET"], `BILLING_WEBHOOK_SECRET: ${why}`),
        onRight: Option.some
      }))
)

/**
 * Verifies a relayer's webhook over the raw bytes against the in-memory contract directory (no SQL per request)
 * and queues it on JetStream with `Nats-Msg-Id` = webhook-id. Every rejection happens before anything is written.
 */
export class WebhookIntake extends Effect.Service<WebhookIntake>()("billing/WebhookIntake", {
  effect: Effect.gen(function*() {
    const directory = yield* WebhookDirectory
    const nats = yield* Nats
    const fallback = yield* FallbackSecret
    // An unknown contract costs the same HMAC as a known one: timing does not enumerate slugs either.
    const decoy = [new Uint8Array(randomBytes(32))]

    /** The contract's active secrets at `nowMs`; the global secret only when it has none. */
    const keysOf = (entry: DirectoryEntry, nowMs: number): Option.Option<ReadonlyArray<Uint8Array>> => {
      const active = entry.secrets.filter((s) => s.expiresAt === null || s.expiresAt > nowMs).map((s) => Redacted.value(s.key))
      if (active.length > 0) return Option.some(active)
      return Option.map(fallback, (key) => [key])
    }

    const unauthorized = (detail: string, slug: string | undefined) =>
      Effect.logDebug("webhook rejected").pipe(
        Effect.annotateLogs({ reason: detail, contract_slug: slug ?? "" }),
        Effect.zipRight(Effect.fail(new WebhookRejected({ reason: "unauthorized", message: "webhook signature could not be verified" })))
      )

    const accept = Effect.fn("WebhookIntake.accept")(function*(headers: WebhookHeaders, body: Uint8Array) {
      if (body.byteLength > MAX_WEBHOOK_BYTES) {
        return yield* new WebhookRejected({ reason: "payload_too_large", message: "webhook body exceeds 64 KiB" })
      }
      const slug = claimedContract(body)
      const entry = slug === undefined ? Option.none() : yield* directory.lookup(slug)
      const nowMs = yield* Clock.currentTimeMillis
      const now = Math.floor(nowMs / 1000)
      const keys = Option.flatMap(entry, (e) => keysOf(e, nowMs))
      // Verified before any branch, with the decoy when there is no key: every refusal costs the same.
      const verified = verifyWebhook({ ...headers, keys: Option.getOrElse(keys, () => decoy), body, nowSeconds: now })
      if (Option.isNone(entry)) return yield* unauthorized(slug === undefined ? "no contract slug" : "unknown contract", slug)
      if (Option.isNone(keys)) return yield* unauthorized("no webhook secret configured", slug)
      if (Either.isLeft(verified)) return yield* unauthorized(verified.left, slug)
      const event = decodeEvent(new TextDecoder().decode(body))
      if (Either.isLeft(event)) {
        return yield* new WebhookRejected({ reason: "invalid_webhook", message: "webhook body does not match the event schema" })
      }

      const queued: QueuedWebhook = {
        source: "webhook",
        webhook_id: headers.id!,
        received_at: new Date(now * 1000).toISOString(),
        event: event.right
      }
      const published = yield* nats.publishMessage(WebhookStream, queued, { headers: yield* traceHeaders })
      yield* Effect.logInfo("webhook queued").pipe(
        Effect.annotateLogs({ contract_slug: event.right.contract, tx_hash: event.right.tx_hash, duplicate: published.duplicate })
      )
      return { accepted: true as const, duplicate: published.duplicate }
    })

    return { accept } as const
  }),
  dependencies: [WebhookDirectory.Default]
}) {}
