/**
 * The transactional outbox against real PostgreSQL and NATS: a crash between the commit and the publish loses
 * nothing, a crash between the publish and marking the row sent duplicates nothing on the subject, several relays
 * share the work, and a JetStream outage is retried until the events get through.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Metric, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { Nats } from "../../services/Nats.ts"
import { RetryPolicyState } from "../../services/RetryPolicies.ts"
import { Outbox } from "../../services/Outbox.ts"
import { OutboxDeadLetters } from "../../streams/OutboxDeadLetters.ts"
import { makeOutboxRelay, outboxMsgId, outboxPublishedTotal } from "../../streams/OutboxRelay.ts"
import { Prefix } from "../../services/Subjects.ts"
import { eventMessages, type EventMessage } from "../events/eventsStream.ts"
import { eventually } from "../support/app.ts"
import { TestDatabase } from "../support/database.ts"

const prefix = Prefix.make(`T${randomUUID().replaceAll("-", "").slice(0, 12)}`)

const DeleteStreams = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  yield* Effect.addFinalizer(() =>
    Effect.forEach(Object.values(nats.subjects.streams), (name) =>
      nats.use(`streams.delete(${name})`, ({ jsm }) => jsm.streams.delete(name)).pipe(Effect.ignore), { discard: true })
  )
}))

// A small batch so that a handful of rows already takes several transactions.
const config = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
  ["BILLING_OUTBOX_POLL", "50 millis"],
  ["BILLING_OUTBOX_BATCH", "7"],
  ["BILLING_OUTBOX_RETRY_BASE_DELAY", "50 millis"],
  ["BILLING_OUTBOX_RETRY_MAX_DELAY", "200 millis"]
])))

const TestLayer = Layer.mergeAll(DeleteStreams, Outbox.Default, OutboxDeadLetters.Default, RetryPolicyState.Default).pipe(
  Layer.provideMerge(Layer.merge(Nats.layerWith({ prefix }), TestDatabase)),
  Layer.provide(config)
)

interface Row {
  readonly id: string
  readonly subject: string
  readonly payload: unknown
  readonly sent: boolean
}

const outboxRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<Row>`SELECT id::text AS id, subject, payload, sent_at IS NOT NULL AS sent FROM outbox ORDER BY outbox.id`).pipe(Effect.orDie)

/** `n` events committed in transactions of three, spread over the three kinds of subject. */
const commitEvents = (n: number, tag: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox
    const subjects = ["plan.changed.v1", "notifications.user-1", "audit.payment"]
    for (let i = 0; i < n; i += 3) {
      yield* sql.withTransaction(Effect.forEach(
        Array.from({ length: Math.min(3, n - i) }, (_, k) => i + k),
        (k) =>
          outbox.enqueue({ schema: Schema.Unknown, subject: () => subjects[k % 3]! }, { tag, k, amount: (10n ** 18n + BigInt(k)).toString() })
      ))
    }
  }).pipe(Effect.orDie)

/** Runs `body` while `relays` relays run; they stop (as a process would die) when it returns. */
const withRelays = <A, E, R>(relays: number, body: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    for (let i = 0; i < relays; i++) {
      const relay = yield* makeOutboxRelay
      yield* Effect.forkScoped(relay.loop)
    }
    return yield* body
  }))

const allSent = eventually(outboxRows, (rows) => rows.every((r) => r.sent), "every outbox row sent")

const duplicates = Metric.value(Metric.tagged(outboxPublishedTotal, "duplicate", "true")).pipe(Effect.map((s) => s.count))

/** The stream holds exactly one message per outbox row, on the row's subject, with the row's payload. */
const assertOnePerRow = (rows: ReadonlyArray<Row>, messages: ReadonlyArray<EventMessage>) => {
  assert.strictEqual(messages.length, rows.length, "one message per row, no more")
  const byMsgId = new Map(messages.map((m) => [m.msgId, m]))
  assert.strictEqual(byMsgId.size, messages.length, "no msg id twice")
  for (const row of rows) {
    const message = byMsgId.get(outboxMsgId(row.id))
    assert.isDefined(message, `row ${row.id} published`)
    assert.strictEqual(message!.subject, `${prefix.toLowerCase()}.${row.subject}`)
    assert.deepStrictEqual(message!.body, row.payload)
  }
}

layer(TestLayer, { timeout: 60_000, excludeTestServices: true })("OutboxRelay (real PostgreSQL and NATS)", (it) => {
  it.effect("crash after commit, before publish: rows written with no relay running are all published, once", () =>
    Effect.gen(function*() {
      yield* commitEvents(20, "no-loss")
      assert.strictEqual((yield* eventMessages).length, 0, "nothing is published while no relay runs")
      assert.isTrue((yield* outboxRows).every((r) => !r.sent))

      yield* withRelays(1, allSent)
      assertOnePerRow(yield* outboxRows, yield* eventMessages)
      assert.deepStrictEqual((yield* eventMessages).map((m) => m.msgId), (yield* outboxRows).map((r) => outboxMsgId(r.id)),
        "published in outbox id order")
    }))

  it.effect("crash after publish, before mark-sent: the rerun publishes nothing twice on the subject", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const nats = yield* Nats
      yield* commitEvents(10, "no-duplicate")
      // The relay that died had published some new rows (same msg id as it always uses) and not marked them ...
      const fresh = (yield* outboxRows).filter((r) => !r.sent)
      assert.strictEqual(fresh.length, 10)
      for (const row of fresh.slice(0, 6)) {
        const ack = yield* nats.publish(nats.subjects.event(row.subject), new TextEncoder().encode(JSON.stringify(row.payload)), {
          msgId: outboxMsgId(row.id)
        })
        assert.isFalse(ack.duplicate)
      }
      // ... and its last transaction, marking rows of the first test sent, never committed.
      yield* sql`UPDATE outbox SET sent_at = NULL`.pipe(Effect.orDie)
      const before = yield* duplicates

      yield* withRelays(1, allSent)
      const rows = yield* outboxRows
      assert.strictEqual(rows.length, 30)
      assertOnePerRow(rows, yield* eventMessages)
      assert.strictEqual((yield* duplicates) - before, 26, "every republished row was recognised as a duplicate")
    }))

  it.effect("several relays share the outbox (SKIP LOCKED): each row is published by exactly one of them", () =>
    Effect.gen(function*() {
      yield* commitEvents(150, "shared")
      const before = yield* duplicates
      yield* withRelays(3, allSent)
      assertOnePerRow(yield* outboxRows, yield* eventMessages)
      assert.strictEqual((yield* duplicates) - before, 0, "no relay published a row another one had")
    }))

  it.effect("JetStream unavailable: the relay retries with its schedule and publishes once the stream is back", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const stream = nats.subjects.streams.events
      const saved = yield* nats.use("streams.info", ({ jsm }) => jsm.streams.info(stream)).pipe(Effect.orDie)
      yield* nats.use("streams.delete", ({ jsm }) => jsm.streams.delete(stream)).pipe(Effect.orDie)
      yield* commitEvents(5, "outage")

      yield* withRelays(1, Effect.gen(function*() {
        // Publishing fails (no stream answers): the rows wait, unsent, while the relay retries.
        yield* Effect.sleep("600 millis")
        assert.strictEqual((yield* outboxRows).filter((r) => !r.sent).length, 5)
        yield* nats.use("streams.add", ({ jsm }) => jsm.streams.add(saved.config)).pipe(Effect.orDie)
        yield* allSent
      }))
      // the stream was re-created empty: it holds exactly the rows written during the outage
      const outage = (yield* outboxRows).filter((r) => (r.payload as { readonly tag: string }).tag === "outage")
      assertOnePerRow(outage, yield* eventMessages)
    }))
})
