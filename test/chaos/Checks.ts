/**
 * The invariants after a scenario, read from the scenario's database, its JetStream consumers and the chain:
 * every order the chain says was paid is confirmed exactly once (net in the treasury equal to what was paid, no
 * posting twice), every ledger transaction balances, subscriptions follow the confirmed payments, nothing is left
 * unacked, no dead letter lacks its reason, and the outbox is drained.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { Chain } from "./Chain.ts"
import type { Order } from "./Workload.ts"

const rows = <A, I>(schema: Schema.Schema<A, I>) => Schema.decodeUnknown(Schema.Array(schema))

const PaymentRow = Schema.Struct({
  id: Schema.String,
  user_id: Schema.String,
  status: Schema.String,
  payments: Schema.NumberFromString,
  reversals: Schema.NumberFromString,
  treasury: Schema.BigInt
})

const Count = Schema.Struct({ n: Schema.NumberFromString })
const Sub = Schema.Struct({ user_id: Schema.String, status: Schema.String, n: Schema.NumberFromString })

/** Orders the canonical chain holds a successful mint for. */
export const paidOnChain = (chain: Chain, orders: ReadonlyArray<Order>) =>
  Effect.filter(orders, (o) => chain.orderUsed(o.orderId).pipe(Effect.orDie), { concurrency: 8 })

export interface LedgerFindings {
  readonly lost: number
  readonly duplicated: number
  readonly balanced: boolean
  readonly problems: ReadonlyArray<string>
}

/** Per payment: its status, ledger transactions of kind payment and reversal, and its net in the treasury. */
const paymentRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT t.id::text AS id, t.user_id, t.status,
      (SELECT count(*) FROM ledger_transactions l WHERE l.payment_id = t.id AND l.kind = 'payment')::text AS payments,
      (SELECT count(*) FROM ledger_transactions l WHERE l.payment_id = t.id AND l.kind IN ('reversal', 'refund'))::text AS reversals,
      coalesce((SELECT sum(p.amount) FROM ledger_postings p JOIN ledger_transactions l ON l.id = p.ledger_transaction_id
        WHERE l.payment_id = t.id AND starts_with(p.account, 'treasury:')), 0)::text AS treasury
    FROM payment_transactions t`.pipe(Effect.flatMap(rows(PaymentRow))))

export const ledgerFindings = (orders: ReadonlyArray<Order>, paid: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const byId = new Map((yield* paymentRows).map((r) => [r.id, r]))
    const paidIds = new Set(paid.map((o) => o.transactionId))
    const problems: Array<string> = []
    let lost = 0
    let duplicated = 0
    for (const order of orders) {
      const row = byId.get(order.transactionId)
      const owed = paidIds.has(order.transactionId) ? order.amount : 0n
      if (owed > 0n && row?.status !== "confirmed") lost++
      if (row === undefined) continue
      if (row.payments - row.reversals > 1 || row.treasury > owed) duplicated++
      else if (owed === 0n && row.status === "confirmed") problems.push(`order ${order.orderId} confirmed with nothing paid on chain`)
      else if (row.status === "confirmed" && row.treasury !== owed) problems.push(`order ${order.orderId} confirmed, treasury net ${row.treasury} of ${owed}`)
    }
    const twice = yield* sql`SELECT count(*)::text AS n FROM (SELECT 1 FROM ledger_postings
      GROUP BY ledger_transaction_id, account, asset, amount HAVING count(*) > 1) d`.pipe(Effect.flatMap(rows(Count)))
    if ((twice[0]?.n ?? 0) > 0) problems.push(`${twice[0]?.n} postings written twice in one ledger transaction`)
    const unbalanced = yield* sql`SELECT count(*)::text AS n FROM (SELECT 1 FROM ledger_postings
      GROUP BY ledger_transaction_id, asset HAVING sum(amount) <> 0) u`.pipe(Effect.flatMap(rows(Count)))
    return { lost, duplicated, balanced: (unbalanced[0]?.n ?? 0) === 0, problems } satisfies LedgerFindings
  })

/** Each user here has one order: a confirmed payment means one current subscription, none otherwise. */
export const subscriptionProblems = (orders: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const confirmed = new Set((yield* paymentRows).filter((r) => r.status === "confirmed").map((r) => r.user_id))
    const subs = yield* sql`SELECT user_id, status, count(*)::text AS n FROM subscriptions GROUP BY user_id, status`.pipe(
      Effect.flatMap(rows(Sub))
    )
    const current = new Map<string, number>()
    for (const s of subs) if (s.status === "active") current.set(s.user_id, (current.get(s.user_id) ?? 0) + s.n)
    let wrong = 0
    for (const { user } of orders) if ((current.get(user) ?? 0) !== (confirmed.has(user) ? 1 : 0)) wrong++
    return wrong === 0 ? [] : [`${wrong} users whose active subscription does not match their confirmed payment`]
  })

/** Outbox rows neither sent nor set aside; a dead-lettered row carries its reason by constraint, checked anyway. */
export const outboxProblems = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [pending] = yield* sql`SELECT count(*)::text AS n FROM outbox WHERE sent_at IS NULL AND dead_lettered_at IS NULL`.pipe(
    Effect.flatMap(rows(Count))
  )
  const [noReason] = yield* sql`SELECT count(*)::text AS n FROM outbox WHERE dead_lettered_at IS NOT NULL
    AND coalesce(dead_letter_reason, '') = ''`.pipe(Effect.flatMap(rows(Count)))
  return [
    ...((pending?.n ?? 0) > 0 ? [`${pending?.n} outbox rows not published`] : []),
    ...((noReason?.n ?? 0) > 0 ? [`${noReason?.n} outbox dead letters without a reason`] : [])
  ]
})
