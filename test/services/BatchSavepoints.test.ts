/**
 * A batch confirms many events in ONE SQL transaction (ConfirmBatch). An event whose check fails with its own typed
 * error after writing must leave none of its rows, while its batch-mates commit: each unit is a savepoint.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Data, Effect } from "effect"
import { transactional } from "../../services/Rows.ts"
import { TestDatabase } from "../support/database.ts"

class NotOurs extends Data.TaggedError("NotOurs")<{}> {}

layer(TestDatabase, { timeout: 60_000 })("units of work inside a batch transaction", (it) => {
  it.effect("a unit failing with a typed error after a write leaves no row; its batch-mates commit", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE batch_rows (id text PRIMARY KEY)`
      const unit = (id: string, fails: boolean) =>
        transactional(sql)(sql`INSERT INTO batch_rows (id) VALUES (${id})`.pipe(
          Effect.zipRight(fails ? Effect.fail(new NotOurs()) : Effect.void)
        ))
      const results = yield* sql.withTransaction(
        Effect.forEach([["a", false], ["poison", true], ["b", false]] as const, ([id, fails]) => Effect.either(unit(id, fails)))
      )
      assert.deepStrictEqual(results.map((r) => r._tag), ["Right", "Left", "Right"])
      const rows = yield* sql<{ id: string }>`SELECT id FROM batch_rows ORDER BY id`
      assert.deepStrictEqual(rows.map((r) => r.id), ["a", "b"])
    }))
})
