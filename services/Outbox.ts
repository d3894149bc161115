import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { decodeIds } from "./Rows.ts"
import type { EventCodec } from "./StreamCodecs.ts"

/**
 * Events to publish, written through the caller's SQL transaction: they exist exactly when the change commits.
 * The OutboxRelay publishes them with `Nats-Msg-Id` = `outbox:<id>`, so a crash between publish and marking the
 * row sent publishes nothing twice.
 */
export class Outbox extends Effect.Service<Outbox>()("billing/Outbox", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    /** One event, encoded with its codec's Schema (a message that does not fit is a defect) to its subject. */
    const enqueue = Effect.fn("Outbox.enqueue")(function*<A, I>(codec: EventCodec<A, I>, message: A) {
      const payload = yield* Effect.orDie(Schema.encode(codec.schema)(message))
      const [row] = yield* sql`INSERT INTO outbox (subject, payload)
        VALUES (${codec.subject(message)}, ${JSON.stringify(payload, (_, v) => (typeof v === "bigint" ? v.toString() : v))}::jsonb)
        RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
      return row!.id
    })
    return { enqueue } as const
  })
}) {}
