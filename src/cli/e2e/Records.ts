/**
 * What the e2e run reads from PostgreSQL: the ledger entry of the payment and the outbox, notification and audit rows
 * written with it. The tables are read rather than the JetStream subjects, so the rows show whether or not the
 * OutboxRelay has published them yet (`published` says which).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { AuditEntryView } from "../../domain/AuditLog.ts"

const Posting = Schema.Struct({ ledger_transaction_id: Schema.String, kind: Schema.String, account: Schema.String, asset: Schema.String, amount: Schema.String })
const OutboxRow = Schema.Struct({ id: Schema.String, subject: Schema.String, payload: Schema.Unknown, created_at: Schema.String, published: Schema.Boolean })
const NotificationRow = Schema.Struct({ id: Schema.String, user_id: Schema.String, kind: Schema.String, payload: Schema.Unknown, created_at: Schema.String })
const AuditRow = AuditEntryView
const NetworkRow = Schema.Struct({ rpc_endpoints: Schema.Array(Schema.String), confirmations: Schema.Int })

export type OutboxRow = typeof OutboxRow.Type
export type NotificationRow = typeof NotificationRow.Type
export type AuditRow = typeof AuditRow.Type

export interface LedgerEntry {
  readonly id: string
  readonly kind: string
  readonly postings: ReadonlyArray<{ readonly account: string; readonly asset: string; readonly amount: string }>
}

const rows = <A, I>(schema: Schema.Schema<A, I>) => (raw: ReadonlyArray<unknown>) => Schema.decodeUnknown(Schema.Array(schema))(raw)

/** The strings that identify one payment in a row's JSON: any of them counts as a reference. */
export interface PaymentRefs {
  readonly userId: string
  readonly transactionId: string
  readonly orderId: string
  readonly txHash: string
}

export const Records = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const network = (name: string) =>
    sql`SELECT rpc_endpoints, confirmations FROM crypto_config WHERE network = ${name}`.pipe(
      Effect.flatMap(rows(NetworkRow)),
      Effect.map((r) => r[0])
    )

  /** Ledger transactions of the payment with their postings, in posting order. */
  const ledger = (paymentId: string) =>
    sql`SELECT t.id AS ledger_transaction_id, t.kind, p.account, p.asset, p.amount::text AS amount
      FROM ledger_transactions t JOIN ledger_postings p ON p.ledger_transaction_id = t.id
      WHERE t.payment_id = ${paymentId} ORDER BY p.id`.pipe(
      Effect.flatMap(rows(Posting)),
      Effect.map((postings) => {
        const entries = new Map<string, LedgerEntry>()
        for (const p of postings) {
          const entry = entries.get(p.ledger_transaction_id) ?? { id: p.ledger_transaction_id, kind: p.kind, postings: [] }
          entries.set(p.ledger_transaction_id, { ...entry, postings: [...entry.postings, { account: p.account, asset: p.asset, amount: p.amount }] })
        }
        return [...entries.values()]
      })
    )

  /** The user id as a whole JSON string (so "al" does not match "alice"), or any of the payment's unique ids. */
  const mentions = (column: string, refs: PaymentRefs) =>
    sql.or([JSON.stringify(refs.userId), refs.transactionId, refs.orderId, refs.txHash].map((ref) => sql`position(${ref} in ${sql.literal(column)}) > 0`))

  /** Outbox rows (plan.changed, notifications, audit events) that name the user or the payment. */
  const outbox = (refs: PaymentRefs) =>
    sql`SELECT id::text AS id, subject, payload, created_at::text AS created_at, sent_at IS NOT NULL AS published
      FROM outbox WHERE ${mentions("payload::text", refs)} ORDER BY id`.pipe(Effect.flatMap(rows(OutboxRow)))

  /** The user's notifications, and finance_ops' (or anyone's) that name the payment. */
  const notifications = (refs: PaymentRefs) =>
    sql`SELECT id::text AS id, user_id, kind, payload, created_at::text AS created_at FROM notifications
      WHERE user_id = ${refs.userId} OR ${mentions("payload::text", refs)} ORDER BY id`.pipe(Effect.flatMap(rows(NotificationRow)))

  /** Audit rows of the plan (since the run started) and every row that names the user or the payment. */
  const audit = (refs: PaymentRefs, planSlug: string, since: string) =>
    sql`SELECT id::text AS id, actor, action, resource, before, after, request_id, created_at::text AS created_at
      FROM audit_log
      WHERE (resource = ${`plan:${planSlug}`} AND created_at >= ${since}::timestamptz)
        OR actor = ${refs.userId}
        OR ${mentions("(resource || ' ' || coalesce(before::text, '') || ' ' || coalesce(after::text, ''))", refs)}
      ORDER BY id`.pipe(Effect.flatMap(rows(AuditRow)))

  const now = sql`SELECT now()::text AS now`.pipe(Effect.flatMap(rows(Schema.Struct({ now: Schema.String }))), Effect.map((r) => r[0]!.now))

  return { network, ledger, outbox, notifications, audit, now } as const
})

/** Postings of one ledger transaction that do not sum to zero, per asset (must be none). */
export const unbalancedAssets = (entry: LedgerEntry) => {
  const sums = new Map<string, bigint>()
  for (const p of entry.postings) sums.set(p.asset, (sums.get(p.asset) ?? 0n) + BigInt(p.amount))
  return [...sums].filter(([, sum]) => sum !== 0n).map(([asset]) => asset)
}
