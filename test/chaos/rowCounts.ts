/**
 * Row counts of every table a webhook's effects can touch: a scenario takes them before and after, and compares
 * what was written with what its valid requests explain (a reference payment's rows, times the payments).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { decodeRow } from "../../services/Rows.ts"

export const TABLES = [
  "processed_events",
  "payment_transactions",
  "ledger_transactions",
  "ledger_postings",
  "subscriptions",
  "subscription_grants",
  "notifications",
  "audit_log",
  "outbox",
  "chain_logs"
] as const

export type Counts = Record<string, number>

const decodeCounts = decodeRow(Schema.Record({ key: Schema.String, value: Schema.Number }))

export const rowCounts: Effect.Effect<Counts, never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const columns = TABLES.map((t) => sql`(SELECT count(*) FROM ${sql(t)})::int AS ${sql(t)}`)
  const rows = yield* sql`SELECT ${sql.csv(columns)}`
  return yield* decodeCounts(rows[0])
}).pipe(Effect.orDie)

export const diffCounts = (after: Counts, before: Counts): Counts =>
  Object.fromEntries(Object.keys(after).map((t) => [t, after[t]! - (before[t] ?? 0)]))

export const times = (counts: Counts, n: number): Counts => Object.fromEntries(Object.entries(counts).map(([t, c]) => [t, c * n]))
