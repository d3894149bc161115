import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { pgLayer } from "../../services/Database.ts"
import { readdirSync } from "node:fs"
import { MIGRATIONS_DIR, runMigrations } from "../../services/Migrations.ts"
import { freshDatabaseUrl, TestDatabase } from "../support/database.ts"

describe("migrations", () => {
  it.scoped("apply once, and two concurrent runs apply each file exactly once", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabaseUrl
      const run = runMigrations().pipe(Effect.provide(Layer.merge(pgLayer(url), NodeContext.layer)))
      const [a, b] = yield* Effect.all([run, run], { concurrency: 2 })
      const applied = [...a, ...b].map(([id]) => id).sort((x, y) => x - y)
      // Every numbered file on disk, once.
      const onDisk = readdirSync(MIGRATIONS_DIR).flatMap((f) => /^(\d+)_[a-z0-9_]+\.sql$/.exec(f)?.[1] ?? []).map(Number).sort((x, y) => x - y)
      assert.deepStrictEqual(applied, onDisk)
      assert.includeMembers(applied, [1, 2, 3, 4, 5, 6, 7, 8, 9])
      assert.strictEqual((yield* run).length, 0)
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ n: string }>`SELECT count(*)::text AS n FROM billing_migrations`).pipe(Effect.provide(pgLayer(url)))
      assert.strictEqual(rows[0]?.n, String(onDisk.length))
    }))

  it.layer(TestDatabase)((it) => {
    const seedPayment = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO plans (slug, title, interval, contract_slug) VALUES ('p1', 'P', 'month', 'c')`
      yield* sql`INSERT INTO payment_transactions (id, order_id, user_id, plan_id, contract_slug, network, chain_id,
        contract_address, token, amount, wallet_address, quote_signature, payload, expires_at)
        SELECT gen_random_uuid(), '0x' || repeat('a', 64), 'u1', id, 'c', 'anvil', 31337,
        '0x' || repeat('b', 40), 'native', 100, '0x' || repeat('c', 40), '0x', '{}', now() FROM plans`
      yield* sql`INSERT INTO ledger_transactions (id, payment_id, kind) SELECT 'lt1', id, 'payment' FROM payment_transactions`
    })

    it.effect("the ledger rejects unbalanced transactions and is append-only", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* seedPayment
        const unbalanced = yield* Effect.exit(sql.withTransaction(
          sql`INSERT INTO ledger_postings (ledger_transaction_id, account, asset, amount)
              VALUES ('lt1', 'treasury', 'anvil:native', 100), ('lt1', 'revenue', 'anvil:native', -99)`
        ))
        assert.isTrue(Exit.isFailure(unbalanced))
        yield* sql.withTransaction(
          sql`INSERT INTO ledger_postings (ledger_transaction_id, account, asset, amount)
              VALUES ('lt1', 'treasury', 'anvil:native', 100), ('lt1', 'revenue', 'anvil:native', -100)`
        )
        const update = yield* Effect.exit(sql`UPDATE ledger_postings SET amount = 5`)
        assert.isTrue(Exit.isFailure(update))
        const del = yield* Effect.exit(sql`DELETE FROM ledger_postings`)
        assert.isTrue(Exit.isFailure(del))
        const badStatus = yield* Effect.exit(sql`UPDATE payment_transactions SET status = 'weird'`)
        assert.isTrue(Exit.isFailure(badStatus))
        const failedWithoutReason = yield* Effect.exit(sql`UPDATE payment_transactions SET status = 'failed'`)
        assert.isTrue(Exit.isFailure(failedWithoutReason))
      }))
  })
})
