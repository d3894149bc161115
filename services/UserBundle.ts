import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { PaymentCursor } from "./Cursor.ts"
import { decodeRows } from "./Rows.ts"
import { Ledger } from "./Ledger.ts"
import { PAYMENT_COLUMNS, PaymentRow, toHistoryItem } from "./Payments.ts"
import { Subscriptions } from "./Subscriptions.ts"

const decodeWallet = decodeRows(Schema.Struct({ wallet_address: Schema.String }))


const DebtRow = Schema.Struct({
  plan_slug: Schema.String,
  network: Schema.String,
  token: Schema.String,
  amount: Schema.String,
  due_since: Schema.DateFromSelf
})

const decodePayments = decodeRows(PaymentRow)
const decodeDebt = decodeRows(DebtRow)

/** What a user (or finance_ops about a user) sees: wallet, subscription, debt, last payment, history. */
export class UserBundle extends Effect.Service<UserBundle>()("billing/UserBundle", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const subscriptions = yield* Subscriptions
    const ledger = yield* Ledger

    const history = Effect.fn("UserBundle.history")(function*(userId: string, cursor: string | undefined, limit = 20) {
      const after = cursor === undefined ? undefined : yield* PaymentCursor.decode(cursor)
      const rows = yield* sql`SELECT ${sql.literal(PAYMENT_COLUMNS)} FROM payment_transactions t JOIN plans p ON p.id = t.plan_id
        WHERE t.user_id = ${userId}
        ${after ? sql`AND (t.created_at, t.id) < (${after.at}::timestamptz, ${after.id}::uuid)` : sql``}
        ORDER BY t.created_at DESC, t.id DESC LIMIT ${limit + 1}`.pipe(Effect.orDie, Effect.flatMap(decodePayments))
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return {
        items: page.map(toHistoryItem),
        next_cursor: rows.length > limit && last
          ? PaymentCursor.encode({ at: last.cursor_at, id: last.id })
          : null
      }
    })

    const summary = Effect.fn("UserBundle.summary")(function*(userId: string) {
      const [latest] = yield* sql`SELECT ${sql.literal(PAYMENT_COLUMNS)} FROM payment_transactions t JOIN plans p ON p.id = t.plan_id
        WHERE t.user_id = ${userId} ORDER BY t.created_at DESC, t.id DESC LIMIT 1`.pipe(Effect.orDie, Effect.flatMap(decodePayments))
      const subscription = yield* subscriptions.view(userId)
      // Debt: the price of the period a past_due subscription has not paid (its plan, or the plan it moves to), in
      // the network/token it was last paid with (else the first price on that network, else the first price).
      // Abandoned checkouts are not debt, and neither is a past_due subscription its owner canceled.
      const debt = yield* sql`SELECT DISTINCT ON (s.id) p.slug AS plan_slug, pp.network, pp.token, pp.amount::text AS amount,
          s.current_period_end AS due_since
        FROM subscriptions s
        JOIN plans p ON p.id = coalesce(s.next_plan_id, s.plan_id)
        JOIN plan_prices pp ON pp.plan_id = p.id
        LEFT JOIN payment_transactions t ON t.id = s.last_payment_id
        WHERE s.user_id = ${userId} AND s.status = 'past_due' AND NOT s.cancel_at_period_end
        ORDER BY s.id, (pp.network = t.network AND pp.token = t.token) DESC NULLS LAST, (pp.network = t.network) DESC NULLS LAST,
          pp.network, pp.token = 'native' DESC, pp.token`.pipe(Effect.orDie, Effect.flatMap(decodeDebt))
      const [wallet] = yield* sql`SELECT wallet_address FROM payment_transactions
        WHERE user_id = ${userId} ORDER BY (status = 'confirmed') DESC, created_at DESC LIMIT 1`.pipe(Effect.orDie, Effect.flatMap(decodeWallet))
      return {
        user_id: userId,
        wallet: wallet?.wallet_address ?? null,
        subscription: Option.getOrNull(subscription),
        debt: debt.map((d) => ({ ...d, due_since: d.due_since.toISOString() })),
        credit: yield* ledger.creditOf(userId),
        last_payment: latest
          ? { transaction_id: latest.id, status: latest.status, failure_reason: latest.failure_reason, created_at: latest.created_at.toISOString() }
          : null
      }
    })

    return { summary, history } as const
  }),
  dependencies: [Subscriptions.Default, Ledger.Default]
}) {}
