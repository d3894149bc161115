/**
 * The OutboxRelay: publishes outbox rows (written in the transaction of the change they describe) to JetStream
 * and marks them sent.
 *
 * One pass locks a batch of pending rows in id order (`FOR UPDATE SKIP LOCKED`: several instances share the work
 * without waiting on each other), publishes them together (in id order, every ack awaited) to
 * `nats.subjects.event(row.subject)` with `Nats-Msg-Id` = `outbox:<id>`, marks the published ones sent and commits. So:
 * - a crash after the change committed and before the publish loses nothing: the rows stay unsent;
 * - a crash after the publish and before the mark publishes nothing twice: the row is published again with the
 *   same msg id, which the EVENTS stream drops within its duplicate window (1 hour);
 * - a transient NATS error stops the pass: what was published is marked, the rest waits for the retry (a capped,
 *   jittered exponential Schedule); any other failure is logged and the next poll tries again;
 * - a row NATS can never take (`OutboxPolicy`) is dead-lettered in the same pass: marked with its reason, a small
 *   record of it on `dlq.outbox`, counted, logged, finance_ops notified; the rows behind it go on.
 * Order: rows are published in id order by one instance; with several instances running, two batches may
 * interleave (consumers order by the id in the msg id, or by the payload's own timestamps).
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Config, Duration, Effect, Either, Layer, Metric, Schema } from "effect"
import { Nats, type NatsError } from "../services/Nats.ts"
import { liveSchedule, RetryPolicyState } from "../services/RetryPolicies.ts"
import { decodeRows } from "../services/Rows.ts"
import { OutboxDeadLetters, Step } from "./OutboxDeadLetters.ts"
import { classify, precheck, Verdict } from "./OutboxPolicy.ts"

export const OutboxRelayConfig = Config.all({
  poll: Config.duration("BILLING_OUTBOX_POLL").pipe(
    Config.withDescription("how often the outbox relay looks for unsent rows when it found none"),
    Config.withDefault(Duration.millis(500))
  ),
  batchSize: Config.integer("BILLING_OUTBOX_BATCH").pipe(
    Config.withDescription("outbox rows published per SQL transaction"),
    Config.validate({ message: "BILLING_OUTBOX_BATCH must be between 1 and 1000", validation: (n) => n >= 1 && n <= 1000 }),
    Config.withDefault(100)
  )
})

export const outboxMsgId = (id: string) => `outbox:${id}`

export const outboxPublishedTotal = Metric.counter("billing_outbox_published_total", {
  description: "outbox rows published to JetStream; duplicate=true when the stream already had the msg id",
  incremental: true
})
export const outboxUnsent = Metric.gauge("billing_outbox_unsent", {
  description: "outbox rows not yet published nor dead-lettered, after the relay's last pass"
})

const Row = Schema.Struct({
  id: Schema.String,
  subject: Schema.String,
  payload: Schema.String,
  attempts: Schema.Number,
  created_at: Schema.DateFromSelf
})
type Row = typeof Row.Type
const decode = decodeRows(Row)
const Count = Schema.Struct({ n: Schema.Number })
const decodeCount = decodeRows(Count)

const encoder = new TextEncoder()

/** The relay's passes, for the layer below and for tests that drive it by hand. */
export const makeOutboxRelay = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const nats = yield* Nats
  const config = yield* OutboxRelayConfig
  // the `outbox` retry policy (BILLING_OUTBOX_RETRY_*, _MAX_ATTEMPTS until an operator stores one), read per use
  const policies = yield* RetryPolicyState

  const published = (duplicate: boolean) => Metric.increment(Metric.tagged(outboxPublishedTotal, "duplicate", String(duplicate)))

  /** Whether the EVENTS stream answers: a refusal it keeps giving for one row is then that row's. */
  const streamAnswers = nats.use("streams.info(events)", ({ jsm }) => jsm.streams.info(nats.subjects.streams.events)).pipe(
    Effect.as(true),
    Effect.orElseSucceed(() => false)
  )

  const deadLetters = yield* OutboxDeadLetters

  /** A row whose publish failed: set aside when the failure is the row's; `stop` ends the pass (it is not the row's). */
  const failed = (row: Row, error: NatsError): Effect.Effect<Step, SqlError> =>
    Effect.gen(function*() {
      const verdict = classify(error.cause)
      switch (verdict._tag) {
        case "Row":
          return yield* deadLetters.setAside(row, verdict, row.attempts + 1)
        case "Transient":
          return Step.Stop({ error })
        case "Suspect": {
          if (!(yield* streamAnswers)) return Step.Stop({ error })
          const attempts = row.attempts + 1
          if (attempts >= (yield* policies.current("outbox")).max_attempts) {
            return yield* deadLetters.setAside(row, Verdict.Row({ reason: "publish_refused", detail: verdict.detail }), attempts)
          }
          yield* sql`UPDATE outbox SET attempts = ${attempts}, last_error = ${verdict.detail.slice(0, 1000)} WHERE id = ${row.id}`
          return Step.Stop({ error })
        }
      }
    })

  /**
   * One batch in one SQL transaction; the number of rows it published, or the NATS error that stopped it. Rows NATS
   * can never take are set aside first; the rest are published together, in id order on the one connection, and each
   * row's result is then taken in id order: after the first failure that stops the pass, the failed rows wait for the
   * retry (the ones that went out are marked).
   */
  const batch = sql.withTransaction(Effect.gen(function*() {
    const rows = yield* sql`SELECT id::text AS id, subject, payload::text AS payload, attempts, created_at FROM outbox
      WHERE sent_at IS NULL AND dead_lettered_at IS NULL ORDER BY outbox.id LIMIT ${config.batchSize}
      FOR UPDATE SKIP LOCKED`.pipe(Effect.flatMap(decode))
    const maxPayload = yield* nats.maxPayload
    const outgoing: Array<{ readonly row: Row; readonly subject: string; readonly data: Uint8Array }> = []
    for (const row of rows) {
      const subject = nats.subjects.event(row.subject)
      const data = encoder.encode(row.payload)
      const refused = precheck({ subject, payloadBytes: data.byteLength }, { maxPayload, streamSubjects: nats.subjects.streamSubjects.events })
      if (refused === undefined) outgoing.push({ row, subject, data })
      else yield* deadLetters.setAside(row, refused, row.attempts)
    }
    const results = yield* nats.publishEach(outgoing.map(({ data, row, subject }) => ({ subject, data, msgId: outboxMsgId(row.id) })))
    const sent: Array<string> = []
    let failure: NatsError | undefined
    for (const [i, { row }] of outgoing.entries()) {
      const result = results[i]!
      if (Either.isRight(result)) {
        sent.push(row.id)
        yield* published(result.right.duplicate)
      } else if (failure === undefined) {
        const outcome = yield* failed(row, result.left)
        if (outcome._tag === "Stop") failure = outcome.error
      }
    }
    if (sent.length > 0) yield* sql`UPDATE outbox SET sent_at = now() WHERE id IN ${sql.in(sent)}`
    return { published: sent.length, full: rows.length === config.batchSize, failure }
  }))

  /** Publishes until a batch comes back short; fails with the first NATS error (after marking what was sent). */
  const drain = Effect.gen(function*() {
    let total = 0
    while (true) {
      const result = yield* batch
      total += result.published
      if (result.failure !== undefined) return yield* Effect.fail(result.failure)
      if (!result.full) return total
    }
  }).pipe(Effect.withSpan("OutboxRelay.drain"))

  const unsent = sql`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL AND dead_lettered_at IS NULL`.pipe(
    Effect.flatMap(decodeCount),
    Effect.map((rows) => rows[0]?.n ?? 0)
  )


  /** Drains (retrying NATS and SQL errors), updates the gauge, sleeps `poll`; forever. */
  const loop = drain.pipe(
    Effect.tapError((error) => Effect.logWarning("outbox relay pass failed; retrying", error)),
    Effect.retry(liveSchedule(policies.current("outbox"), false)),
    Effect.zipRight(Effect.flatMap(unsent, (n) => Metric.set(outboxUnsent, n))),
    Effect.catchAllCause((cause) => Effect.logError("outbox relay pass failed", cause)),
    Effect.zipRight(Effect.sleep(config.poll)),
    Effect.forever
  )

  return { drain, loop } as const
})

/** The relay as a supervised fiber for the life of the layer; several instances may run it. */
export const OutboxRelayLive = Layer.scopedDiscard(Effect.gen(function*() {
  const relay = yield* makeOutboxRelay
  yield* Effect.forkScoped(relay.loop.pipe(Effect.annotateLogs({ worker: "outbox-relay" })))
  yield* Effect.logInfo("outbox relay started")
})).pipe(Layer.provide([OutboxDeadLetters.Default, RetryPolicyState.Default]))
