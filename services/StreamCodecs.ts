import { Effect, type ParseResult, Schema } from "effect"
import { AuditEntryView } from "../src/domain/AuditLog.ts"
import { ChainEvent, NotificationMessage, QueuedWebhook } from "../src/domain/Events.ts"
import { PlanChanged } from "../src/domain/PlanChanged.ts"
import { resourceKind, subjectToken } from "../src/domain/SubjectToken.ts"
import type { Subjects } from "./Subjects.ts"

/**
 * One stream's messages, declared once for every producer and consumer: the Schema both sides encode and decode
 * with, the subject a message goes to, and its `Nats-Msg-Id` (JetStream's dedupe key).
 */
export interface StreamCodec<A, I> {
  readonly schema: Schema.Schema<A, I>
  readonly subject: (subjects: Subjects, message: A) => string
  readonly msgId: (message: A) => string
  readonly encode: (message: A) => Effect.Effect<Uint8Array, ParseResult.ParseError>
}

const utf8 = new TextEncoder()

const codec = <A, I>(
  schema: Schema.Schema<A, I>,
  subject: StreamCodec<A, I>["subject"],
  msgId: StreamCodec<A, I>["msgId"]
): StreamCodec<A, I> => {
  const toJson = Schema.encode(Schema.parseJson(schema))
  return { schema, subject, msgId, encode: (message) => Effect.map(toJson(message), (json) => utf8.encode(json)) }
}

/** Webhooks as received: one per relayer delivery, deduplicated by the Standard Webhooks `webhook-id`. */
export const WebhookStream = codec(QueuedWebhook, (subjects, q) => subjects.webhook(q.event.contract), (q) => q.webhook_id)

/** The listener's reading of one log: one id per block, log and direction, so a rewind's removal is news. */
export const chainMsgId = (e: Pick<ChainEvent, "chain_id" | "block_hash" | "log_index" | "removed">) =>
  `${e.chain_id}:${e.block_hash}:${e.log_index}${e.removed ? ":removed" : ""}`

export const ChainStream = codec(ChainEvent, (subjects, e) => subjects.chain(e.chain_id), chainMsgId)

/**
 * An event for the EVENTS stream, written to the outbox in the transaction of its change and published by the
 * relay: the Schema producers encode with and consumers decode with, and its subject under the prefix.
 */
export interface EventCodec<A, I> {
  readonly schema: Schema.Schema<A, I>
  readonly subject: (message: A) => string
}

export const PlanChangedEvents: EventCodec<typeof PlanChanged.Type, typeof PlanChanged.Encoded> = {
  schema: PlanChanged,
  subject: () => "plan.changed.v1"
}
export const NotificationEvents: EventCodec<NotificationMessage, typeof NotificationMessage.Encoded> = {
  schema: NotificationMessage,
  subject: (n) => `notifications.${subjectToken(n.user_id)}`
}
/** An audit row as the EVENTS stream carries it (`billing.audit.<resource kind>`): the shape its readers see over HTTP. */
export const AuditEvents: EventCodec<AuditEntryView, typeof AuditEntryView.Encoded> = {
  schema: AuditEntryView,
  subject: (a) => `audit.${resourceKind(a.resource)}`
}
