import { PgClient } from "@effect/sql-pg"
import { Config, Data, Effect, Redacted } from "effect"

export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/evm_billing"

export const DatabaseUrl = Config.redacted("DATABASE_URL").pipe(
  Config.withDefault(Redacted.make(DEFAULT_DATABASE_URL))
)

/** The database name and a URL to the server's maintenance database, used to create it. */
export const splitDatabaseUrl = (url: string) => {
  const parsed = new URL(url)
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""))
  if (database === "") throw new Error("DATABASE_URL names no database")
  parsed.pathname = "/postgres"
  return { database, maintenanceUrl: parsed.toString() }
}

export class InvalidDatabaseUrl extends Data.TaggedError("InvalidDatabaseUrl")<{ readonly message: string }> {}

/** Creates the database named by the URL when it does not exist (safe when two processes race). */
export const ensureDatabase = (url: Redacted.Redacted) =>
  Effect.gen(function*() {
    const { database, maintenanceUrl } = yield* Effect.try({
      try: () => splitDatabaseUrl(Redacted.value(url)),
      catch: () => new InvalidDatabaseUrl({ message: "DATABASE_URL is not a postgres:// URL naming a database" })
    })
    return yield* Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const rows = yield* sql`SELECT 1 FROM pg_database WHERE datname = ${database}`
      if (rows.length > 0) return false
      yield* sql`CREATE DATABASE ${sql(database)}`.pipe(
        // 42P04: another process created it first.
        Effect.catchIf((e) => (e.cause as { code?: string } | undefined)?.code === "42P04", () => Effect.void)
      )
      yield* Effect.logInfo("created database").pipe(Effect.annotateLogs("database", database))
      return true
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(maintenanceUrl), maxConnections: 1 })))
  })

export const PgLive = PgClient.layerConfig({
  url: DatabaseUrl,
  maxConnections: Config.integer("DATABASE_POOL_SIZE").pipe(Config.withDefault(10)),
  applicationName: Config.succeed("evm-billing")
})

/** Database layer for a given URL (tests and CLI overrides). */
export const pgLayer = (url: string) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: 10, applicationName: "evm-billing" })
