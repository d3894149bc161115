import { Either, Schema } from "effect"
import { webhookKey } from "./WebhookSignature.ts"

/** Bounds the HMAC work per webhook and the blast radius of a forgotten secret. */
export const MAX_ACTIVE_WEBHOOK_SECRETS = 5

// Messages never quote the value: it is a secret.
export const WebhookSecretValue = Schema.String.annotations({ message: () => "must be a string" }).pipe(
  Schema.minLength(16, { message: () => "must be at least 16 characters" }),
  Schema.maxLength(512, { message: () => "must be at most 512 characters" }),
  Schema.filter((s) => Either.match(webhookKey(s), { onLeft: (why) => why, onRight: () => undefined }))
)

export const WebhookSecretCreate = Schema.Struct({
  secret: WebhookSecretValue,
  expires_at: Schema.optional(Schema.NullOr(Schema.DateTimeUtc))
})
export type WebhookSecretCreate = typeof WebhookSecretCreate.Type

/** `expires_at` schedules the retirement (the overlap window of a rotation); null cancels it. */
export const WebhookSecretUpdate = Schema.Struct({
  expires_at: Schema.NullOr(Schema.DateTimeUtc)
})
export type WebhookSecretUpdate = typeof WebhookSecretUpdate.Type

/** Metadata only: a secret is write-only. */
export const WebhookSecretView = Schema.Struct({
  id: Schema.String,
  contract_slug: Schema.String,
  key_id: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  expires_at: Schema.NullOr(Schema.String),
  retired_at: Schema.NullOr(Schema.String),
  active: Schema.Boolean
})
export type WebhookSecretView = typeof WebhookSecretView.Type
