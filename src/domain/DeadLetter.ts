import { Schema } from "effect"

/** The consumers whose messages can be dead-lettered, as operators name them. */
export const DeadLetterConsumer = Schema.Literal("payment-processor-webhooks", "payment-processor-chain", "outbox")
export type DeadLetterConsumer = typeof DeadLetterConsumer.Type

/** A dead letter is its sequence in the DLQ stream. */
export const DeadLetterId = Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, Number.MAX_SAFE_INTEGER))

const Time = Schema.String.annotations({ description: "ISO 8601, UTC" })

export const DeadLetterSummary = Schema.Struct({
  id: Schema.String,
  consumer: Schema.String,
  reason: Schema.String,
  /** The subject it was consumed from (or, for the outbox, the subject it was to be published on). */
  subject: Schema.String,
  delivery_count: Schema.Number,
  /** When this instance first saw it fail (its arrival when unknown: another instance saw the first failures). */
  first_failed_at: Schema.NullOr(Time),
  /** When it was dead-lettered: the last failure. */
  last_failed_at: Time
})
export type DeadLetterSummary = typeof DeadLetterSummary.Type

export const DeadLetterView = Schema.Struct({
  ...DeadLetterSummary.fields,
  source_stream: Schema.NullOr(Schema.String),
  source_seq: Schema.NullOr(Schema.Number),
  msg_id: Schema.NullOr(Schema.String),
  /** The original message's headers (credentials redacted), without the dead-letter headers. */
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  /** The payload as UTF-8 text, or base64 when it is not valid UTF-8 (`payload_encoding`). */
  payload: Schema.String,
  payload_encoding: Schema.Literal("utf8", "base64")
})
export type DeadLetterView = typeof DeadLetterView.Type

export const DeadLetterPage = Schema.Struct({ items: Schema.Array(DeadLetterSummary), next_cursor: Schema.NullOr(Schema.String) })
export type DeadLetterPage = typeof DeadLetterPage.Type

const Instant = Schema.DateFromString.pipe(Schema.filter((d) => !Number.isNaN(d.getTime()), { message: () => "must be an ISO 8601 time" }))

export const DeadLetterParams = Schema.Struct({
  consumer: Schema.optional(DeadLetterConsumer),
  reason: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))).annotations({
    description: "the reason starts with this text, e.g. `not_found` or `gave up`"
  }),
  since: Schema.optional(Instant).annotations({ description: "dead-lettered at or after (ISO 8601)" }),
  until: Schema.optional(Instant).annotations({ description: "dead-lettered before (ISO 8601)" }),
  cursor: Schema.optional(Schema.String.pipe(Schema.pattern(/^[0-9]{1,15}$/))),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100)))
})
export type DeadLetterParams = typeof DeadLetterParams.Type

export const DiscardRequest = Schema.Struct({
  reason: Schema.String.pipe(Schema.trimmed({ message: () => "must not start or end with spaces" }), Schema.minLength(1), Schema.maxLength(500))
})

export const ReplayResult = Schema.Struct({
  id: Schema.String,
  /** Where it went back to: a stream subject, or `outbox:<id>` (the row is pending again). */
  replayed_to: Schema.String,
  /** The new message id (the original's dedupe keys inside the payload still hold). */
  msg_id: Schema.NullOr(Schema.String),
  duplicate: Schema.Boolean
})
export type ReplayResult = typeof ReplayResult.Type
