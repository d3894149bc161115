import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** NATS subject tokens may not contain '.', '*', '>' or spaces: user ids and kinds are made safe. */
export const subjectToken = (value: string) => value.replace(/[^A-Za-z0-9_-]/g, "_")

/**
 * Events to publish, written through the caller's SQL transaction: they exist exactly when the change commits.
 * The OutboxRelay publishes them with `Nats-Msg-Id` = `outbox:<id>`, so a crash between publish and marking the
 * row sent publishes nothing twice.
 */
export class Outbox extends Effect.Service<Outbox>()("billing/Outbox", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const enqueue = Effect.fn("Outbox.enqueue")(function*(subject: string, payload: unknown) {
      const [row] = yield* sql<{ id: string }>`INSERT INTO outbox (subject, payload)
        VALUES (${subject}, ${JSON.stringify(payload, (_, v) => (typeof v === "bigint" ? v.toString() : v))}::jsonb)
        RETURNING id::text AS id`
      return row!.id
    })
    return { enqueue } as const
  })
}) {}
