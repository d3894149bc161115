/**
 * Property tests of the money invariants against the real services on a real PostgreSQL: random sequences of
 * checkouts (some spending the user's credit), exact / over / under payments, reverted attempts, redeliveries, deep reorgs (reversals), refunds and the same
 * transactions mined again, with renewals where a user pays the same plan again and plan changes (a monthly and a
 * yearly plan: paying the other one is an upgrade or a downgrade, docs/billing-rules.md). After EVERY step:
 * - every ledger transaction balances per asset;
 * - no payment is posted twice: a confirmed or failed payment has exactly one payment posting not reversed or
 *   refunded, any other none, and only a confirmed one keeps revenue;
 * - each current subscription's period is exactly what its confirmed, unreversed payments bought (its held grants,
 *   counted on the calendar from its start; a paid next period or time turned into credit is not held), and a
 *   confirmed payment keeps revenue only while it has a grant (otherwise it was held as credit).
 * `PROPERTY_SEED` replays a run; the seed is printed.
 */
import { SqlClient } from "@effect/sql"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Schema, TestClock } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { checkPayment } from "../../src/domain/PaymentCheck.ts"
import type { Interval } from "../../src/domain/Plan.ts"
import { Refunds } from "../../services/Refunds.ts"
import { Rpc } from "../../services/Rpc.ts"
import { Settlement } from "../../services/Settlement.ts"
import { subscriptionsConsistent } from "../chaos/invariants.ts"
import { TestDatabase } from "../support/database.ts"
import { seedPlan } from "./SubscriptionFixtures.ts"

// Refunds is used only for refunds already verified: no network is configured and nothing here reads a chain.
const services = Layer.mergeAll(Settlement.Default, Refunds.Default.pipe(Layer.provide(Rpc.Default))).pipe(Layer.provideMerge(TestDatabase))
const T0 = Date.parse("2025-03-10T09:00:00Z")
const PRICE = 1_000n
const USERS = 3
const seed = Number(process.env["PROPERTY_SEED"] ?? Date.now() % 1_000_000)

const Step = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("checkout" as const), user: fc.nat(USERS - 1), plan: fc.nat(1), useCredit: fc.boolean() })
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("pay" as const), pick: fc.nat(), amount: fc.constantFrom("exact" as const, "exact" as const, "over" as const, "under" as const) })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("revert" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("redeliver" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reorg" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("mineAgain" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("refund" as const), pick: fc.nat() }) }
)
type Step = typeof Step extends fc.Arbitrary<infer S> ? S : never

/** What the test knows of one checkout and, once paid, of its transfer. */
interface Modelled {
  readonly id: string
  readonly orderId: string
  readonly user: string
  readonly interval: Interval
  /** What the quote asks the chain for (the price minus the credit the checkout uses). */
  readonly quoted: bigint
  transfer?: { readonly txHash: string; blockHash: string; blockNumber: bigint; readonly amount: bigint; key: string }
}

const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`
const pick = <A>(xs: ReadonlyArray<A>, n: number): A | undefined => (xs.length === 0 ? undefined : xs[n % xs.length])

const Status = Schema.Struct({ id: Schema.String, status: Schema.String })
const statuses = (ids: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`SELECT id::text AS id, status FROM payment_transactions WHERE id IN ${sql.in(ids)}`).pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.Array(Status))),
    Effect.map((rows) => new Map(rows.map((r) => [r.id, r.status]))),
    Effect.orDie
  )

/** Every broken invariant among these users' rows, as readable lines; empty when all hold. */
const violations = (users: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const out: Array<string> = []
    const unbalanced = yield* sql<{ id: string }>`SELECT ledger_transaction_id AS id FROM ledger_postings
      GROUP BY ledger_transaction_id, asset HAVING sum(amount) <> 0`
    for (const r of unbalanced) out.push(`unbalanced ledger transaction ${r.id}`)

    const posted = yield* sql<{ id: string; status: string; live: number; revenue: string }>`SELECT t.id::text AS id, t.status,
        count(l.id) FILTER (WHERE l.kind = 'payment' AND NOT EXISTS (
          SELECT 1 FROM ledger_transactions r WHERE r.id IN ('reversal:' || substr(l.id, 9), 'refund:' || substr(l.id, 9))))::int AS live,
        coalesce((SELECT sum(p.amount) FROM ledger_postings p JOIN ledger_transactions x ON x.id = p.ledger_transaction_id
          WHERE x.payment_id = t.id AND p.account LIKE 'revenue:%'), 0)::text AS revenue
      FROM payment_transactions t LEFT JOIN ledger_transactions l ON l.payment_id = t.id
      WHERE t.user_id IN ${sql.in(users)} GROUP BY t.id, t.status`
    for (const p of posted) {
      if (p.live > 1) out.push(`payment ${p.id} posted ${p.live} times`)
      const holdsMoney = p.status === "confirmed" || p.status === "failed"
      if (holdsMoney !== (p.live === 1)) out.push(`payment ${p.id} is ${p.status} with ${p.live} live postings`)
      if (p.status !== "confirmed" && BigInt(p.revenue) !== 0n) out.push(`payment ${p.id} is ${p.status} but keeps revenue ${p.revenue}`)
    }

    out.push(...yield* subscriptionsConsistent(users))
    return out
  }).pipe(Effect.orDie)

let run = 0
/** Steps that acted (a step with nothing to act on is skipped), per kind, over all runs: printed at the end. */
const acted: Record<string, number> = {}
const count = (kind: string) => {
  acted[kind] = (acted[kind] ?? 0) + 1
}

describe("money invariants (fast-check)", () => {
  afterAll(() => console.info(`MoneyProperties seed ${seed}: ${run} sequences; steps acted on: ${JSON.stringify(acted)}`))
  it.layer(services, { timeout: 300_000 })((it) => {
    it.effect.prop(
      `random sequences keep the ledger, the payments and the subscriptions consistent (seed ${seed})`,
      [fc.array(Step, { minLength: 5, maxLength: 40 })],
      ([steps]) =>
        Effect.gen(function*() {
          yield* TestClock.setTime(T0)
          const sql = yield* SqlClient.SqlClient
          const settlement = yield* Settlement
          const r = ++run
          const plans = [
            { id: yield* seedPlan(`prop-${r}-month`, "month", [["anvil", "native", PRICE]]), interval: "month" as const },
            { id: yield* seedPlan(`prop-${r}-year`, "year", [["anvil", "native", PRICE * 10n]]), interval: "year" as const }
          ]
          const users = Array.from({ length: USERS }, (_, i) => `prop-${r}-user-${i}`)
          const payments: Array<Modelled> = []
          let block = 100n

          const settle = (p: Modelled, key: string) =>
            settlement.settleMint({
              dedupeKey: key,
              source: "property",
              paymentId: p.id,
              log: {
                orderId: p.orderId,
                network: "anvil",
                chainId: 31337,
                txHash: p.transfer!.txHash,
                logIndex: 0,
                blockNumber: p.transfer!.blockNumber,
                blockHash: p.transfer!.blockHash,
                token: "native",
                amount: p.transfer!.amount
              },
              verdict: checkPayment(
                { network: "anvil", chainId: 31337, contractAddress: "0xc", walletAddress: "0xw", token: "native", amount: priceOf(p), expiresAtSeconds: 10n ** 12n },
                { network: "anvil", chainId: 31337, contract: "0xc", orderId: p.orderId, payer: "0xw", token: "native", amount: p.transfer!.amount, blockTimestamp: 1n }
              ),
              stillCanonical: Effect.succeed(true)
            })
          const priceOf = (p: Modelled) => p.quoted

          for (const step of steps) {
            const current = yield* statuses(payments.map((p) => p.id).concat(randomUUID()))
            const inStatus = (...s: ReadonlyArray<string>) => payments.filter((p) => s.includes(current.get(p.id) ?? ""))
            switch (step.kind) {
              case "checkout": {
                const user = users[step.user]!
                const plan = plans[step.plan]!
                if (payments.some((p) => p.user === user && p.interval === plan.interval && current.get(p.id) === "pending")) break
                const id = randomUUID()
                const orderId = hex(32)
                const price = plan.interval === "year" ? PRICE * 10n : PRICE
                // As Checkout reserves it: the user's native credit less open reservations, never the whole price.
                const [free] = step.useCredit
                  ? yield* sql<{ total: string }>`SELECT (coalesce((SELECT -sum(amount) FROM ledger_postings
                        WHERE account = ${`customer_credit:${user}`} AND asset = 'anvil:native'), 0)
                      - coalesce((SELECT sum(credit_applied) FROM payment_transactions
                        WHERE user_id = ${user} AND status IN ('pending', 'seen')), 0))::text AS total`
                  : [{ total: "0" }]
                const available = BigInt(free!.total)
                const credit = available <= 0n ? 0n : available < price ? available : price - 1n
                yield* sql`INSERT INTO payment_transactions (id, order_id, user_id, plan_id, contract_slug, network, chain_id,
                    contract_address, token, amount, credit_applied, wallet_address, quote_signature, payload, expires_at)
                  VALUES (${id}, ${orderId}, ${user}, ${plan.id}, 'pass', 'anvil', 31337, ${hex(20)}, 'native',
                    ${(price - credit).toString()}, ${credit.toString()}, ${hex(20)}, '0x', '{"deadline":"0","transactions":[]}',
                    now() + interval '1 day')`
                if (credit > 0n) count("checkout_with_credit")
                payments.push({ id, orderId, user, interval: plan.interval, quoted: price - credit })
                count(step.kind)
                break
              }
              case "pay": {
                const p = pick(inStatus("pending", "seen").filter((x) => x.transfer === undefined), step.pick)
                if (p === undefined) break
                const price = priceOf(p)
                const amount = step.amount === "exact" ? price : step.amount === "over" ? price + 7n : price - 1n
                p.transfer = { txHash: hex(32), blockHash: hex(32), blockNumber: ++block, amount, key: hex(8) }
                yield* settle(p, p.transfer.key)
                count(`pay_${step.amount}`)
                break
              }
              case "revert": {
                const p = pick(inStatus("pending", "seen"), step.pick)
                if (p === undefined) break
                yield* settlement.recordAttempt({
                  dedupeKey: `revert:${hex(8)}`,
                  source: "property",
                  paymentId: p.id,
                  txHash: hex(32),
                  reason: "reverted",
                  expiresAt: new Date(T0 + 86_400_000)
                })
                count(step.kind)
                break
              }
              case "redeliver": {
                const p = pick(payments.filter((x) => x.transfer !== undefined), step.pick)
                if (p === undefined) break
                assert.strictEqual(yield* settle(p, p.transfer!.key), "duplicate")
                count(step.kind)
                break
              }
              case "reorg": {
                const p = pick(inStatus("confirmed"), step.pick)
                if (p === undefined) break
                yield* settlement.reverse({ source: "property", paymentId: p.id, chainId: 31337, txHash: p.transfer!.txHash, logIndex: 0 })
                count(step.kind)
                break
              }
              case "refund": {
                const p = pick(inStatus("confirmed"), step.pick)
                if (p === undefined) break
                const refunds = yield* Refunds
                yield* refunds.applyVerified(p.id, { tx_hash: hex(32), reason: "property test" }, "fin-ops")
                count(step.kind)
                break
              }
              case "mineAgain": {
                const p = pick(inStatus("reversed"), step.pick)
                if (p === undefined) break
                p.transfer!.blockHash = hex(32)
                p.transfer!.blockNumber = ++block
                p.transfer!.key = hex(8)
                yield* settle(p, p.transfer!.key)
                count(step.kind)
                break
              }
            }
            const broken = yield* violations(users)
            assert.deepStrictEqual(broken, [], `after ${JSON.stringify(step)}`)
          }
        }),
      { fastCheck: { numRuns: 100, seed } }
    )
  })
})
