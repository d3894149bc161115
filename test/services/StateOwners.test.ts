/**
 * One owner per state machine, against a real PostgreSQL: the database's transition tables equal the code's, an
 * illegal UPDATE fails whoever sends it, `Payments.transition` refuses and writes nothing; what a checkout buys
 * is fixed at checkout; a reversed transaction mined again is confirmed again under a new ledger id.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { canTransition, PaymentStatus } from "../../src/domain/Payment.ts"
import { canTransitionSubscription, SubscriptionStatus } from "../../src/domain/Subscription.ts"
import { Payments } from "../../services/Payments.ts"
import { Settlement, type SettledLog } from "../../services/Settlement.ts"
import { TestDatabase } from "../support/database.ts"
import { orderOf, seedPayment, seedPlan, subscriptionRow } from "./SubscriptionFixtures.ts"

const services = Layer.mergeAll(Settlement.Default, Payments.Default).pipe(Layer.provideMerge(TestDatabase))

const pairs = <S extends string>(statuses: ReadonlyArray<S>) => statuses.flatMap((from) => statuses.map((to) => [from, to] as const))

const Allowed = Schema.Struct({ allowed: Schema.Boolean })
const sqlAllows = (fn: "payment_transition_allowed" | "subscription_transition_allowed", from: string, to: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`SELECT ${sql.literal(fn)}(${from}, ${to}) AS allowed`.pipe(
      Effect.flatMap((rows) => Schema.decodeUnknown(Allowed)(rows[0])),
      Effect.map((r) => r.allowed)
    )).pipe(Effect.orDie)

const statusOf = (id: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ status: string }>`SELECT status FROM payment_transactions WHERE id = ${id}`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows[0]?.status)
  )

const ledgerIdsOf = (paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: string; kind: string }>`SELECT id, kind FROM ledger_transactions WHERE payment_id = ${paymentId} ORDER BY created_at, id`).pipe(
    Effect.orDie
  )

const logOf = (orderId: string, txHash: string, blockHash: string, amount: bigint): SettledLog => ({
  orderId,
  network: "anvil",
  chainId: 31337,
  txHash,
  logIndex: 0,
  blockNumber: 10n,
  blockHash,
  token: "native",
  amount
})

const hash = () => `0x${randomBytes(32).toString("hex")}`


describe("state owners", () => {
  it.layer(services, { timeout: 60_000 })((it) => {
    it.effect("the database's payment transition table is the code's", () =>
      Effect.gen(function*() {
        for (const [from, to] of pairs(PaymentStatus.literals)) {
          if (from === to) continue
          assert.strictEqual(yield* sqlAllows("payment_transition_allowed", from, to), canTransition(from, to), `${from} -> ${to}`)
        }
      }))

    it.effect("the database's subscription transition table is the code's", () =>
      Effect.gen(function*() {
        for (const [from, to] of pairs(SubscriptionStatus.literals)) {
          if (from === to) continue
          assert.strictEqual(
            yield* sqlAllows("subscription_transition_allowed", from, to),
            canTransitionSubscription(from, to),
            `${from} -> ${to}`
          )
        }
      }))

    it.effect("an illegal UPDATE fails in the database, whoever sends it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const plan = yield* seedPlan("owners-sql", "month", [["anvil", "native", 100n]])
        const failed = yield* seedPayment({ userId: "owners-sql", planId: plan, status: "pending" })
        yield* sql`UPDATE payment_transactions SET status = 'failed', failure_reason = 'underpaid' WHERE id = ${failed}`
        const revived = yield* Effect.exit(sql`UPDATE payment_transactions SET status = 'confirmed', failure_reason = NULL WHERE id = ${failed}`)
        assert.isTrue(Exit.isFailure(revived))
        assert.strictEqual(yield* statusOf(failed), "failed")

        const sub = yield* sql`INSERT INTO subscriptions (id, user_id, plan_id, status, current_period_start, current_period_end)
          VALUES (gen_random_uuid(), 'owners-sql', ${plan}, 'expired', now() - interval '2 days', now() - interval '1 day')
          RETURNING id::text AS id`
        const resurrected = yield* Effect.exit(sql`UPDATE subscriptions SET status = 'active' WHERE id = ${sub[0]!.id as string}`)
        assert.isTrue(Exit.isFailure(resurrected))
      }))

    it.effect("Payments.transition refuses an illegal or stale move and writes nothing", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const payments = yield* Payments
        const plan = yield* seedPlan("owners-tx", "month", [["anvil", "native", 100n]])
        const id = yield* seedPayment({ userId: "owners-tx", planId: plan, status: "pending" })
        const illegal = yield* Effect.flip(sql.withTransaction(payments.transition({ paymentId: id, from: "pending", to: "reversed" })))
        assert.strictEqual(illegal._tag, "IllegalPaymentTransition")
        const stale = yield* Effect.flip(sql.withTransaction(payments.transition({ paymentId: id, from: "seen", to: "confirmed" })))
        assert.strictEqual(stale._tag, "IllegalPaymentTransition")
        assert.strictEqual(yield* statusOf(id), "pending")
        const audit = yield* sql`SELECT 1 FROM audit_log WHERE resource = ${`payment:${id}`}`
        assert.strictEqual(audit.length, 0)

        yield* sql.withTransaction(payments.transition({ paymentId: id, from: "pending", to: "expired", actor: "user-x" }))
        assert.strictEqual(yield* statusOf(id), "expired")
        const moved = yield* sql<{ actor: string; action: string }>`SELECT actor, action FROM audit_log WHERE resource = ${`payment:${id}`}`
        assert.deepStrictEqual(moved.map((r) => [r.actor, r.action]), [["user-x", "payment.expired"]])
      }))

    it.effect("the interval is fixed at checkout: an admin edit from month to year afterwards still grants a month", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const plan = yield* seedPlan("owners-snap", "month", [["anvil", "native", 100n]])
        const id = yield* seedPayment({ userId: "owners-snap", planId: plan, status: "pending", txHash: null })
        yield* sql`UPDATE plans SET interval = 'year' WHERE id = ${plan}`
        const outcome = yield* (yield* Settlement).settleMint({
          dedupeKey: `snap:${id}`,
          source: "test",
          paymentId: id,
          log: logOf(yield* orderOf(id), hash(), hash(), 100n),
          verdict: { _tag: "Match", excess: 0n },
          stillCanonical: Effect.succeed(true)
        })
        assert.strictEqual(outcome, "confirmed")
        const [sub] = yield* sql<{ id: string }>`SELECT id::text AS id FROM subscriptions WHERE last_payment_id = ${id}`
        const row = yield* subscriptionRow(sub!.id)
        const days = (row.current_period_end.getTime() - row.current_period_start.getTime()) / 86_400_000
        assert.isTrue(days >= 28 && days <= 31, `a month, not a year: ${days} days`)
      }))

    it.effect("a reversed transaction mined again is confirmed again under a new ledger id; stale news of the old block is not", () =>
      Effect.gen(function*() {
        const settlement = yield* Settlement
        const plan = yield* seedPlan("owners-again", "month", [["anvil", "native", 100n]])
        const id = yield* seedPayment({ userId: "owners-again", planId: plan, status: "pending", txHash: null })
        const tx = hash()
        const first = logOf(yield* orderOf(id), tx, hash(), 100n)
        const settle = (key: string, log: SettledLog) =>
          settlement.settleMint({ dedupeKey: key, source: "test", paymentId: id, log, verdict: { _tag: "Match", excess: 0n }, stillCanonical: Effect.succeed(true) })
        assert.strictEqual(yield* settle("again:1", first), "confirmed")
        assert.strictEqual(yield* settlement.reverse({ source: "test", paymentId: id, chainId: 31337, txHash: tx, logIndex: 0 }), "reversed")
        assert.strictEqual(yield* statusOf(id), "reversed")
        // The same block again is not a new inclusion.
        assert.strictEqual(yield* settle("again:stale", first), "duplicate")
        const second = { ...first, blockHash: hash(), blockNumber: 12n }
        assert.strictEqual(yield* settle("again:2", second), "confirmed")
        const order = first.orderId
        assert.deepStrictEqual((yield* ledgerIdsOf(id)).map((r) => [r.id, r.kind]), [
          [`payment:31337:${tx}:${order}`, "payment"],
          [`reversal:31337:${tx}:${order}`, "reversal"],
          [`payment:31337:${tx}:${order}:${second.blockHash}`, "payment"]
        ])
        // And reversed again, the second inclusion's posting is the one taken back.
        assert.strictEqual(yield* settlement.reverse({ source: "test", paymentId: id, chainId: 31337, txHash: tx, logIndex: 0 }), "reversed")
        assert.deepStrictEqual((yield* ledgerIdsOf(id)).map((r) => r.id).at(-1), `reversal:31337:${tx}:${order}:${second.blockHash}`)
        const [sub] = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ status: string }>`SELECT status FROM subscriptions WHERE user_id = 'owners-again' ORDER BY created_at DESC LIMIT 1`).pipe(Effect.orDie)
        assert.strictEqual(sub?.status, "expired")
      }))
  })
})
