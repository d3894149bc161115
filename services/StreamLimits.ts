/**
 * Every JetStream stream is bounded in age and size. Work streams (webhooks, chain) refuse new messages when full
 * (discard New: the webhook answers 503 and the relayer retries, the listener retries its publish) so unprocessed
 * work is never dropped to make room; the events stream drops its oldest messages; the DLQ keeps 30 days.
 */
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream"
import type { StreamConfig } from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import { Config, Duration } from "effect"
import type * as Subjects from "./Subjects.ts"

/** Msg-id dedupe window of every stream; `max_age` may not be shorter (NATS refuses it too). */
export const DuplicateWindow = Duration.hours(1)
export const DeadLetterMaxAge = Duration.days(30)

const KiB = 1024
const TiB = 1024 ** 4

export interface StreamLimits {
  readonly maxAge: Duration.Duration
  readonly maxBytes: number
}

export const StreamLimits: Config.Config<StreamLimits> = Config.all({
  maxAge: Config.duration("BILLING_STREAM_MAX_AGE").pipe(
    Config.withDescription("how long the webhooks, chain and events streams keep a message"),
    Config.withDefault(Duration.days(7)),
    Config.validate({
      message: "BILLING_STREAM_MAX_AGE must be at least 1 hour (the streams' duplicate window)",
      validation: (d) => Duration.greaterThanOrEqualTo(d, DuplicateWindow)
    })
  ),
  maxBytes: Config.integer("BILLING_STREAM_MAX_BYTES").pipe(
    Config.withDescription("bytes each stream may hold; full work streams refuse new messages, events drop the oldest"),
    Config.withDefault(1024 ** 3),
    Config.validate({
      message: "BILLING_STREAM_MAX_BYTES must be between 1024 and 1099511627776 (1 TiB)",
      validation: (n) => n >= KiB && n <= TiB
    })
  )
})

export type StreamSettings = Partial<StreamConfig> & { name: string }

export const streamConfigs = (subjects: Subjects.Subjects, limits: StreamLimits): ReadonlyArray<StreamSettings> => {
  const common = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: 1,
    duplicate_window: nanos(Duration.toMillis(DuplicateWindow)),
    max_bytes: limits.maxBytes
  }
  const work = { ...common, discard: DiscardPolicy.New, max_age: nanos(Duration.toMillis(limits.maxAge)) }
  return [
    { ...work, name: subjects.streams.webhooks, subjects: [subjects.streamSubjects.webhooks] },
    { ...work, name: subjects.streams.chain, subjects: [subjects.streamSubjects.chain] },
    // the outbox relay publishes with the outbox row id as Nats-Msg-Id: same window
    {
      ...common,
      name: subjects.streams.events,
      subjects: [...subjects.streamSubjects.events],
      discard: DiscardPolicy.Old,
      max_age: nanos(Duration.toMillis(limits.maxAge))
    },
    // a dead letter is never dropped to make room: a full DLQ refuses, and the sender retries
    {
      ...common,
      name: subjects.streams.dlq,
      subjects: [subjects.streamSubjects.dlq],
      // operators page through dead letters with direct gets (services/DeadLetters.ts)
      allow_direct: true,
      discard: DiscardPolicy.New,
      max_age: nanos(Duration.toMillis(DeadLetterMaxAge))
    }
  ]
}
