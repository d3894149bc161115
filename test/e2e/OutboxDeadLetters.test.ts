/**
 * Invariant 14 for the outbox, against real PostgreSQL and NATS: a row NATS cannot take (bigger than the server's
 * max_payload, over the stream's max message size, an invalid subject) is dead-lettered with its reason and never
 * blocks the rows behind it; later changes keep flowing. User ids map to distinct notification subjects.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Metric, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { DeadLetters } from "../../services/DeadLetters.ts"
import { Nats } from "../../services/Nats.ts"
import { RetryPolicyState } from "../../services/RetryPolicies.ts"
import { Notifications } from "../../services/Notifications.ts"
import { Outbox } from "../../services/Outbox.ts"
import { OutboxDeadLetters, outboxDeadLetteredTotal } from "../../streams/OutboxDeadLetters.ts"
import { makeOutboxRelay, outboxMsgId } from "../../streams/OutboxRelay.ts"
import { Prefix } from "../../services/Subjects.ts"
import { eventMessages } from "../events/eventsStream.ts"
import { eventually } from "../support/app.ts"
import { TestDatabase } from "../support/database.ts"

const prefix = Prefix.make(`T${randomUUID().replaceAll("-", "").slice(0, 12)}`)
const FIN_OPS = "fin-ops"

const DeleteStreams = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  yield* Effect.addFinalizer(() =>
    Effect.forEach(Object.values(nats.subjects.streams), (name) =>
      nats.use(`streams.delete(${name})`, ({ jsm }) => jsm.streams.delete(name)).pipe(Effect.ignore), { discard: true })
  )
}))

const config = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
  ["BILLING_OUTBOX_POLL", "50 millis"],
  ["BILLING_OUTBOX_BATCH", "4"],
  ["BILLING_OUTBOX_RETRY_BASE_DELAY", "50 millis"],
  ["BILLING_OUTBOX_RETRY_MAX_DELAY", "200 millis"],
  ["APP_BILLING_FINANCE_OPS_USER_ID", FIN_OPS]
])))

const TestLayer = Layer.mergeAll(DeleteStreams, Outbox.Default, Notifications.Default, OutboxDeadLetters.Default, DeadLetters.Default, RetryPolicyState.Default).pipe(
  Layer.provideMerge(Layer.merge(Nats.layerWith({ prefix }), TestDatabase)),
  Layer.provide(config)
)

const OutboxRow = Schema.Struct({
  id: Schema.String,
  subject: Schema.String,
  sent: Schema.Boolean,
  dead_letter_reason: Schema.NullOr(Schema.String)
})
const outboxRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT id::text AS id, subject, sent_at IS NOT NULL AS sent, dead_letter_reason FROM outbox ORDER BY outbox.id`).pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.Array(OutboxRow))),
    Effect.orDie
  )
const settled = eventually(outboxRows, (rows) => rows.every((r) => r.sent || r.dead_letter_reason !== null), "every row settled")

/** Any payload on any subject: what the relay must cope with, whatever a producer's codec allowed. */
const enqueue = (subject: string, payload: unknown) =>
  Effect.flatMap(Outbox, (outbox) => outbox.enqueue({ schema: Schema.Unknown, subject: () => subject }, payload)).pipe(Effect.orDie)

const DlqRecord = Schema.parseJson(Schema.Struct({
  outbox_id: Schema.String,
  subject: Schema.String,
  reason: Schema.String,
  payload_bytes: Schema.Number
}))
const dlqRecords = Effect.flatMap(Nats, (nats) =>
  nats.use("dlq", async ({ jsm }) => {
    const { state } = await jsm.streams.info(nats.subjects.streams.dlq)
    const found: Array<{ subject: string; size: number; text: string }> = []
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(nats.subjects.streams.dlq, { seq })
      if (m !== null) found.push({ subject: m.subject, size: m.data.byteLength, text: m.string() })
    }
    return found
  })).pipe(Effect.orDie)

const deadLettered = (reason: string) =>
  Metric.value(Metric.tagged(outboxDeadLetteredTotal, "reason", reason)).pipe(Effect.map((s) => s.count))

layer(TestLayer, { timeout: 90_000, excludeTestServices: true })("Outbox dead letters (real PostgreSQL and NATS)", (it) => {
  it.effect("a 1.5 MB row between normal rows is dead-lettered; the others go out in order and later changes still flow", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const sql = yield* SqlClient.SqlClient
      const before = { big: yield* deadLettered("payload_too_large"), subject: yield* deadLettered("invalid_subject") }
      const first = yield* enqueue("plan.changed.v1", { n: 1 })
      yield* enqueue("audit.payment", { n: 2 })
      const big = yield* enqueue("plan.changed.v1", { n: 3, blob: "x".repeat(1_500_000) })
      // the column CHECK lets this through; NATS would refuse an empty token
      const bad = yield* enqueue("audit..payment", { n: 4 })
      yield* enqueue("notifications.user-1", { n: 5 })
      yield* enqueue("plan.changed.v1", { n: 6 })

      yield* Effect.scoped(Effect.gen(function*() {
        const relay = yield* makeOutboxRelay
        yield* Effect.forkScoped(relay.loop)
        yield* settled

        const rows = yield* outboxRows
        const reasonOf = (id: string) => rows.find((r) => r.id === id)?.dead_letter_reason ?? ""
        assert.match(reasonOf(big), /^payload_too_large: payload is \d+ bytes; the server's max_payload is \d+/)
        assert.match(reasonOf(bad), /^invalid_subject/)
        // the normal rows, and the finance_ops notifications about the two set aside, in outbox id order
        const published = rows.filter((r) => r.id !== big && r.id !== bad)
        assert.isTrue(published.every((r) => r.sent))
        const notes = published.filter((r) => r.subject === `notifications.${FIN_OPS}`)
        assert.strictEqual(notes.length, 2, "finance_ops told about each")
        const messages = yield* eventually(eventMessages, (m) => m.length === published.length, "published rows on the stream")
        assert.deepStrictEqual(messages.map((m) => m.msgId), published.map((r) => outboxMsgId(r.id)))
        const told = messages.filter((m) => m.subject === nats.subjects.event(`notifications.${FIN_OPS}`))
        assert.deepStrictEqual(told.map((m) => (m.body as { kind: string }).kind), ["outbox_dead_letter", "outbox_dead_letter"])

        const dlq = yield* dlqRecords
        assert.deepStrictEqual(dlq.map((m) => m.subject), [nats.subjects.dlq("outbox"), nats.subjects.dlq("outbox")])
        const records = dlq.map((m) => Schema.decodeUnknownSync(DlqRecord)(m.text))
        assert.deepStrictEqual(records.map((r) => [r.outbox_id, r.reason]), [[big, "payload_too_large"], [bad, "invalid_subject"]])
        assert.isAbove(records[0]!.payload_bytes, 1_500_000)
        assert.isBelow(dlq[0]!.size, 2048, "the record, not the oversized payload")
        assert.strictEqual((yield* deadLettered("payload_too_large")) - before.big, 1)
        assert.strictEqual((yield* deadLettered("invalid_subject")) - before.subject, 1)

        // the relay is still running: a later change goes out
        const later = yield* enqueue("plan.changed.v1", { n: 7 })
        yield* eventually(eventMessages, (m) => m.some((x) => x.msgId === outboxMsgId(later)), "a later event published")
        assert.isTrue(Number(later) > Number(first))
        // dead-lettered rows keep their payload for the replay
        const [kept] = yield* sql<{ n: number }>`SELECT octet_length(payload::text) AS n FROM outbox WHERE id = ${big}`.pipe(Effect.orDie)
        assert.isAbove(kept!.n, 1_500_000)
      }))
    }))

  it.effect("a message the stream refuses as too large (its max_msg_size) is dead-lettered, not retried forever", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const stream = nats.subjects.streams.events
      yield* nats.use("streams.update", ({ jsm }) => jsm.streams.update(stream, { max_msg_size: 4096 })).pipe(Effect.orDie)
      const refused = yield* enqueue("audit.plan", { blob: "y".repeat(8000) })
      const after = yield* enqueue("audit.plan", { small: true })
      yield* Effect.scoped(Effect.gen(function*() {
        const relay = yield* makeOutboxRelay
        yield* Effect.forkScoped(relay.loop)
        yield* settled
      }))
      yield* nats.use("streams.update", ({ jsm }) => jsm.streams.update(stream, { max_msg_size: -1 })).pipe(Effect.orDie)
      const rows = yield* outboxRows
      assert.match(rows.find((r) => r.id === refused)?.dead_letter_reason ?? "", /^payload_too_large/)
      assert.isTrue(rows.find((r) => r.id === after)?.sent)

      // the cause fixed (the stream takes it now), the operator replays the record: the row is pending again and goes out
      const deadLetters = yield* DeadLetters
      const sql = yield* SqlClient.SqlClient
      const page = yield* deadLetters.list({ consumer: "outbox" }).pipe(Effect.orDie)
      const letters = yield* Effect.forEach(page.items, (item) => deadLetters.get(Number(item.id)).pipe(Effect.orDie))
      const letter = letters.find((l) => l.msg_id === `outbox:${refused}`)!
      assert.strictEqual(letter.consumer, "outbox")
      assert.match(letter.reason, /^payload_too_large/)
      const replayed = yield* deadLetters.replay(Number(letter.id), { id: "ops-1", requestId: "req-replay-1" }).pipe(Effect.orDie)
      assert.deepStrictEqual(replayed, { id: letter.id, replayed_to: `outbox:${refused}`, msg_id: null, duplicate: false })
      const again = yield* Effect.flip(deadLetters.replay(Number(letter.id), { id: "ops-1" }))
      assert.strictEqual(again._tag, "DeadLetterNotFound")
      yield* Effect.scoped(Effect.gen(function*() {
        const relay = yield* makeOutboxRelay
        yield* Effect.forkScoped(relay.loop)
        yield* settled
      }))
      const [row] = yield* sql<{ sent: boolean; reason: string | null }>`SELECT sent_at IS NOT NULL AS sent, dead_letter_reason AS reason
        FROM outbox WHERE id = ${refused}`.pipe(Effect.orDie)
      assert.deepStrictEqual(row, { sent: true, reason: null })
      const audited = yield* sql<{ actor: string; action: string; request_id: string }>`SELECT actor, action, request_id FROM audit_log
        WHERE resource = ${`dead_letter:${letter.id}`}`.pipe(Effect.orDie)
      assert.deepStrictEqual(audited, [{ actor: "ops-1", action: "dead_letter.replay", request_id: "req-replay-1" }])
      // the finance_ops notification names the dead letter to replay
      const [note] = yield* sql<{ payload: { dead_letter_id: number; body: string } }>`SELECT payload FROM notifications
        WHERE kind = 'outbox_dead_letter' AND payload->>'outbox_id' = ${refused}`.pipe(Effect.orDie)
      assert.strictEqual(note!.payload.dead_letter_id, Number(letter.id))
      assert.include(note!.payload.body, `POST /v1/billing/admin/dead-letters/${letter.id}/replay`)
    }))

  it.effect("users a.b and a_b get different notification subjects", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const notifications = yield* Notifications
      const sql = yield* SqlClient.SqlClient
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* notifications.notify("a.b", "subscription.expired", { plan_slug: "pro" })
        yield* notifications.notify("a_b", "subscription.expired", { plan_slug: "pro" })
      })).pipe(Effect.orDie)
      yield* Effect.scoped(Effect.gen(function*() {
        const relay = yield* makeOutboxRelay
        yield* Effect.forkScoped(relay.loop)
        yield* settled
      }))
      const messages = yield* eventMessages
      const to = (user: string) => messages.filter((m) => (m.body as { user_id?: string }).user_id === user).map((m) => m.subject)
      assert.deepStrictEqual(to("a.b"), [nats.subjects.event("notifications.a_2Eb")])
      assert.deepStrictEqual(to("a_b"), [nats.subjects.event("notifications.a_5Fb")])
    }))
})
