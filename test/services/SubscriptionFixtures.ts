/**
 * Rows seeded straight into a test database (no chain, no HTTP) for the subscription lifecycle tests, and
 * readers for what the lifecycle wrote: subscriptions, plan.changed events, notifications, audit rows.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { randomBytes, randomUUID } from "node:crypto"

const sqlDo = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.orDie)

export const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`
export const TOKEN = "0x" + "ab".repeat(20)

/** A plan with prices `[network, token, amount]`; returns its id. */
export const seedPlan = (slug: string, interval: "month" | "year", prices: ReadonlyArray<readonly [string, string, bigint]>) =>
  sqlDo((sql) =>
    Effect.gen(function*() {
      const [plan] = yield* sql<{ id: string }>`INSERT INTO plans (slug, title, interval, contract_slug)
        VALUES (${slug}, ${slug}, ${interval}, 'pass') RETURNING id::text AS id`
      for (const [network, token, amount] of prices) {
        yield* sql`INSERT INTO plan_prices (plan_id, network, token, amount) VALUES (${plan!.id}, ${network}, ${token}, ${amount.toString()})`
      }
      return Number(plan!.id)
    })
  )

export const planIdOf = (slug: string) =>
  sqlDo((sql) =>
    sql<{ id: string }>`SELECT id::text AS id FROM plans WHERE slug = ${slug} AND deleted_at IS NULL`.pipe(
      Effect.map((rows) => Number(rows[0]!.id))
    )
  )

export const seedPayment = (p: {
  readonly userId: string
  readonly planId: number
  readonly status?: string
  readonly network?: string
  readonly token?: string
  readonly amount?: bigint
  readonly txHash?: string | null
  readonly expiresAt?: Date
  /** When the checkout was issued (default: the database's now). */
  readonly createdAt?: Date
}) =>
  sqlDo((sql) =>
    Effect.gen(function*() {
      const id = randomUUID()
      yield* sql`INSERT INTO payment_transactions (id, order_id, user_id, plan_id, contract_slug, network, chain_id,
          contract_address, token, amount, wallet_address, status, tx_hash, quote_signature, payload, expires_at, created_at)
        VALUES (${id}, ${hex(32)}, ${p.userId}, ${p.planId}, 'pass', ${p.network ?? "anvil"}, 31337, ${hex(20)},
          ${p.token ?? "native"}, ${(p.amount ?? 100n).toString()}, ${hex(20)}, ${p.status ?? "confirmed"}, ${p.txHash ?? null},
          '0x', '{"deadline":"0","transactions":[]}', ${p.expiresAt ?? new Date(0)},
          coalesce(${p.createdAt ?? null}::timestamptz, now()))`
      return id
    })
  )

/** The order id a seeded checkout was issued with: what its Minted log carries. */
export const orderOf = (paymentId: string) =>
  sqlDo((sql) => sql<{ order_id: string }>`SELECT order_id FROM payment_transactions WHERE id = ${paymentId}`).pipe(
    Effect.map((rows) => rows[0]!.order_id)
  )

export const seedSubscription = (s: {
  readonly userId: string
  readonly planId: number
  readonly start: Date
  readonly end: Date
  readonly status?: string
  readonly lastPaymentId?: string
  readonly cancelAtPeriodEnd?: boolean
}) =>
  sqlDo((sql) =>
    Effect.gen(function*() {
      const id = randomUUID()
      yield* sql`INSERT INTO subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end,
          cancel_at_period_end, last_payment_id)
        VALUES (${id}, ${s.userId}, ${s.planId}, ${s.status ?? "active"}, ${s.start}, ${s.end}, ${s.cancelAtPeriodEnd ?? false},
          ${s.lastPaymentId ?? null})`
      return id
    })
  )

const SubscriptionRow = Schema.Struct({
  status: Schema.String,
  plan_slug: Schema.String,
  next_plan_slug: Schema.NullOr(Schema.String),
  current_period_start: Schema.DateFromSelf,
  current_period_end: Schema.DateFromSelf,
  cancel_at_period_end: Schema.Boolean
})

export const subscriptionRow = (id: string) =>
  sqlDo((sql) =>
    sql`SELECT s.status, p.slug AS plan_slug, np.slug AS next_plan_slug, s.current_period_start, s.current_period_end,
        s.cancel_at_period_end
      FROM subscriptions s JOIN plans p ON p.id = s.plan_id LEFT JOIN plans np ON np.id = s.next_plan_id WHERE s.id = ${id}`.pipe(
      Effect.flatMap((rows) => Schema.decodeUnknown(SubscriptionRow)(rows[0]))
    )
  )

const PlanChangedRow = Schema.Struct({
  reason: Schema.String,
  plan: Schema.Struct({ slug: Schema.String }),
  previous_plan: Schema.NullOr(Schema.Struct({ slug: Schema.String })),
  subscription: Schema.NullOr(Schema.Struct({ id: Schema.String, status: Schema.String })),
  transaction: Schema.NullOr(Schema.Unknown)
})

/** `billing.plan.changed.v1` events in the outbox for a user, oldest first. */
export const planEventsOf = (userId: string) =>
  sqlDo((sql) =>
    sql<{ payload: unknown }>`SELECT payload FROM outbox WHERE subject = 'plan.changed.v1' AND payload->'user'->>'id' = ${userId}
      ORDER BY id`.pipe(Effect.flatMap((rows) => Schema.decodeUnknown(Schema.Array(PlanChangedRow))(rows.map((r) => r.payload))))
  )

/** The user's notifications (kind and payload), oldest first; each also went to the outbox. */
export const notificationsOf = (userId: string) =>
  sqlDo((sql) =>
    sql<{ kind: string; payload: Record<string, unknown> }>`SELECT kind, payload FROM notifications WHERE user_id = ${userId}
      ORDER BY id`
  )

export const paymentStatusOf = (id: string) =>
  sqlDo((sql) => sql<{ status: string }>`SELECT status FROM payment_transactions WHERE id = ${id}`.pipe(Effect.map((r) => r[0]?.status)))

export const auditOf = (resource: string) =>
  sqlDo((sql) =>
    sql<{ actor: string; action: string; before: unknown; after: unknown }>`SELECT actor, action, before, after FROM audit_log
      WHERE resource = ${resource} ORDER BY id`
  )
