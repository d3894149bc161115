import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { Period } from "../src/domain/Period.ts"
import { type HeldGrant, prorationCredits } from "../src/domain/PlanChange.ts"
import { Interval } from "../src/domain/Plan.ts"
import { assetOf, Ledger } from "./Ledger.ts"
import { decodeIds, decodeRow, decodeRows } from "./Rows.ts"

/** The ledger transaction crediting what `fundingPaymentId` bought and the upgrade confirmed as `upgradeLedgerId` ended early. */
export const prorationLedgerId = (fundingPaymentId: string, upgradeLedgerId: string) => `proration:${fundingPaymentId}:${upgradeLedgerId}`

const Held = Schema.Struct({
  payment_id: Schema.String,
  plan_id: Schema.NumberFromString,
  interval: Interval,
  deferred: Schema.Boolean,
  amount: Schema.BigInt,
  network: Schema.String,
  token: Schema.String
})
const decodeHeld = decodeRows(Held)
const toHeld = (r: typeof Held.Type): HeldGrant => ({
  paymentId: r.payment_id,
  planId: r.plan_id,
  interval: r.interval,
  deferred: r.deferred,
  amount: r.amount,
  network: r.network,
  token: r.token
})

const Grant = Schema.Struct({
  subscription_id: Schema.String,
  interval: Interval,
  deferred: Schema.Boolean,
  prorated: Schema.Boolean
})
const decodeGrant = decodeRow(Schema.UndefinedOr(Grant))

/**
 * subscription_grants: what each confirmed payment bought of which subscription, and the proration credit an
 * upgrade gives for what it ended early. Runs inside the caller's SQL transaction, under its subscription lock.
 */
export class Grants extends Effect.Service<Grants>()("billing/Grants", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ledger = yield* Ledger

    /** A payment confirmed again after a reversal grants again (the row is reused). */
    const record = (paymentId: string, subscriptionId: string, interval: Interval, deferred: boolean) =>
      sql`INSERT INTO subscription_grants (payment_id, subscription_id, interval, deferred)
        VALUES (${paymentId}, ${subscriptionId}, ${interval}, ${deferred})
        ON CONFLICT (payment_id) DO UPDATE SET subscription_id = excluded.subscription_id, interval = excluded.interval,
          deferred = excluded.deferred, granted_at = now(), revoked_at = NULL, prorated_by = NULL`

    /** The grants that still hold time of the subscription, newest first, with the price each payment paid (credit included). */
    const held = (subscriptionId: string) =>
      sql`SELECT g.payment_id::text AS payment_id, t.plan_id::text AS plan_id, g.interval, g.deferred,
          (t.amount + t.credit_applied)::text AS amount, t.network, t.token
        FROM subscription_grants g JOIN payment_transactions t ON t.id = g.payment_id
        WHERE g.subscription_id = ${subscriptionId} AND g.revoked_at IS NULL AND g.prorated_by IS NULL
        ORDER BY g.granted_at DESC, g.payment_id DESC`.pipe(Effect.flatMap(decodeHeld), Effect.map((rows) => rows.map(toHeld)))

    /** A paid next period has started: its grants now hold time of the current period. */
    const start = (subscriptionId: string) =>
      sql`UPDATE subscription_grants SET deferred = false
        WHERE subscription_id = ${subscriptionId} AND deferred AND revoked_at IS NULL AND prorated_by IS NULL`

    /**
     * An upgrade ends the period early: each held grant's unused value is credited to the customer (one `proration`
     * ledger transaction per funding payment, id from the upgrade's own ledger id so a retry posts nothing twice),
     * and the grants hold no more time.
     */
    const prorate = Effect.fn("Grants.prorate")(function*(args: {
      readonly userId: string
      readonly upgradePaymentId: string
      readonly upgradeLedgerId: string
      readonly period: Period
      readonly held: ReadonlyArray<HeldGrant>
      readonly now: Date
    }) {
      const credits = prorationCredits(args.period, args.held, args.now)
      for (const c of credits) {
        const asset = assetOf(c.network, c.token)
        yield* ledger.post({
          id: prorationLedgerId(c.paymentId, args.upgradeLedgerId),
          paymentId: c.paymentId,
          kind: "proration",
          postings: [
            { account: `revenue:${c.network}`, asset, amount: c.amount },
            { account: `customer_credit:${args.userId}`, asset, amount: -c.amount }
          ]
        })
      }
      const ids = args.held.map((g) => g.paymentId)
      if (ids.length > 0) {
        yield* sql`UPDATE subscription_grants SET prorated_by = ${args.upgradePaymentId} WHERE payment_id IN ${sql.in(ids)}`
      }
      return credits
    })

    /** Locks and reads the payment's grant if it still holds something (time, a paid next period, or a credit). */
    const lockUnrevoked = (paymentId: string) =>
      sql`SELECT subscription_id::text AS subscription_id, interval, deferred, prorated_by IS NOT NULL AS prorated
        FROM subscription_grants WHERE payment_id = ${paymentId} AND revoked_at IS NULL FOR UPDATE`.pipe(
        Effect.flatMap((rows) => decodeGrant(rows[0]))
      )

    const subscriptionOf = (paymentId: string) =>
      sql`SELECT subscription_id::text AS id FROM subscription_grants WHERE payment_id = ${paymentId} AND revoked_at IS NULL`.pipe(
        Effect.flatMap(decodeIds),
        Effect.map((rows) => rows[0]?.id)
      )

    const markRevoked = (paymentId: string) => sql`UPDATE subscription_grants SET revoked_at = now() WHERE payment_id = ${paymentId}`

    /** The payment was reversed or refunded: the proration credits its money funded are reversed (mirror postings). */
    const reverseProrations = Effect.fn("Grants.reverseProrations")(function*(paymentId: string) {
      const open = yield* sql`SELECT t.id FROM ledger_transactions t WHERE t.payment_id = ${paymentId} AND t.kind = 'proration'
          AND NOT EXISTS (SELECT 1 FROM ledger_transactions r WHERE r.id = 'reversal:' || t.id)
        ORDER BY t.created_at, t.id`.pipe(Effect.flatMap(decodeIds))
      for (const { id } of open) {
        const postings = yield* ledger.postingsOf(id)
        yield* ledger.post({ id: `reversal:${id}`, paymentId, kind: "reversal", postings: postings.map((p) => ({ ...p, amount: -p.amount })) })
      }
    })

    return { record, held, start, prorate, lockUnrevoked, subscriptionOf, markRevoked, reverseProrations } as const
  }),
  dependencies: [Ledger.Default]
}) {}
