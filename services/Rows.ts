import type { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import { undoOnFailure } from "./BatchWrites.ts"

/** Rows are decoded at the SQL boundary; a row that does not fit its schema is a defect, not input. */
export const decodeRows = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknown(Schema.Array(schema))
  return (rows: ReadonlyArray<unknown>) => Effect.orDie(decode(rows))
}

export const decodeRow = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknown(schema)
  return (row: unknown) => Effect.orDie(decode(row))
}

/** `RETURNING id::text AS id` and `SELECT id::text AS id`: the row many statements return. */
export const decodeIds = decodeRows(Schema.Struct({ id: Schema.String }))

/** The `n` of `SELECT count(*)::int AS n` (0 without a row). */
export const countOf = (rows: ReadonlyArray<unknown>) =>
  Effect.map(decodeRows(Schema.Struct({ n: Schema.Number }))(rows), (r) => r[0]?.n ?? 0)

/** A Date column shown as an ISO string. */
export const IsoDate = Schema.transform(Schema.DateFromSelf, Schema.String, {
  strict: true,
  decode: (d) => d.toISOString(),
  encode: (s) => new Date(s)
})

/** PostgreSQL error code of a failed statement, if any. */
export const pgCode = (error: { readonly cause?: unknown }): string | undefined => {
  const cause = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}
export const UNIQUE_VIOLATION = "23505"
export const FOREIGN_KEY_VIOLATION = "23503"

const isSqlError = (e: unknown): e is SqlError => e instanceof SqlError

/** A unique violation becomes the given domain error; any other SQL failure is a defect. */
export const uniqueAs = <E2>(onDuplicate: () => E2) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, SqlError> | E2, R> =>
  Effect.catchAll(self, (e): Effect.Effect<never, Exclude<E, SqlError> | E2> => {
    if (!isSqlError(e)) return Effect.fail(e as Exclude<E, SqlError>)
    return pgCode(e) === UNIQUE_VIOLATION ? Effect.fail(onDuplicate()) : Effect.die(e)
  })

/**
 * Runs in a transaction; SQL failures (commit included) are defects. Inside a batch's transaction it is a savepoint,
 * so a unit that fails with its own typed error leaves none of its writes in the batch (nor its collected rows).
 */
export const transactional = (sql: SqlClient.SqlClient) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, SqlError>, R> =>
  Effect.catchAll(sql.withTransaction(undoOnFailure(self)), (e): Effect.Effect<never, Exclude<E, SqlError>> =>
    isSqlError(e) ? Effect.die(e) : Effect.fail(e as Exclude<E, SqlError>))
