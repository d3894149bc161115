/**
 * Ledger.post writes a transaction and its postings in one statement: postings only with a new transaction row, in
 * the order given; a zero-amount transfer keeps the transaction with no postings; an unbalanced one is a defect.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { Ledger } from "../../services/Ledger.ts"
import { TestDatabase } from "../support/database.ts"
import { seedPayment, seedPlan } from "./SubscriptionFixtures.ts"

layer(Layer.provideMerge(Ledger.Default, TestDatabase), { timeout: 60_000 })("Ledger.post", (it) => {
  it.effect("postings go in once, in order, with their transaction; a repeat id writes nothing; zero moves keep the row", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const ledger = yield* Ledger
      const plan = yield* seedPlan("ledger-post", "month", [["anvil", "native", 100n]])
      const paymentId = yield* seedPayment({ userId: "ledger-user", planId: plan, status: "pending" })
      const asset = "anvil:native"
      const postings = [
        { account: "treasury:anvil", asset, amount: 10n ** 30n },
        { account: "revenue:anvil", asset, amount: -(10n ** 30n) + 7n },
        { account: "customer_credit:ledger-user", asset, amount: -7n }
      ]
      assert.isTrue(yield* ledger.post({ id: "payment:test:1", paymentId, kind: "payment", postings }))
      assert.isFalse(yield* ledger.post({ id: "payment:test:1", paymentId, kind: "payment", postings }))
      assert.deepStrictEqual(yield* ledger.postingsOf("payment:test:1"), postings)

      const zero = [{ account: "treasury:anvil", asset, amount: 0n }, { account: "revenue:anvil", asset, amount: 0n }]
      assert.isTrue(yield* ledger.post({ id: "payment:test:0", paymentId, kind: "payment", postings: zero }))
      const kept = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_transactions WHERE id = 'payment:test:0'`
      assert.strictEqual(kept[0]!.n, 1)
      assert.deepStrictEqual(yield* ledger.postingsOf("payment:test:0"), [])

      const unbalanced = yield* Effect.exit(ledger.post({ id: "payment:test:x", paymentId, kind: "payment", postings: [postings[0]!] }))
      assert.isTrue(Exit.isFailure(unbalanced))
      const none = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_transactions WHERE id = 'payment:test:x'`
      assert.strictEqual(none[0]!.n, 0)
    }))
})
