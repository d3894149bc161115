/**
 * DESIGN.md's money invariants as checks over the database, shared by every chaos scenario: each returns what is
 * broken (ids or readable lines, empty when the invariant holds), so a scenario can count, print or wait on it.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { decodeRows } from "../../services/Rows.ts"
import { addInterval } from "../../src/domain/Period.ts"

const Id = Schema.Struct({ id: Schema.String })
const decodeIds = decodeRows(Id)

const PaymentPostings = decodeRows(Schema.Struct({ id: Schema.String, status: Schema.String, live: Schema.Number }))

/** A payment ledger transaction that no reversal or refund has taken back. */
const livePayment = (sql: SqlClient.SqlClient) =>
  sql`l.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM ledger_transactions r
    WHERE r.id IN ('reversal:' || substr(l.id, 9), 'refund:' || substr(l.id, 9)))`

/**
 * Invariant 2 for the orders a scenario paid (`paymentIds`, the checkouts' transaction ids): `lost` are paid orders
 * not confirmed or with no live payment posting; `duplicated` are payments (any, not only these) posted more than
 * once. A payment reversed by a reorg and confirmed again has one live posting: that is not a duplicate.
 */
export const exactlyOnce = (paymentIds: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const live = livePayment(sql)
    const paid = paymentIds.length === 0 ? [] : yield* sql`SELECT t.id::text AS id, t.status,
        count(l.id) FILTER (WHERE ${live})::int AS live
      FROM payment_transactions t LEFT JOIN ledger_transactions l ON l.payment_id = t.id
      WHERE t.id IN ${sql.in(paymentIds)} GROUP BY t.id, t.status`.pipe(Effect.flatMap(PaymentPostings))
    const settled = new Set(paid.filter((p) => p.status === "confirmed" && p.live === 1).map((p) => p.id))
    const duplicated = yield* sql`SELECT l.payment_id::text AS id FROM ledger_transactions l WHERE ${live}
      GROUP BY l.payment_id HAVING count(*) > 1`.pipe(Effect.flatMap(decodeIds))
    return {
      lost: paymentIds.filter((id) => !settled.has(id)),
      duplicated: duplicated.map((r) => r.id)
    } as const
  })

/** Invariant 3: ledger transactions whose postings do not sum to zero per asset (sum of debits = sum of credits). */
export const ledgerBalanced = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT DISTINCT ledger_transaction_id AS id FROM ledger_postings
    GROUP BY ledger_transaction_id, asset HAVING sum(amount) <> 0`).pipe(
    Effect.flatMap(decodeIds),
    Effect.map((rows) => rows.map((r) => r.id))
  )

const OutboxRows = decodeRows(Schema.Struct({ pending: Schema.Number, dead: Schema.Array(Schema.String) }))

/** Outbox rows not yet published (`pending`) and rows set aside, each as `<id>: <reason>` (invariant 14). */
export const outboxDrained = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT
    (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead_lettered_at IS NULL)::int AS pending,
    coalesce((SELECT array_agg(id || ': ' || dead_letter_reason ORDER BY id) FROM outbox
      WHERE dead_lettered_at IS NOT NULL), '{}') AS dead`).pipe(
    Effect.flatMap(OutboxRows),
    Effect.map((rows) => rows[0] ?? { pending: 0, dead: [] })
  )

const Subscription = decodeRows(Schema.Struct({
  id: Schema.String,
  status: Schema.String,
  start: Schema.DateFromSelf,
  end: Schema.DateFromSelf,
  months: Schema.Number,
  grants: Schema.Number
}))

/**
 * Subscriptions agree with payments (billing-rules): a current subscription's period is exactly what its held grants
 * bought, an expired one holds none, only confirmed payments grant, and revenue is kept only for time bought.
 * Returns one readable line per violation.
 */
export const subscriptionsConsistent = (users?: ReadonlyArray<string>) => Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  /** Only these users' rows, when given (the property test checks its own users on a shared database). */
  const of = (column: string) => users === undefined ? sql`TRUE` : sql`${sql(column)} IN ${sql.in(users)}`
  const out: Array<string> = []
  // Time held now: not revoked, not a paid next period still waiting, not turned into credit.
  const held = sql`g.revoked_at IS NULL AND NOT g.deferred AND g.prorated_by IS NULL`
  const subs = yield* sql`SELECT s.id::text AS id, s.status, s.current_period_start AS start, s.current_period_end AS end,
      coalesce(sum(CASE g.interval WHEN 'year' THEN 12 ELSE 1 END) FILTER (WHERE ${held}), 0)::int AS months,
      count(g.payment_id) FILTER (WHERE ${held})::int AS grants
    FROM subscriptions s LEFT JOIN subscription_grants g ON g.subscription_id = s.id
    WHERE ${of("s.user_id")} GROUP BY s.id`.pipe(
    Effect.flatMap(Subscription)
  )
  for (const s of subs) {
    if (s.status === "active" || s.status === "past_due") {
      const expected = addInterval(s.start, "month", s.months)
      if (s.months === 0 || expected.getTime() !== s.end.getTime()) {
        out.push(`subscription ${s.id} ${s.status} ends ${s.end.toISOString()}, its ${s.grants} grants buy until ${expected.toISOString()}`)
      }
    } else if (s.status === "expired" && s.grants > 0) {
      out.push(`subscription ${s.id} expired with ${s.grants} unrevoked grants`)
    }
  }
  const ungranted = yield* sql`SELECT t.id::text AS id FROM payment_transactions t
    WHERE ${of("t.user_id")} AND t.status = 'confirmed'
      AND NOT EXISTS (SELECT 1 FROM subscription_grants g WHERE g.payment_id = t.id AND g.revoked_at IS NULL)
      AND EXISTS (SELECT 1 FROM ledger_transactions l JOIN ledger_postings p ON p.ledger_transaction_id = l.id
        WHERE l.payment_id = t.id AND l.kind = 'payment' AND p.account LIKE 'revenue:%')`.pipe(Effect.flatMap(decodeIds))
  for (const r of ungranted) out.push(`confirmed payment ${r.id} keeps revenue but bought nothing`)
  const stray = yield* sql`SELECT g.payment_id::text AS id FROM subscription_grants g
    JOIN payment_transactions t ON t.id = g.payment_id
    WHERE ${of("t.user_id")} AND g.revoked_at IS NULL AND t.status <> 'confirmed'`.pipe(Effect.flatMap(decodeIds))
  for (const r of stray) out.push(`payment ${r.id} is not confirmed but still grants a period`)
  return out
})
