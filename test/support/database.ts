import { NodeContext } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { pgLayer } from "../../services/Database.ts"
import { runMigrations } from "../../services/Migrations.ts"

const SERVER = "postgres://postgres@127.0.0.1:5432"

const admin = PgClient.layer({ url: Redacted.make(`${SERVER}/postgres`), maxConnections: 1 })

const adminSql = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(PgClient.PgClient, f).pipe(Effect.provide(admin), Effect.orDie)

/** A fresh database for one test file, dropped when the scope closes. */
export const freshDatabaseUrl = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `billing_test_${randomBytes(6).toString("hex")}`
    yield* adminSql((sql) => sql`CREATE DATABASE ${sql(name)}`)
    return { name, url: `${SERVER}/${name}` }
  }),
  ({ name }) => adminSql((sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`)
)

/** PgClient + SqlClient on a fresh, migrated database. */
export const TestDatabase = Layer.unwrapScoped(Effect.gen(function*() {
  const { url } = yield* freshDatabaseUrl
  const layer = pgLayer(url)
  yield* runMigrations().pipe(Effect.provide(Layer.merge(layer, NodeContext.layer)), Effect.orDie)
  return Layer.merge(layer, Layer.succeed(TestDatabaseUrl, url))
}))

export class TestDatabaseUrl extends Context.Tag("test/TestDatabaseUrl")<TestDatabaseUrl, string>() {}
