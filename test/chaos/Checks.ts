/**
 * The invariants after a scenario: the shared money checks (invariants.ts) for the orders the chain says were paid,
 * plus what only a chain-aware run can see: no order confirmed without its mint on the canonical chain, the treasury
 * holding exactly what each confirmed order paid, no posting written twice, one current subscription per paying user.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { decodeRows } from "../../services/Rows.ts"
import type { Chain } from "./Chain.ts"
import { exactlyOnce, ledgerBalanced, outboxDrained, subscriptionsConsistent } from "./invariants.ts"
import type { Order } from "./Workload.ts"

/** Orders the canonical chain holds a successful mint for. */
export const paidOnChain = (chain: Chain, orders: ReadonlyArray<Order>) =>
  Effect.filter(orders, (o) => chain.orderUsed(o.orderId).pipe(Effect.orDie), { concurrency: 8 })

const PaymentRow = decodeRows(Schema.Struct({ id: Schema.String, user_id: Schema.String, status: Schema.String, treasury: Schema.BigInt }))
const Count = decodeRows(Schema.Struct({ n: Schema.Number }))
const Active = decodeRows(Schema.Struct({ user_id: Schema.String, n: Schema.Number }))

/** What the chain and the database must agree on beyond exactly-once; one line per kind of disagreement. */
const chainAgreement = (orders: ReadonlyArray<Order>, paid: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = new Map((yield* sql`SELECT t.id::text AS id, t.user_id, t.status,
        coalesce((SELECT sum(p.amount) FROM ledger_postings p JOIN ledger_transactions l ON l.id = p.ledger_transaction_id
          WHERE l.payment_id = t.id AND starts_with(p.account, 'treasury:')), 0)::text AS treasury
      FROM payment_transactions t`.pipe(Effect.flatMap(PaymentRow))).map((r) => [r.id, r]))
    const paidIds = new Set(paid.map((o) => o.transactionId))
    const phantom = orders.filter((o) => !paidIds.has(o.transactionId) && rows.get(o.transactionId)?.status === "confirmed")
    const misbooked = orders.filter((o) => {
      const row = rows.get(o.transactionId)
      return row !== undefined && row.treasury !== (paidIds.has(o.transactionId) && row.status === "confirmed" ? o.amount : 0n)
    })
    const [twice] = yield* sql`SELECT count(*)::int AS n FROM (SELECT 1 FROM ledger_postings
      GROUP BY ledger_transaction_id, account, asset, amount HAVING count(*) > 1) d`.pipe(Effect.flatMap(Count))
    const active = new Map((yield* sql`SELECT user_id, count(*)::int AS n FROM subscriptions WHERE status = 'active'
      GROUP BY user_id`.pipe(Effect.flatMap(Active))).map((r) => [r.user_id, r.n]))
    const confirmedUsers = new Set([...rows.values()].filter((r) => r.status === "confirmed").map((r) => r.user_id))
    const offSubscriptions = orders.filter((o) => (active.get(o.user) ?? 0) !== (confirmedUsers.has(o.user) ? 1 : 0))
    const some = (os: ReadonlyArray<Order>) => os.slice(0, 3).map((o) => `${o.transactionId} (order ${o.orderId})`).join(", ")
    return [
      ...(phantom.length > 0 ? [`${phantom.length} orders confirmed with no mint on the canonical chain: ${some(phantom)}`] : []),
      ...(misbooked.length > 0 ? [`${misbooked.length} orders whose treasury postings differ from what the chain says was paid: ${some(misbooked)}`] : []),
      ...((twice?.n ?? 0) > 0 ? [`${twice?.n} postings written twice in one ledger transaction`] : []),
      ...(offSubscriptions.length > 0 ? [`${offSubscriptions.length} users whose active subscriptions do not match their confirmed payment`] : [])
    ]
  })

export interface Findings {
  readonly lost: number
  readonly duplicated: number
  readonly balanced: boolean
  readonly violations: ReadonlyArray<string>
}

export const findings = (orders: ReadonlyArray<Order>, paid: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const once = yield* exactlyOnce(paid.map((o) => o.transactionId))
    const unbalanced = yield* ledgerBalanced
    const outbox = yield* outboxDrained
    const violations = [
      ...(yield* chainAgreement(orders, paid)),
      ...(yield* subscriptionsConsistent),
      ...(outbox.pending > 0 ? [`${outbox.pending} outbox rows not published`] : []),
      ...outbox.dead.filter((d) => /:\s*$/.test(d)).map((d) => `outbox dead letter without a reason: ${d}`)
    ]
    return { lost: once.lost.length, duplicated: once.duplicated.length, balanced: unbalanced.length === 0, violations } satisfies Findings
  })
