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

/**
 * Orders the canonical chain holds a successful mint for, by its blocks and receipts (what billing reads), and those
 * whose contract state disagrees: after anvil_reorg, anvil was seen to keep a successful mint in a canonical block while
 * its state said the order unused. Such an order is judged by the blocks; the disagreement is reported, not failed.
 */
export const paidOnChain = (chain: Chain, orders: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const verdicts = yield* Effect.forEach(orders, (o) =>
      Effect.all([chain.minted(o.hash), chain.orderUsed(o.orderId).pipe(Effect.orDie)]).pipe(Effect.map(([minted, used]) => ({ o, minted, used }))), {
      concurrency: 8
    })
    return {
      paid: verdicts.filter((v) => v.minted).map((v) => v.o),
      stateDisagrees: verdicts.filter((v) => v.minted !== v.used).map((v) => v.o)
    }
  })

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

const confirmedAmong = (orders: ReadonlyArray<Order>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    orders.length === 0 ? Effect.succeed([]) : sql`SELECT id::text AS id FROM payment_transactions WHERE status = 'confirmed'
      AND id::text IN ${sql.in(orders.map((o) => o.transactionId))}`.pipe(
      Effect.flatMap(decodeRows(Schema.Struct({ id: Schema.String }))),
      Effect.map((rows) => rows.map((r) => r.id))
    ))

/**
 * What a post-mortem needs of the suspect orders: what the workload did, the payment row and its processed events,
 * what the listener recorded of the transaction, and what the final chain says of it and of the recorded block.
 */
export const evidence = (chain: Chain, orders: ReadonlyArray<Order>, ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (ids.length === 0) return []
    const byId = new Map(orders.map((o) => [o.transactionId, o]))
    return yield* Effect.forEach(ids.slice(0, 20), (id) =>
      Effect.gen(function*() {
        const order = byId.get(id)
        const row = yield* sql<{ block_number: string | null }>`SELECT status, failure_reason, tx_hash, log_index, block_number::text,
            block_hash, updated_at::text FROM payment_transactions WHERE id = ${id}`
        const recorded = row[0]?.block_number
        return {
          order: order === undefined ? null : { ...order, amount: order.amount.toString(), block: order.block?.toString() ?? null },
          row,
          events: yield* sql`SELECT dedupe_key, source, outcome, processed_at::text FROM processed_events WHERE payment_id = ${id}
            ORDER BY processed_at`,
          ledger: yield* sql`SELECT id, kind, created_at::text FROM ledger_transactions WHERE payment_id = ${id} ORDER BY created_at`,
          listener: order === undefined ? [] : yield* sql`SELECT block_number::text, block_hash, log_index, event FROM chain_logs
            WHERE tx_hash = ${order.hash.toLowerCase()}`,
          chain: order === undefined ? null : yield* chain.inspect(order.hash, order.orderId, recorded == null ? undefined : BigInt(recorded))
        }
      }))
  })

export interface Findings {
  /** Payment ids of the orders a violation names, for the evidence file. */
  readonly suspects: ReadonlyArray<string>
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
      ...(yield* subscriptionsConsistent()),
      ...(outbox.pending > 0 ? [`${outbox.pending} outbox rows not published`] : []),
      ...outbox.dead.filter((d) => /:\s*$/.test(d)).map((d) => `outbox dead letter without a reason: ${d}`)
    ]
    const paidIds = new Set(paid.map((o) => o.transactionId))
    const confirmed = new Set(yield* confirmedAmong(orders))
    const phantom = orders.filter((o) => !paidIds.has(o.transactionId) && confirmed.has(o.transactionId)).map((o) => o.transactionId)
    return { suspects: [...once.lost, ...once.duplicated, ...phantom], lost: once.lost.length, duplicated: once.duplicated.length, balanced: unbalanced.length === 0, violations } satisfies Findings
  })
