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

const decodeEvent = Schema.decodeUnknownEither(WebhookEvent)
const isSlug = Schema.is(Slug)
const utf8 = new TextDecoder()

/** The body as JSON, parsed once for both the key choice and the event; undefined when it is not JSON. */
const parseBody = (body: Uint8Array): unknown => {
  try {
    return JSON.parse(utf8.decode(body))
  } catch {
    return undefined
  }
}

/** The `contract` field read before verification, only to choose the keys; nothing else is trusted yet. */
const claimedContract = (parsed: unknown): string | undefined => {
  const contract = typeof parsed === "object" && parsed !== null && "contract" in parsed ? parsed.contract : undefined
  return isSlug(contract) ? contract : undefined
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
      Effect.whenLogLevel(Effect.logDebug("webhook rejected").pipe(Effect.annotateLogs({ reason: detail, contract_slug: slug ?? "" })), "Debug").pipe(
        Effect.zipRight(Effect.fail(new WebhookRejected({ reason: "unauthorized", message: "webhook signature could not be verified" })))
      )

    // A plain span rather than Effect.fn: this runs per webhook, and Effect.fn captures a stack trace per call.
    const accept = (headers: WebhookHeaders, body: Uint8Array) => Effect.gen(function*() {
      if (body.byteLength > MAX_WEBHOOK_BYTES) {
        return yield* new WebhookRejected({ reason: "payload_too_large", message: "webhook body exceeds 64 KiB" })
      }
      const parsed = parseBody(body)
      const slug = claimedContract(parsed)
      const entry = slug === undefined ? Option.none() : yield* directory.lookup(slug)
      const nowMs = yield* Clock.currentTimeMillis
      const now = Math.floor(nowMs / 1000)
      const keys = Option.flatMap(entry, (e) => keysOf(e, nowMs))
      // Verified before any branch, with the decoy when there is no key: every refusal costs the same.
      const verified = verifyWebhook({ ...headers, keys: Option.getOrElse(keys, () => decoy), body, nowSeconds: now })
      if (Option.isNone(entry)) return yield* unauthorized(slug === undefined ? "no contract slug" : "unknown contract", slug)
      if (Option.isNone(keys)) return yield* unauthorized("no webhook secret configured", slug)
      if (Either.isLeft(verified)) return yield* unauthorized(verified.left, slug)
      const event = decodeEvent(parsed)
      if (Either.isLeft(event)) {
        return yield* new WebhookRejected({ reason: "invalid_webhook", message: "webhook body does not match the event schema" })
      }
      // A secret signs for its contract on its network only: an event naming another network is not this contract's.
      if (event.right.network !== entry.value.network) {
        return yield* new WebhookRejected({ reason: "invalid_webhook", message: "webhook network is not the contract's network" })
      }

      const queued: QueuedWebhook = {
        source: "webhook",
        webhook_id: headers.id!,
        received_at: new Date(now * 1000).toISOString(),
        event: event.right
      }
      const published = yield* nats.publishMessage(WebhookStream, queued, { headers: yield* traceHeaders })
      // Annotations cost a map per call: built only when debug logging is on.
      yield* Effect.whenLogLevel(
        Effect.logDebug("webhook queued").pipe(
          Effect.annotateLogs({ contract_slug: event.right.contract, tx_hash: event.right.tx_hash, duplicate: published.duplicate })
        ),
        "Debug"
      )
      return { accepted: true as const, duplicate: published.duplicate }
    }).pipe(Effect.withSpan("WebhookIntake.accept", { captureStackTrace: false }))

    return { accept } as const
  }),
  dependencies: [WebhookDirectory.Default]
}) {}
