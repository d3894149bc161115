/**
 * Dead letters as operators see and repair them (issue 10): every consumer's dead letters are messages of the DLQ
 * stream (subject `dlq.<durable>`, or `dlq.outbox` for the outbox relay's records), read one by one with JetStream's
 * direct get. A replay puts the original payload and headers back on its source subject under a new message id
 * (the dedupe keys inside the payload still stop a second effect), or, for an outbox record, makes its row pending
 * again; a discard needs a reason. Both are audited and then remove the letter from the DLQ.
 */
import type { StoredMsg } from "@nats-io/jetstream"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Effect } from "effect"
import type { DeadLetterConsumer, DeadLetterPage, DeadLetterParams, DeadLetterSummary, DeadLetterView, ReplayResult } from "../src/domain/DeadLetter.ts"
import type { Actor } from "./Contracts.ts"
import { Audit, redactSecrets } from "./Audit.ts"
import { Nats, type NatsError } from "./Nats.ts"
import { decodeIds, transactional } from "./Rows.ts"
import { DeadLetterHeaders } from "./Subjects.ts"

export class DeadLetterNotFound extends Data.TaggedError("DeadLetterNotFound")<{ readonly id: number }> {
  override get message() {
    return `no dead letter ${this.id}`
  }
}

export class DeadLetterNotReplayable extends Data.TaggedError("DeadLetterNotReplayable")<{ readonly id: number; readonly message: string }> {}

/** Messages a page request examines at most: a narrow filter over a long DLQ returns a cursor rather than scanning on. */
const SCAN_LIMIT = 2_000
const DEFAULT_LIMIT = 50

const utf8 = new TextDecoder("utf-8", { fatal: true })
const deadLetterHeaderNames = new Set(Object.values(DeadLetterHeaders).map((h) => h.toLowerCase()))

export class DeadLetters extends Effect.Service<DeadLetters>()("billing/DeadLetters", {
  effect: Effect.gen(function*() {
    const nats = yield* Nats
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit
    const stream = nats.subjects.streams.dlq
    const durables: Readonly<Record<DeadLetterConsumer, string>> = {
      "payment-processor-webhooks": nats.subjects.durables.paymentProcessorWebhooks,
      "payment-processor-chain": nats.subjects.durables.paymentProcessorChain,
      outbox: "outbox"
    }
    const consumerOf = (subject: string) => {
      const token = subject.slice(subject.lastIndexOf(".") + 1)
      return (Object.keys(durables) as Array<DeadLetterConsumer>).find((c) => durables[c] === token) ?? token
    }
    /** The stream subjects a replay may go back to: those the consumers read. */
    const replayable = [nats.subjects.streamSubjects.webhooks, nats.subjects.streamSubjects.chain].map((s) => s.slice(0, -1))

    const header = (msg: StoredMsg, name: string) => {
      const value = msg.header?.get(name) ?? ""
      return value === "" ? null : value
    }
    const summaryOf = (msg: StoredMsg): DeadLetterSummary => ({
      id: String(msg.seq),
      consumer: consumerOf(msg.subject),
      reason: header(msg, DeadLetterHeaders.reason) ?? "",
      subject: header(msg, DeadLetterHeaders.sourceSubject) ?? "",
      delivery_count: Number(header(msg, DeadLetterHeaders.deliveryCount) ?? 0),
      first_failed_at: header(msg, DeadLetterHeaders.firstFailedAt),
      last_failed_at: msg.time.toISOString()
    })
    /** The original headers: everything but the dead-letter ones. */
    const originalHeaders = (msg: StoredMsg): Record<string, string> => {
      const headers: Record<string, string> = {}
      for (const key of msg.header?.keys() ?? []) {
        if (!deadLetterHeaderNames.has(key.toLowerCase())) headers[key] = msg.header.get(key)
      }
      return headers
    }
    const viewOf = (msg: StoredMsg): DeadLetterView => {
      const seq = header(msg, DeadLetterHeaders.sourceSeq)
      let payload: string
      let encoding: "utf8" | "base64" = "utf8"
      try {
        payload = utf8.decode(msg.data)
      } catch {
        payload = Buffer.from(msg.data).toString("base64")
        encoding = "base64"
      }
      return {
        ...summaryOf(msg),
        source_stream: header(msg, DeadLetterHeaders.sourceStream),
        source_seq: seq === null ? null : Number(seq),
        msg_id: header(msg, DeadLetterHeaders.sourceMsgId),
        headers: redactSecrets(originalHeaders(msg)) as Record<string, string>,
        payload,
        payload_encoding: encoding
      }
    }

    const directGet = (query: { readonly seq: number } | { readonly seq: number; readonly next_by_subj: string }) =>
      nats.use(`dead letter ${query.seq}`, ({ jsm }) => jsm.direct.getMessage(stream, query))
    const fetch = (id: number): Effect.Effect<StoredMsg, DeadLetterNotFound | NatsError> =>
      directGet({ seq: id }).pipe(
        Effect.catchTag("NatsError", (e) => isMissing(e) ? Effect.succeed(null) : Effect.fail(e)),
        Effect.flatMap((msg) => msg === null ? Effect.fail(new DeadLetterNotFound({ id })) : Effect.succeed(msg))
      )
    const remove = (id: number) => nats.use(`delete dead letter ${id}`, ({ jsm }) => jsm.streams.deleteMessage(stream, id, false))

    /** Oldest first from `cursor` (exclusive); `next_cursor` when more may match. */
    const list = (params: DeadLetterParams): Effect.Effect<DeadLetterPage, NatsError> =>
      Effect.gen(function*() {
        const limit = params.limit ?? DEFAULT_LIMIT
        const filter = params.consumer === undefined ? nats.subjects.dlq("*") : nats.subjects.dlq(durables[params.consumer])
        const items: Array<DeadLetterSummary> = []
        let seq = params.cursor === undefined ? 1 : Number(params.cursor) + 1
        for (let scanned = 0; scanned < SCAN_LIMIT; scanned++) {
          const msg = yield* directGet({ seq, next_by_subj: filter }).pipe(
            Effect.catchTag("NatsError", (e) => isMissing(e) ? Effect.succeed(null) : Effect.fail(e))
          )
          if (msg === null) return { items, next_cursor: null }
          seq = msg.seq + 1
          if (params.until !== undefined && msg.time >= params.until) return { items, next_cursor: null }
          const summary = summaryOf(msg)
          if (params.since !== undefined && msg.time < params.since) continue
          if (params.reason !== undefined && !summary.reason.startsWith(params.reason)) continue
          items.push(summary)
          if (items.length === limit) return { items, next_cursor: String(msg.seq) }
        }
        return { items, next_cursor: String(seq - 1) }
      })

    const get = (id: number) => Effect.map(fetch(id), viewOf)

    const record = (actor: Actor, action: string, letter: DeadLetterView, after: Record<string, unknown>) =>
      audit.record({
        actor: actor.id,
        action,
        resource: `dead_letter:${letter.id}`,
        before: { consumer: letter.consumer, reason: letter.reason, subject: letter.subject, msg_id: letter.msg_id, delivery_count: letter.delivery_count },
        after,
        requestId: actor.requestId
      })

    /** An outbox record: its row pending again (attempts from 0), so the relay tries it once more. */
    const replayOutbox = (id: number, letter: DeadLetterView, actor: Actor) =>
      Effect.gen(function*() {
        const row = /^outbox:([0-9]+)$/.exec(letter.msg_id ?? "")?.[1]
        if (row === undefined) return yield* new DeadLetterNotReplayable({ id, message: "the outbox record names no outbox row" })
        const reset = yield* sql`UPDATE outbox SET dead_lettered_at = NULL, dead_letter_reason = NULL, attempts = 0
          WHERE id = ${row} AND dead_lettered_at IS NOT NULL RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
        if (reset.length === 0) return yield* new DeadLetterNotReplayable({ id, message: `outbox row ${row} is not dead-lettered (already replayed or sent)` })
        yield* record(actor, "dead_letter.replay", letter, { replayed_to: `outbox:${row}` })
        return { id: letter.id, replayed_to: `outbox:${row}`, msg_id: null, duplicate: false } satisfies ReplayResult
      }).pipe(transactional(sql))

    const replayMessage = (id: number, msg: StoredMsg, letter: DeadLetterView, actor: Actor) =>
      Effect.gen(function*() {
        const subject = letter.subject
        if (!replayable.some((prefix) => subject.startsWith(prefix))) {
          return yield* new DeadLetterNotReplayable({ id, message: `its source subject ${JSON.stringify(subject)} is not one the consumers read` })
        }
        // one id per dead letter (its sequence and time: a DLQ stream made anew reuses sequences): a replay repeated
        // within the stream's duplicate window publishes nothing twice
        const msgId = `replay:${letter.id}:${msg.time.getTime()}`
        const published = yield* nats.publish(subject, msg.data, { msgId, headers: originalHeaders(msg) })
        yield* record(actor, "dead_letter.replay", letter, { replayed_to: subject, msg_id: msgId, seq: published.seq }).pipe(transactional(sql))
        return { id: letter.id, replayed_to: subject, msg_id: msgId, duplicate: published.duplicate } satisfies ReplayResult
      })

    const replay = (id: number, actor: Actor): Effect.Effect<ReplayResult, DeadLetterNotFound | DeadLetterNotReplayable | NatsError | SqlError> =>
      Effect.gen(function*() {
        const msg = yield* fetch(id)
        const letter = viewOf(msg)
        const result = letter.consumer === "outbox" ? yield* replayOutbox(id, letter, actor) : yield* replayMessage(id, msg, letter, actor)
        yield* remove(id)
        yield* Effect.logInfo(`dead letter ${id} replayed to ${result.replayed_to}`).pipe(Effect.annotateLogs({ actor: actor.id }))
        return result
      })

    const discard = (id: number, reason: string, actor: Actor): Effect.Effect<DeadLetterView, DeadLetterNotFound | NatsError | SqlError> =>
      Effect.gen(function*() {
        const letter = viewOf(yield* fetch(id))
        yield* record(actor, "dead_letter.discard", letter, { discard_reason: reason }).pipe(transactional(sql))
        yield* remove(id)
        yield* Effect.logInfo(`dead letter ${id} discarded: ${reason}`).pipe(Effect.annotateLogs({ actor: actor.id }))
        return letter
      })

    /** Dead letters per consumer now (every known consumer listed, 0 when none). */
    const counts = nats.use("dead letter counts", ({ jsm }) => jsm.streams.info(stream, { subjects_filter: nats.subjects.dlq("*") })).pipe(
      Effect.map((info) => {
        const bySubject = info.state.subjects ?? {}
        const counted: Record<string, number> = Object.fromEntries(Object.keys(durables).map((c) => [c, 0]))
        for (const [subject, n] of Object.entries(bySubject)) counted[consumerOf(subject)] = (counted[consumerOf(subject)] ?? 0) + n
        return counted
      })
    )

    return { list, get, replay, discard, counts } as const
  }),
  dependencies: [Audit.Default]
}) {}

/** The direct get API answers 404 for a sequence with no message (never written, deleted or past the end). */
const isMissing = (error: NatsError) => {
  const cause = error.cause as { readonly code?: unknown; readonly message?: unknown } | null
  return cause !== null && typeof cause === "object" &&
    (cause.code === 404 || cause.code === "404" || (typeof cause.message === "string" && /no message found|not found/i.test(cause.message)))
}
