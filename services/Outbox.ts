import { SqlClient } from "@effect/sql"
import { Effect, FiberRef, Schema } from "effect"
import { decodeIds } from "./Rows.ts"
import type { EventCodec } from "./StreamCodecs.ts"

interface Row {
  readonly subject: string
  readonly payload: string
}

/** Set by `buffered`: events of the work it wraps are collected here instead of inserted one by one. */
const collecting = FiberRef.unsafeMake<Array<Row> | undefined>(undefined)

/**
 * Runs `self` (inside the caller's SQL transaction) with its outbox events collected, then writes them with one
 * multi-row INSERT in the same transaction, in the order they were enqueued: a batch of confirmations costs one
 * statement for its events instead of one per event. Nothing is written if `self` fails.
 */
export const buffered = (sql: SqlClient.SqlClient) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const rows: Array<Row> = []
    const a = yield* Effect.locally(self, collecting, rows)
    if (rows.length > 0) yield* sql`INSERT INTO outbox ${sql.insert(rows.map((r) => ({ subject: r.subject, payload: r.payload })))}`
    return a
  })

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
    /** One event, encoded with its codec's Schema (a message that does not fit is a defect) to its subject; its row id. */
    const enqueue = Effect.fn("Outbox.enqueue")(function*<A, I>(codec: EventCodec<A, I>, message: A) {
      const payload = yield* encode(codec, message)
      const [row] = yield* sql`INSERT INTO outbox (subject, payload) VALUES (${codec.subject(message)}, ${payload}::jsonb)
        RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
      return row!.id
    })
    /** Like `enqueue`, collected instead when inside `buffered`. */
    const add = Effect.fn("Outbox.add")(function*<A, I>(codec: EventCodec<A, I>, message: A) {
      const batch = yield* FiberRef.get(collecting)
      if (batch === undefined) return yield* Effect.asVoid(enqueue(codec, message))
      batch.push({ subject: codec.subject(message), payload: yield* encode(codec, message) })
    })
    return { enqueue, add } as const
  })
}) {}
