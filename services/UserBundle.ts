import { SqlClient } from "@effect/sql"
import { Data, Effect, Option, Schema } from "effect"
import { decodeRows } from "./Rows.ts"
import { PAYMENT_COLUMNS, PaymentRow, toHistoryItem } from "./Payments.ts"

export class BadCursor extends Data.TaggedError("BadCursor") {}

const Cursor = Schema.Struct({ created_at: Schema.String, id: Schema.UUID })
const encodeCursor = (c: typeof Cursor.Type) => Buffer.from(JSON.stringify(c)).toString("base64url")
const decodeCursor = (raw: string) =>
  Schema.decodeUnknown(Schema.parseJson(Cursor))(Buffer.from(raw, "base64url").toString("utf8")).pipe(
    Effect.mapError(() => new BadCursor())
  )

const SubscriptionRow = Schema.Struct({
  plan_slug: Schema.String,
  status: Schema.String,
  current_period_start: Schema.DateFromSelf,
  current_period_end: Schema.DateFromSelf,
  cancel_at_period_end: Schema.Boolean
})
const DebtRow = Schema.Struct({ network: Schema.String, token: Schema.String, amount: Schema.String })

const decodePayments = decodeRows(PaymentRow)
const decodeSubscriptions = decodeRows(SubscriptionRow)
const decodeDebt = decodeRows(DebtRow)

/** What a user (or finance_ops about a user) sees: wallet, subscription, debt, last payment, history. */
export class UserBundle extends Effect.Service<UserBundle>()("billing/UserBundle", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const history = Effect.fn("UserBundle.history")(function*(userId: string, cursor: string | undefined, limit = 20) {
      const after = cursor === undefined ? undefined : yield* decodeCursor(cursor)
      const rows = yield* sql`SELECT ${sql.literal(PAYMENT_COLUMNS)} FROM payment_transactions t JOIN plans p ON p.id = t.plan_id
        WHERE t.user_id = ${userId}
        ${after ? sql`AND (t.created_at, t.id) < (${after.created_at}::timestamptz, ${after.id}::uuid)` : sql``}
        ORDER BY t.created_at DESC, t.id DESC LIMIT ${limit + 1}`.pipe(Effect.orDie, Effect.flatMap(decodePayments))
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return {
        items: page.map(toHistoryItem),
        next_cursor: rows.length > limit && last
          ? encodeCursor({ created_at: last.created_at.toISOString(), id: last.id })
          : null
      }
    })

    const summary = Effect.fn("UserBundle.summary")(function*(userId: string) {
      const [latest] = yield* sql`SELECT ${sql.literal(PAYMENT_COLUMNS)} FROM payment_transactions t JOIN plans p ON p.id = t.plan_id
        WHERE t.user_id = ${userId} ORDER BY t.created_at DESC, t.id DESC LIMIT 1`.pipe(Effect.orDie, Effect.flatMap(decodePayments))
      const [sub] = yield* sql`SELECT p.slug AS plan_slug, s.status, s.current_period_start, s.current_period_end, s.cancel_at_period_end
        FROM subscriptions s JOIN plans p ON p.id = s.plan_id WHERE s.user_id = ${userId}
        ORDER BY (s.status IN ('active', 'past_due')) DESC, s.current_period_end DESC LIMIT 1`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeSubscriptions)
      )
      // Debt: the price of the period a past_due subscription has not paid, in the network/token last paid with.
      const debt = yield* sql`SELECT pp.network, pp.token, pp.amount::text AS amount
        FROM subscriptions s
        JOIN payment_transactions t ON t.id = s.last_payment_id
        JOIN plan_prices pp ON pp.plan_id = s.plan_id AND pp.network = t.network AND pp.token = t.token
        WHERE s.user_id = ${userId} AND s.status = 'past_due'`.pipe(Effect.orDie, Effect.flatMap(decodeDebt))
      const [wallet] = yield* sql<{ wallet_address: string }>`SELECT wallet_address FROM payment_transactions
        WHERE user_id = ${userId} ORDER BY (status = 'confirmed') DESC, created_at DESC LIMIT 1`.pipe(Effect.orDie)
      return {
        user_id: userId,
        wallet: wallet?.wallet_address ?? null,
        subscription: Option.match(Option.fromNullable(sub), {
          onNone: () => null,
          onSome: (s) => ({
            plan_slug: s.plan_slug,
            status: s.status,
            current_period_start: s.current_period_start.toISOString(),
            current_period_end: s.current_period_end.toISOString(),
            cancel_at_period_end: s.cancel_at_period_end
          })
        }),
        debt,
        last_payment: latest
          ? { transaction_id: latest.id, status: latest.status, failure_reason: latest.failure_reason, created_at: latest.created_at.toISOString() }
          : null
      }
    })

    return { summary, history } as const
  })
}) {}
