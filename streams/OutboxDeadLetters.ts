/**
 * Setting aside an outbox row NATS cannot take (invariant 14): the row keeps its payload in PostgreSQL, marked with
 * its reason; a small record of it (never the payload, which may be what was too big) goes to `dlq.outbox`;
 * the reason is counted and logged, and finance_ops is notified through the outbox, after the row.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Effect, Metric } from "effect"
import { Nats, type NatsError } from "../services/Nats.ts"
import { Notifications } from "../services/Notifications.ts"
import { classify, type RowVerdict } from "./OutboxPolicy.ts"
import { deadLetterPath, DeadLetterHeaders } from "../services/Subjects.ts"

export const outboxDeadLetteredTotal = Metric.counter("billing_outbox_dead_lettered_total", {
  description: "outbox rows the relay set aside because NATS cannot take them, by reason",
  incremental: true
})

/** What became of a row whose publish failed or was refused. */
export type Step = Data.TaggedEnum<{
  DeadLettered: {}
  /** The pass stops here: the failure is NATS's, not the row's. */
  Stop: { readonly error: NatsError }
}>
export const Step = Data.taggedEnum<Step>()

export interface OutboxRow {
  readonly id: string
  readonly subject: string
  readonly payload: string
  readonly created_at: Date
}

const encoder = new TextEncoder()
const headerValue = (text: string) => text.replace(/[\r\n]+/g, " ").slice(0, 1024)

export class OutboxDeadLetters extends Effect.Service<OutboxDeadLetters>()("billing/OutboxDeadLetters", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const nats = yield* Nats
    const notifications = yield* Notifications

    /** Inside the relay's batch transaction: the mark and the notification commit with the rows sent before it. */
    const setAside = (row: OutboxRow, verdict: RowVerdict, attempts: number): Effect.Effect<Step, SqlError> =>
      Effect.gen(function*() {
        const subject = nats.subjects.event(row.subject)
        const payloadBytes = encoder.encode(row.payload).byteLength
        const record = {
          outbox_id: row.id,
          subject,
          reason: verdict.reason,
          detail: verdict.detail,
          payload_bytes: payloadBytes,
          attempts,
          created_at: row.created_at.toISOString()
        }
        const published = yield* Effect.either(nats.publish(nats.subjects.dlq("outbox"), encoder.encode(JSON.stringify(record)), {
          msgId: `outbox:${row.id}`,
          headers: {
            [DeadLetterHeaders.reason]: headerValue(`${verdict.reason}: ${verdict.detail}`),
            [DeadLetterHeaders.sourceStream]: nats.subjects.streams.events,
            [DeadLetterHeaders.sourceSubject]: headerValue(subject),
            [DeadLetterHeaders.sourceMsgId]: `outbox:${row.id}`,
            [DeadLetterHeaders.deliveryCount]: String(attempts)
          }
        }))
        if (published._tag === "Left") {
          // NATS down: retry the pass (the row is judged again). A DLQ that refuses the record (full) does not
          // block the events: the outbox row is the durable record.
          if (classify(published.left.cause)._tag === "Transient") return Step.Stop({ error: published.left })
          yield* Effect.logError("the dead-letter record could not be published; the outbox row keeps it", published.left)
        }
        const reason = `${verdict.reason}: ${verdict.detail}`.slice(0, 1000)
        yield* sql`UPDATE outbox SET dead_lettered_at = now(), dead_letter_reason = ${reason}, attempts = ${attempts},
          last_error = ${verdict.detail.slice(0, 1000)} WHERE id = ${row.id}`
        yield* Metric.increment(Metric.tagged(outboxDeadLetteredTotal, "reason", verdict.reason))
        yield* Effect.logError(`outbox row dead-lettered: ${reason}`).pipe(
          Effect.annotateLogs({ outbox_id: row.id, subject, payload_bytes: payloadBytes })
        )
        yield* notifications.notifyFinanceOps("outbox_dead_letter", {
          outbox_id: row.id,
          subject,
          reason: verdict.reason,
          detail: verdict.detail,
          payload_bytes: payloadBytes,
          dead_letter_id: published._tag === "Right" ? published.right.seq : null,
          replay: published._tag === "Right"
            ? `POST ${deadLetterPath(published.right.seq)}/replay (or \`npx evm-billing dead-letters replay ${published.right.seq}\`)`
            : `the DLQ refused its record, so set the row's dead_lettered_at and dead_letter_reason to NULL (outbox id ${row.id})`
        })
        return Step.DeadLettered()
      })

    return { setAside } as const
  }),
  dependencies: [Notifications.Default]
}) {}
