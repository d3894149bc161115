import { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import type { Dashboard, NetworkOverview, PayoutsPage, PayoutsParams, StatusCounts } from "../src/domain/Overview.ts"
import { PaymentStatus } from "../src/domain/Payment.ts"
import { PAYMENT_COLUMNS, PaymentRow, toHistoryItem } from "./Payments.ts"
import { PaymentCursor } from "./Cursor.ts"
import { decodeRows } from "./Rows.ts"


const WINDOW_DAYS = 30
const DAY_MS = 86_400_000

/** a / b rounded half away from zero (b > 0). */
export const divRound = (a: bigint, b: bigint): bigint => {
  const q = a / b
  const r = a % b
  const twice = 2n * (r < 0n ? -r : r)
  return twice >= b ? q + (a < 0n ? -1n : 1n) : q
}

/** n / d as a decimal string with 4 places, rounded half up (n, d >= 0, d > 0). */
export const ratio4 = (n: bigint, d: bigint): string => {
  const scaled = divRound(n * 10_000n, d)
  return `${scaled / 10_000n}.${(scaled % 10_000n).toString().padStart(4, "0")}`
}

const zeroCounts = (): Record<PaymentStatus, number> => ({
  pending: 0, seen: 0, confirmed: 0, failed: 0, expired: 0, reversed: 0, refunded: 0
})
const countsOf = (rows: ReadonlyArray<{ readonly status: PaymentStatus; readonly n: number }>): StatusCounts => {
  const counts = zeroCounts()
  for (const r of rows) counts[r.status] += r.n
  return counts
}

const Asset = { network: Schema.String, token: Schema.String }
const MrrRow = Schema.Struct({ ...Asset, subscriptions: Schema.Number, arr: Schema.BigInt })
const ArpuRow = Schema.Struct({ ...Asset, revenue: Schema.BigInt, paying_users: Schema.Number })
const DayRow = Schema.Struct({ day: Schema.String, ...Asset, amount: Schema.BigInt })
const CountRow = Schema.Struct({ status: Schema.String, n: Schema.Number })
const PaymentCountRow = Schema.Struct({ network: Schema.String, status: PaymentStatus, n: Schema.Number })
const ChurnRow = Schema.Struct({ active_at_start: Schema.Number, churned: Schema.Number })
const TimeRow = Schema.Struct({
  n: Schema.Number,
  average: Schema.NullOr(Schema.NumberFromString),
  p95: Schema.NullOr(Schema.NumberFromString)
})
const VolumeRow = Schema.Struct({ ...Asset, payments: Schema.Number, amount: Schema.BigInt })
const NetworkRow = Schema.Struct({ network: Schema.String, chain_id: Schema.NumberFromString, confirmations: Schema.Number, rpc_endpoints: Schema.Number })

/** finance_ops' read-only figures over payments, subscriptions and the ledger. */
export class Overview extends Effect.Service<Overview>()("billing/Overview", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = <A, I>(schema: Schema.Schema<A, I>) => {
      const decode = decodeRows(schema)
      return <E, R>(query: Effect.Effect<ReadonlyArray<unknown>, E, R>) => query.pipe(Effect.orDie, Effect.flatMap(decode))
    }
    /** One consistent snapshot for all the figures of a response. */
    const snapshot = <A, E, R>(self: Effect.Effect<A, E, R>) =>
      sql.withTransaction(Effect.zipRight(sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`, self)).pipe(
        Effect.catchTag("SqlError", Effect.die)
      )

    const paymentCounts = rows(PaymentCountRow)(
      sql`SELECT network, status, count(*)::int AS n FROM payment_transactions GROUP BY network, status`
    )
    const volume = rows(VolumeRow)(
      sql`SELECT network, token, count(*)::int AS payments, sum(coalesce(paid_amount, amount))::text AS amount
        FROM payment_transactions WHERE status = 'confirmed' GROUP BY network, token ORDER BY network, token`
    )

    const dashboard = Effect.fn("Overview.dashboard")(function*() {
      const nowMs = yield* Clock.currentTimeMillis
      const to = new Date(nowMs).toISOString()
      const from = new Date(nowMs - WINDOW_DAYS * DAY_MS).toISOString()

      return yield* snapshot(Effect.gen(function*() {
        // Monthly prices count 12 times, yearly ones once: the sum is the exact ARR; MRR = ARR / 12.
        const mrr = yield* rows(MrrRow)(sql`SELECT t.network, t.token, count(*)::int AS subscriptions,
            sum(CASE WHEN p.interval = 'year' THEN 1 ELSE 12 END * coalesce(pp.amount, t.amount))::text AS arr
          FROM subscriptions s
          JOIN plans p ON p.id = s.plan_id
          JOIN payment_transactions t ON t.id = s.last_payment_id
          LEFT JOIN plan_prices pp ON pp.plan_id = s.plan_id AND pp.network = t.network AND pp.token = t.token
          WHERE s.status = 'active' GROUP BY t.network, t.token ORDER BY t.network, t.token`)
        const [unpriced] = yield* rows(Schema.Struct({ n: Schema.Number }))(
          sql`SELECT count(*)::int AS n FROM subscriptions WHERE status = 'active' AND last_payment_id IS NULL`
        )

        // Revenue = the revenue accounts' postings (credits negative), net of reversals and refunds, in the window.
        const revenue = sql`SELECT split_part(lp.asset, ':', 1) AS network, split_part(lp.asset, ':', 2) AS token,
            -lp.amount AS amount, lp.created_at, lt.kind, t.user_id
          FROM ledger_postings lp
          JOIN ledger_transactions lt ON lt.id = lp.ledger_transaction_id
          JOIN payment_transactions t ON t.id = lt.payment_id
          WHERE lp.account LIKE 'revenue:%' AND lp.created_at >= ${from}::timestamptz AND lp.created_at < ${to}::timestamptz`
        const arpu = yield* rows(ArpuRow)(sql`SELECT network, token, sum(amount)::text AS revenue,
            count(DISTINCT user_id) FILTER (WHERE kind = 'payment')::int AS paying_users
          FROM (${revenue}) r GROUP BY network, token ORDER BY network, token`)
        const days = yield* rows(DayRow)(sql`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, network, token,
            sum(amount)::text AS amount
          FROM (${revenue}) r GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)

        const subscriptionCounts = yield* rows(CountRow)(
          sql`SELECT status, count(*)::int AS n FROM subscriptions GROUP BY status`
        )
        // No status history is kept: a canceled/expired subscription ended when it last changed (updated_at).
        const [churn] = yield* rows(ChurnRow)(sql`WITH start AS (
            SELECT user_id, status, updated_at FROM subscriptions
            WHERE created_at <= ${from}::timestamptz
              AND NOT (status IN ('canceled', 'expired') AND updated_at <= ${from}::timestamptz))
          SELECT count(DISTINCT user_id)::int AS active_at_start,
            count(DISTINCT user_id) FILTER (WHERE status IN ('canceled', 'expired') AND updated_at < ${to}::timestamptz
              AND NOT EXISTS (SELECT 1 FROM subscriptions c WHERE c.user_id = start.user_id AND c.status IN ('active', 'past_due'))
            )::int AS churned
          FROM start`)

        const [time] = yield* rows(TimeRow)(sql`SELECT count(*)::int AS n,
            round(avg(extract(epoch FROM confirmed_at - created_at)), 3)::text AS average,
            round(percentile_disc(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM confirmed_at - created_at)), 3)::text AS p95
          FROM payment_transactions WHERE confirmed_at >= ${from}::timestamptz AND confirmed_at < ${to}::timestamptz`)

        const byStatus = new Map(subscriptionCounts.map((r) => [r.status, r.n]))
        const active = churn?.active_at_start ?? 0
        const churned = churn?.churned ?? 0
        return {
          as_of: to,
          window: { from, to },
          mrr: mrr.map((r) => ({
            network: r.network,
            token: r.token,
            subscriptions: r.subscriptions,
            arr: r.arr.toString(),
            mrr: (r.arr / 12n).toString(),
            mrr_remainder_twelfths: (r.arr % 12n).toString()
          })),
          mrr_unpriced_subscriptions: unpriced?.n ?? 0,
          arpu: arpu.map((r) => ({
            network: r.network,
            token: r.token,
            revenue: r.revenue.toString(),
            paying_users: r.paying_users,
            arpu: r.paying_users === 0 ? null : divRound(r.revenue, BigInt(r.paying_users)).toString()
          })),
          subscriptions: {
            active: byStatus.get("active") ?? 0,
            past_due: byStatus.get("past_due") ?? 0,
            canceled: byStatus.get("canceled") ?? 0,
            expired: byStatus.get("expired") ?? 0
          },
          churn: { active_at_start: active, churned, rate: active === 0 ? null : ratio4(BigInt(churned), BigInt(active)) },
          revenue_per_day: days.map((d) => ({ ...d, amount: d.amount.toString() })),
          confirmation_time: { payments: time?.n ?? 0, average_seconds: time?.average ?? null, p95_seconds: time?.p95 ?? null },
          payments: countsOf(yield* paymentCounts),
          volume: (yield* volume).map((v) => ({ ...v, amount: v.amount.toString() }))
        } satisfies Dashboard
      }))
    })

    /** Per configured network; RPC health is added by the caller (it lives in this process, not in SQL). */
    const networks = Effect.fn("Overview.networks")(function*() {
      return yield* snapshot(Effect.gen(function*() {
        const configured = yield* rows(NetworkRow)(sql`SELECT network, chain_id::text AS chain_id, confirmations,
            jsonb_array_length(rpc_endpoints) AS rpc_endpoints FROM crypto_config ORDER BY network`)
        const counts = yield* paymentCounts
        const volumes = yield* volume
        return configured.map((n): Omit<NetworkOverview, "rpc_health"> => ({
          ...n,
          payments: countsOf(counts.filter((c) => c.network === n.network)),
          volume: volumes.filter((v) => v.network === n.network).map((v) => ({
            token: v.token,
            payments: v.payments,
            amount: v.amount.toString()
          }))
        }))
      }))
    })

    /** Transactions newest first, filtered; keyset paging on (created_at, id) at microsecond precision. */
    const payouts = Effect.fn("Overview.payouts")(function*(params: PayoutsParams) {
      const limit = params.limit ?? 50
      const after = params.cursor === undefined ? undefined : yield* PaymentCursor.decode(params.cursor)
      const where = sql.and([
        ...(params.status === undefined ? [] : [sql`t.status = ${params.status}`]),
        ...(params.network === undefined ? [] : [sql`t.network = ${params.network}`]),
        ...(params.token === undefined ? [] : [sql`t.token = ${params.token}`]),
        ...(params.contract === undefined ? [] : [sql`t.contract_slug = ${params.contract}`]),
        ...(params.from === undefined ? [] : [sql`t.created_at >= ${params.from.toISOString()}::timestamptz`]),
        ...(params.to === undefined ? [] : [sql`t.created_at < ${params.to.toISOString()}::timestamptz`]),
        ...(after === undefined ? [] : [sql`(t.created_at, t.id) < (${after.at}::timestamptz, ${after.id}::uuid)`])
      ])
      const found = yield* rows(PaymentRow)(sql`SELECT ${sql.literal(PAYMENT_COLUMNS)}
        FROM payment_transactions t JOIN plans p ON p.id = t.plan_id
        WHERE ${where} ORDER BY t.created_at DESC, t.id DESC LIMIT ${limit + 1}`)
      const page = found.slice(0, limit)
      const last = page[page.length - 1]
      return {
        items: page.map((p) => ({ ...toHistoryItem(p), user_id: p.user_id, contract_slug: p.contract_slug })),
        next_cursor: found.length > limit && last !== undefined ? PaymentCursor.encode({ at: last.cursor_at, id: last.id }) : null
      } satisfies PayoutsPage
    })

    return { dashboard, networks, payouts } as const
  })
}) {}
