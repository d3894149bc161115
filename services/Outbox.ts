import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { addAnnounced, type AnnouncedRows, type AnnouncedTable, type OutboxRow, pending } from "./BatchWrites.ts"
import { decodeIds, decodeRow } from "./Rows.ts"
import type { EventCodec } from "./StreamCodecs.ts"

const decodeInserted = decodeRow(Schema.Struct({ id: Schema.String, created_at: Schema.DateFromSelf }))

/**
 * Events to publish, written through the caller's SQL transaction: they exist exactly when the change commits.
 * The OutboxRelay publishes them with `Nats-Msg-Id` = `outbox:<id>`, so a crash between publish and marking the
 * row sent publishes nothing twice.
 */
export class Outbox extends Effect.Service<Outbox>()("billing/Outbox", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const encode = <A, I>(codec: EventCodec<A, I>, message: A) =>
      Effect.map(Effect.orDie(Schema.encode(codec.schema)(message)), (encoded) =>
        JSON.stringify(encoded, (_, v) => (typeof v === "bigint" ? v.toString() : v)))
    /** The row of one event. */
    const rowOf = <A, I>(codec: EventCodec<A, I>, message: A): Effect.Effect<OutboxRow> =>
      Effect.map(encode(codec, message), (payload) => ({ subject: codec.subject(message), payload }))
    /** One event, encoded with its codec's Schema (a message that does not fit is a defect) to its subject; its row id. */
    const enqueue = Effect.fn("Outbox.enqueue")(function*<A, I>(codec: EventCodec<A, I>, message: A) {
      const payload = yield* encode(codec, message)
      const [row] = yield* sql`INSERT INTO outbox (subject, payload) VALUES (${codec.subject(message)}, ${payload}::jsonb)
        RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
      return row!.id
    })
    /** Like `enqueue`, collected instead inside a batch (BatchWrites). */
    const add = Effect.fn("Outbox.add")(function*<A, I>(codec: EventCodec<A, I>, message: A) {
      const batch = yield* pending
      if (batch === undefined) return yield* Effect.asVoid(enqueue(codec, message))
      batch.outbox.push(yield* rowOf(codec, message))
    })
    /**
     * A row of `table` and the event announcing it, which carries the row's id and `created_at`: inserted now, or
     * inside a batch both collected and written at its end (BatchWrites).
     */
    const addRow = <T extends AnnouncedTable, A, I>(table: T, row: AnnouncedRows[T], codec: EventCodec<A, I>, message: (id: string, createdAt: Date) => A) =>
      Effect.gen(function*() {
        const batch = yield* pending
        if (batch !== undefined) return addAnnounced(batch, table, row, (id, at) => rowOf(codec, message(id, at)))
        const [inserted] = yield* sql`INSERT INTO ${sql(table)} ${sql.insert(row)} RETURNING id::text AS id, created_at`
        const { id, created_at } = yield* decodeInserted(inserted)
        yield* add(codec, message(id, created_at))
      })
    return { enqueue, add, addRow } as const
  })
}) {}
