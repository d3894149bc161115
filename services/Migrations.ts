import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Migrator } from "@effect/sql"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"

const TABLE = "billing_migrations"
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url))

/** Loads `NNN_name.sql` files; each runs as one multi-statement script. */
const sqlFileLoader = (dir: string): Migrator.Loader<FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const files = yield* fs.readDirectory(dir)
    const migrations = files.flatMap((file) => {
      const match = /^(\d+)_([a-z0-9_]+)\.sql$/.exec(file)
      return match ? [[Number(match[1]), match[2], file] as const] : []
    })
    return migrations
      .sort((a, b) => a[0] - b[0])
      .map(([id, name, file]): Migrator.ResolvedMigration => [
        id,
        name,
        Effect.map(fs.readFileString(path.join(dir, file)), (text) =>
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text)))
      ])
  }).pipe(Effect.mapError((cause) =>
    new Migrator.MigrationError({ reason: "import-error", message: `cannot read migrations in ${dir}`, cause })
  ))

const migrate = Migrator.make({})

/**
 * Applies pending migrations once. A transaction-scoped advisory lock serialises concurrent starters;
 * the tracking table is created inside the lock so two processes cannot race on it.
 */
export const runMigrations = (dir: string = MIGRATIONS_DIR) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const loader = sqlFileLoader(dir).pipe(
      Effect.provideService(FileSystem.FileSystem, fs),
      Effect.provideService(Path.Path, path)
    )
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext('evm-billing:migrations'))`
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(TABLE)} (
        migration_id integer PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
      return yield* migrate({ loader, table: TABLE })
    }))
  }).pipe(Effect.withSpan("Migrations.run"))
