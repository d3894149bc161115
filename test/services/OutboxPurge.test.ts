/** Outbox housekeeping (issue 10, item 7): sent rows past the retention go; unsent and dead-lettered rows stay. */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Schema } from "effect"
import { purgeSentOutbox } from "../../streams/Janitor.ts"
import { TestDatabase } from "../support/database.ts"

const Ids = Schema.Array(Schema.Struct({ subject: Schema.String }))

layer(TestDatabase, { excludeTestServices: true })("outbox purge", (it) => {
  it.effect("deletes rows sent longer ago than the retention, oldest first, in bounded batches; keeps the rest", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const row = (subject: string, sentAgo: string | null, deadLettered = false) =>
        sql`INSERT INTO outbox (subject, payload, created_at, sent_at, dead_lettered_at, dead_letter_reason)
          VALUES (${subject}, '{}'::jsonb, now() - interval '30 days',
            ${sentAgo === null ? null : sql`now() - ${sentAgo}::interval`},
            ${deadLettered ? sql`now() - interval '30 days'` : null}, ${deadLettered ? "payload_too_large: test" : null})`
      yield* row("sent.old", "8 days")
      yield* row("sent.recent", "1 day")
      yield* row("unsent.old", null)
      yield* row("dead.old", null, true)
      yield* row("sent.older", "20 days")

      assert.strictEqual(yield* purgeSentOutbox(Duration.days(7)), 2)
      const left = Schema.decodeUnknownSync(Ids)(yield* sql`SELECT subject FROM outbox ORDER BY id`)
      assert.deepStrictEqual(left.map((r) => r.subject), ["sent.recent", "unsent.old", "dead.old"])
      assert.strictEqual(yield* purgeSentOutbox(Duration.days(7)), 0, "nothing more to purge")
      assert.strictEqual(yield* purgeSentOutbox(Duration.hours(1)), 1, "a shorter retention takes the recent one")
    }).pipe(Effect.orDie))
})
