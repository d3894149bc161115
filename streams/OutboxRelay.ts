/**
 * The OutboxRelay: publishes outbox rows (written in the transaction of the change they describe) to JetStream
 * and marks them sent.
 *
 * One pass locks a batch of unsent rows in id order (`FOR UPDATE SKIP LOCKED`: several instances share the work
 * without waiting on each other), publishes each to `nats.subjects.event(row.subject)` with `Nats-Msg-Id` =
 * `outbox:<id>`, marks the published ones sent and commits. So:
 * - a crash after the change committed and before the publish loses nothing: the rows stay unsent;
 * - a crash after the publish and before the mark publishes nothing twice: the row is published again with the
 *   same msg id, which the EVENTS stream drops within its duplicate window (1 hour);
 * - a NATS error stops the pass: what was published is marked, the rest waits for the retry (a capped,
 *   jittered exponential Schedule); any other failure is logged and the next poll tries again.
 * Order: rows are published in id order by one instance; with several instances running, two batches may
 * interleave (consumers order by the id in the msg id, or by the payload's own timestamps).
 */
import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Either, Layer, Metric, Schedule, Schema } from "effect"
import { Nats, type NatsError } from "../services/Nats.ts"
import { decodeRows } from "../services/Rows.ts"

export const OutboxRelayConfig = Config.all({
  poll: Config.duration("BILLING_OUTBOX_POLL").pipe(
    Config.withDescription("how often the outbox relay looks for unsent rows when it found none"),
    Config.withDefault(Duration.millis(500))
  ),
  batchSize: Config.integer("BILLING_OUTBOX_BATCH").pipe(
    Config.withDescription("outbox rows published per SQL transaction"),
    Config.validate({ message: "BILLING_OUTBOX_BATCH must be between 1 and 1000", validation: (n) => n >= 1 && n <= 1000 }),
    Config.withDefault(100)
  ),
  retryBaseDelay: Config.duration("BILLING_OUTBOX_RETRY_BASE_DELAY").pipe(Config.withDefault(Duration.millis(200))),
  retryMaxDelay: Config.duration("BILLING_OUTBOX_RETRY_MAX_DELAY").pipe(Config.withDefault(Duration.seconds(10)))
})

export const outboxMsgId = (id: string) => `outbox:${id}`

export const outboxPublishedTotal = Metric.counter("billing_outbox_published_total", {
  description: "outbox rows published to JetStream; duplicate=true when the stream already had the msg id",
  incremental: true
})
export const outboxUnsent = Metric.gauge("billing_outbox_unsent", {
  description: "outbox rows not yet published, after the relay's last pass"
})

const Row = Schema.Struct({ id: Schema.String, subject: Schema.String, payload: Schema.String })
const decode = decodeRows(Row)
const Count = Schema.Struct({ n: Schema.Number })
const decodeCount = decodeRows(Count)

const encoder = new TextEncoder()

/** The relay's passes, for the layer below and for tests that drive it by hand. */
export const makeOutboxRelay = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const nats = yield* Nats
  const config = yield* OutboxRelayConfig

  const publish = (row: typeof Row.Type) =>
    nats.publish(nats.subjects.event(row.subject), encoder.encode(row.payload), { msgId: outboxMsgId(row.id) }).pipe(
      Effect.tap((ack) => Metric.increment(Metric.tagged(outboxPublishedTotal, "duplicate", String(ack.duplicate))))
    )

  /** One batch in one SQL transaction; the number of rows it published, or the NATS error that stopped it. */
  const batch = sql.withTransaction(Effect.gen(function*() {
    const rows = yield* sql`SELECT id::text AS id, subject, payload::text AS payload FROM outbox
      WHERE sent_at IS NULL ORDER BY outbox.id LIMIT ${config.batchSize} FOR UPDATE SKIP LOCKED`.pipe(Effect.flatMap(decode))
    const sent: Array<string> = []
    let failure: NatsError | undefined
    for (const row of rows) {
      const result = yield* Effect.either(publish(row))
      if (Either.isLeft(result)) {
        failure = result.left
        break
      }
      sent.push(row.id)
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

  const unsent = sql`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL`.pipe(
    Effect.flatMap(decodeCount),
    Effect.map((rows) => rows[0]?.n ?? 0)
  )

  const retry = Schedule.exponential(config.retryBaseDelay).pipe(
    Schedule.either(Schedule.spaced(config.retryMaxDelay)),
    Schedule.jittered
  )

  /** Drains (retrying NATS and SQL errors), updates the gauge, sleeps `poll`; forever. */
  const loop = drain.pipe(
    Effect.tapError((error) => Effect.logWarning("outbox relay pass failed; retrying", error)),
    Effect.retry(retry),
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
}))
