/**
 * SQL seeding for the overview tests: plans, prices, payments with fixed timestamps, ledger transactions
 * (each one's postings in one statement, so the balance trigger sees them together) and subscriptions.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export const TOK = `0x${"a".repeat(40)}`
export const CHAIN_IDS: Record<string, number> = { anvil: 31337, base: 8453 }

export const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}`

export const seedNetwork = (network: string, chainId: number, endpoints: ReadonlyArray<string>, confirmations: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations)
      VALUES (${network}, ${chainId}, ${JSON.stringify(endpoints)}::jsonb, ${confirmations})
      ON CONFLICT (network) DO NOTHING`).pipe(Effect.orDie)

/** A plan with prices: [network, token, amount]. Returns its id. */
export const seedPlan = (slug: string, interval: "month" | "year", prices: ReadonlyArray<readonly [string, string, bigint]>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [plan] = yield* sql<{ id: string }>`INSERT INTO plans (slug, title, interval, contract_slug)
      VALUES (${slug}, ${slug}, ${interval}, 'pass') RETURNING id::text AS id`
    for (const [network, token, amount] of prices) {
      yield* sql`INSERT INTO plan_prices (plan_id, network, token, amount) VALUES (${plan!.id}, ${network}, ${token}, ${amount.toString()})`
    }
    return plan!.id
  }).pipe(Effect.orDie)

export interface SeedPayment {
  readonly n: number
  readonly user: string
  readonly plan: string
  readonly network: string
  readonly token: string
  readonly amount: bigint
  readonly paid?: bigint
  readonly status: string
  readonly reason?: string
  readonly created: string
  readonly confirmed?: string
  readonly contract?: string
  /** Defaults to an hour after created. */
  readonly expires?: string
}

export const seedPayment = (p: SeedPayment) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO payment_transactions (id, order_id, user_id, plan_id, contract_slug, network, chain_id, contract_address,
        token, amount, paid_amount, wallet_address, status, failure_reason, quote_signature, payload, expires_at, created_at,
        updated_at, confirmed_at)
      VALUES (${uuid(p.n)}, ${`0x${p.n.toString(16).padStart(64, "0")}`}, ${p.user}, ${p.plan}, ${p.contract ?? "pass"},
        ${p.network}, ${CHAIN_IDS[p.network] ?? 1}, ${`0x${"b".repeat(40)}`}, ${p.token}, ${p.amount.toString()},
        ${p.paid === undefined ? null : p.paid.toString()}, ${`0x${p.n.toString(16).padStart(40, "c")}`}, ${p.status},
        ${p.reason ?? null}, '0x', ${JSON.stringify({ deadline: "0", transactions: [] })}::jsonb,
        ${p.expires ?? new Date(Date.parse(p.created) + 3_600_000).toISOString()}::timestamptz, ${p.created}::timestamptz,
        ${p.confirmed ?? p.created}::timestamptz, ${p.confirmed ?? null}::timestamptz)`).pipe(Effect.orDie)

/** A ledger transaction with its postings [account, asset, amount] at a fixed time. */
export const seedLedger = (
  id: string,
  payment: number,
  kind: "payment" | "reversal" | "refund",
  at: string,
  postings: ReadonlyArray<readonly [string, string, bigint]>
) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO ledger_transactions (id, payment_id, kind, created_at) VALUES (${id}, ${uuid(payment)}, ${kind}, ${at}::timestamptz)`
    yield* sql`INSERT INTO ledger_postings ${
      sql.insert(postings.map(([account, asset, amount]) => ({
        ledger_transaction_id: id,
        account,
        asset,
        amount: amount.toString(),
        created_at: at
      })))
    }`
  }).pipe(Effect.orDie)

export const seedSubscription = (s: {
  readonly n: number
  readonly user: string
  readonly plan: string
  readonly status: "active" | "past_due" | "canceled" | "expired"
  readonly created: string
  readonly updated?: string
  readonly start: string
  readonly end: string
  readonly payment?: number
}) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end, last_payment_id,
        created_at, updated_at)
      VALUES (${uuid(1000 + s.n)}, ${s.user}, ${s.plan}, ${s.status}, ${s.start}::timestamptz, ${s.end}::timestamptz,
        ${s.payment === undefined ? null : uuid(s.payment)}, ${s.created}::timestamptz, ${s.updated ?? s.created}::timestamptz)`)
    .pipe(Effect.orDie)
