/**
 * The worked examples of docs/billing-rules.md, number for number, against a real PostgreSQL database with TestClock:
 * payments settled through Settlement (ledger, grants, events, notifications in one transaction), periods moved on
 * by the Scheduler, reversals through Settlement.reverse.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, TestClock } from "effect"
import { randomBytes } from "node:crypto"
import { Settlement } from "../../services/Settlement.ts"
import { Subscriptions } from "../../services/Subscriptions.ts"
import { Scheduler } from "../../streams/Scheduler.ts"
import { TestDatabase } from "../support/database.ts"
import { auditOf, notificationsOf, orderOf, planEventsOf, seedPayment, seedPlan, subscriptionRow, TOKEN } from "./SubscriptionFixtures.ts"

const config = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["BILLING_GRACE_PERIOD", "3 days"]])))
const services = Layer.mergeAll(Settlement.Default, Scheduler.Default, Subscriptions.Default).pipe(Layer.provideMerge(TestDatabase), Layer.provide(config))

const USDC = (n: number) => BigInt(n) * 1_000_000n
const ASSET = `anvil:${TOKEN}`
const at = (iso: string) => TestClock.setTime(Date.parse(iso))
const hash = () => `0x${randomBytes(32).toString("hex")}`
const iso = (d: Date) => d.toISOString()

const prices = (amount: bigint) => [["anvil", TOKEN, amount]] as const

/** A checkout issued at `issued` (default: the test clock's now) and paid exactly; returns its id and ledger id. */
const checkout = (userId: string, planId: number, amount: bigint, issued?: string) =>
  Effect.gen(function*() {
    const createdAt = new Date(issued === undefined ? yield* TestClock.currentTimeMillis : Date.parse(issued))
    const id = yield* seedPayment({ userId, planId, amount, token: TOKEN, status: "pending", txHash: null, createdAt })
    return id
  })

const settle = (paymentId: string, amount: bigint) =>
  Effect.gen(function*() {
    const txHash = hash()
    const orderId = yield* orderOf(paymentId)
    const outcome = yield* (yield* Settlement).settleMint({
      dedupeKey: `test:${paymentId}`,
      source: "test",
      paymentId,
      log: { orderId, network: "anvil", chainId: 31337, txHash, logIndex: 0, blockNumber: 10n, blockHash: hash(), token: TOKEN, amount },
      verdict: { _tag: "Match", excess: 0n },
      stillCanonical: Effect.succeed(true)
    })
    assert.strictEqual(outcome, "confirmed")
    return { paymentId, txHash, ledgerId: `payment:31337:${txHash}:${orderId}` }
  })

const pay = (userId: string, planId: number, amount: bigint, issued?: string) =>
  Effect.flatMap(checkout(userId, planId, amount, issued), (id) => settle(id, amount))

const reverse = (paid: { paymentId: string; txHash: string }) =>
  Effect.flatMap(Settlement, (s) => s.reverse({ source: "test", paymentId: paid.paymentId, chainId: 31337, txHash: paid.txHash, logIndex: 0 }))

const sqlDo = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) => Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.orDie)

/** The user's subscriptions, oldest first: [plan, status, start, end, next plan]. */
const subscriptionsOf = (userId: string) =>
  sqlDo((sql) => sql<{ id: string }>`SELECT id::text AS id FROM subscriptions WHERE user_id = ${userId} ORDER BY created_at, current_period_start`).pipe(
    Effect.flatMap((rows) => Effect.forEach(rows, (r) => subscriptionRow(r.id))),Effect.map((rows) => rows.map((r) => [r.plan_slug, r.status, iso(r.current_period_start), iso(r.current_period_end), r.next_plan_slug])))

/** Ledger transactions of one kind touching the user's payments: [id, kind, [account, asset, amount]...]. */
const ledgerOf = (paymentId: string) =>
  sqlDo((sql) =>
    sql<{ id: string; kind: string; account: string; asset: string; amount: string }>`SELECT t.id, t.kind, p.account, p.asset,
        p.amount::text AS amount
      FROM ledger_transactions t JOIN ledger_postings p ON p.ledger_transaction_id = t.id
      WHERE t.payment_id = ${paymentId} ORDER BY t.created_at, t.id, p.id`
  ).pipe(Effect.map((rows) => rows.map((r) => [r.id, r.kind, r.account, r.asset, r.amount] as const)))

/** The balance of an account in the test asset (debits positive). */
const balance = (account: string) =>
  sqlDo((sql) =>
    sql<{ total: string | null }>`SELECT sum(amount)::text AS total FROM ledger_postings WHERE account = ${account} AND asset = ${ASSET}`
  ).pipe(Effect.map((rows) => BigInt(rows[0]?.total ?? "0")))

const kinds = (userId: string) => Effect.map(notificationsOf(userId), (rows) => rows.map((r) => r.kind))
const pass = Effect.flatMap(Scheduler, (s) => s.pass)

describe("billing rules (docs/billing-rules.md)", () => {
  it.layer(services, { timeout: 60_000 })((it) => {
    it.effect("upgrade: basic → pro on Mar 11 starts pro at once; 21 of 31 days of basic are credited: 20.322581 USDC", () =>
      Effect.gen(function*() {
        const basic = yield* seedPlan("up-basic", "month", prices(USDC(30)))
        const pro = yield* seedPlan("up-pro", "month", prices(USDC(90)))
        yield* at("2025-03-01T00:00:00Z")
        const first = yield* pay("up", basic, USDC(30))
        yield* at("2025-03-11T00:00:00Z")
        const upgrade = yield* pay("up", pro, USDC(90))

        assert.deepStrictEqual(yield* subscriptionsOf("up"), [
          ["up-basic", "canceled", "2025-03-01T00:00:00.000Z", "2025-03-11T00:00:00.000Z", null],
          ["up-pro", "active", "2025-03-11T00:00:00.000Z", "2025-04-11T00:00:00.000Z", null]
        ])
        // ceil(30 000 000 × 21 days / 31 days) = ceil(20 322 580.6…) = 20 322 581, in the basic payment's asset.
        const proration = `proration:${first.paymentId}:${upgrade.ledgerId}`
        assert.deepStrictEqual((yield* ledgerOf(first.paymentId)).filter((r) => r[1] === "proration"), [
          [proration, "proration", "revenue:anvil", ASSET, "20322581"],
          [proration, "proration", "customer_credit:up", ASSET, "-20322581"]
        ])
        assert.strictEqual(yield* balance("customer_credit:up"), -20_322_581n)
        assert.strictEqual(yield* balance("revenue:anvil"), -(USDC(30) + USDC(90)) + 20_322_581n)
        const events = yield* planEventsOf("up")
        assert.deepStrictEqual(events.map((e) => [e.reason, e.plan.slug, e.previous_plan?.slug ?? null]), [
          ["activated", "up-basic", null],
          ["activated", "up-pro", "up-basic"]
        ])
        const credit = (yield* notificationsOf("up")).find((n) => n.kind === "credit.proration")
        assert.deepStrictEqual([credit?.payload["amount"], credit?.payload["plan_slug"]], ["20322581", "up-basic"])
      }))

    it.effect("upgrade after paying two months ahead: each payment's unused part is credited, 20.322581 + 30 USDC", () =>
      Effect.gen(function*() {
        const basic = yield* seedPlan("ahead-basic", "month", prices(USDC(30)))
        const pro = yield* seedPlan("ahead-pro", "month", prices(USDC(90)))
        yield* at("2025-03-01T00:00:00Z")
        const march = yield* pay("ahead", basic, USDC(30))
        const april = yield* pay("ahead", basic, USDC(30))
        assert.deepStrictEqual((yield* subscriptionsOf("ahead"))[0]?.slice(2, 4), ["2025-03-01T00:00:00.000Z", "2025-05-01T00:00:00.000Z"])
        yield* at("2025-03-11T00:00:00Z")
        const upgrade = yield* pay("ahead", pro, USDC(90))
        // The later payment bought Apr 1 – May 1 (all unused), the first Mar 1 – Apr 1 (21 of 31 days unused).
        assert.deepStrictEqual((yield* ledgerOf(april.paymentId)).filter((r) => r[1] === "proration").map((r) => [r[0], r[2], r[4]]), [
          [`proration:${april.paymentId}:${upgrade.ledgerId}`, "revenue:anvil", "30000000"],
          [`proration:${april.paymentId}:${upgrade.ledgerId}`, "customer_credit:ahead", "-30000000"]
        ])
        assert.deepStrictEqual((yield* ledgerOf(march.paymentId)).filter((r) => r[1] === "proration").map((r) => r[4]), ["20322581", "-20322581"])
        assert.strictEqual(yield* balance("customer_credit:ahead"), -50_322_581n)
        // The same confirmation delivered again posts nothing more.
        const again = yield* (yield* Settlement).settleMint({
          dedupeKey: `test:${upgrade.paymentId}`,
          source: "test",
          paymentId: upgrade.paymentId,
          log: { orderId: yield* orderOf(upgrade.paymentId), network: "anvil", chainId: 31337, txHash: upgrade.txHash, logIndex: 0, blockNumber: 10n, blockHash: hash(), token: TOKEN, amount: USDC(90) },
          verdict: { _tag: "Match", excess: 0n },
          stillCanonical: Effect.succeed(true)
        })
        assert.strictEqual(again, "duplicate")
        assert.strictEqual(yield* balance("customer_credit:ahead"), -50_322_581n)
      }))

    it.effect("downgrade: basic paid on Jun 1 under a yearly pro starts when pro ends, 2026-01-15; never past_due in between", () =>
      Effect.gen(function*() {
        const yearly = yield* seedPlan("down-pro-year", "year", prices(USDC(900)))
        const basic = yield* seedPlan("down-basic", "month", prices(USDC(30)))
        yield* at("2025-01-15T00:00:00Z")
        yield* pay("down", yearly, USDC(900))
        yield* at("2025-06-01T00:00:00Z")
        const downgrade = yield* pay("down", basic, USDC(30))
        assert.deepStrictEqual(yield* subscriptionsOf("down"), [
          ["down-pro-year", "active", "2025-01-15T00:00:00.000Z", "2026-01-15T00:00:00.000Z", "down-basic"]
        ])
        // No credit: the basic payment is revenue, nothing of the yearly period is given back.
        assert.deepStrictEqual((yield* ledgerOf(downgrade.paymentId)).map((r) => [r[1], r[2], r[4]]), [
          ["payment", "treasury:anvil", "30000000"],
          ["payment", "revenue:anvil", "-30000000"]
        ])
        assert.strictEqual(yield* balance("customer_credit:down"), 0n)
        const paid = (yield* notificationsOf("down")).filter((n) => n.kind === "payment.confirmed").at(-1)
        assert.strictEqual(paid?.payload["current_period_end"], "2026-02-15T00:00:00.000Z", "paid until the end of the basic month")
        assert.include(yield* kinds("down"), "subscription.next_period_paid")

        yield* at("2026-01-14T23:59:59.999Z")
        yield* pass
        assert.notInclude(yield* kinds("down"), "subscription.renewal_due", "nothing to renew: the next period is paid")
        yield* at("2026-01-15T00:00:00Z")
        assert.isAtLeast((yield* pass).nextPeriods, 1)
        assert.deepStrictEqual(yield* subscriptionsOf("down"), [
          ["down-basic", "active", "2026-01-15T00:00:00.000Z", "2026-02-15T00:00:00.000Z", null]
        ])
        const switched = (yield* planEventsOf("down")).at(-1)
        assert.deepStrictEqual([switched?.reason, switched?.plan.slug, switched?.previous_plan?.slug], ["activated", "down-basic", "down-pro-year"])
        assert.include(yield* kinds("down"), "subscription.next_period_started")

        yield* at("2026-02-15T00:00:00Z")
        yield* pass
        assert.deepStrictEqual((yield* subscriptionsOf("down"))[0]?.slice(0, 2), ["down-basic", "past_due"], "the basic month was the last one paid")
        assert.deepStrictEqual((yield* planEventsOf("down")).map((e) => e.reason), ["activated", "activated", "past_due"])
      }))

    it.effect("stale checkouts: a basic and a pro checkout issued before the yearly plan was paid are credited, the year stays", () =>
      Effect.gen(function*() {
        const basic = yield* seedPlan("stale-basic", "month", prices(USDC(30)))
        const pro = yield* seedPlan("stale-pro", "month", prices(USDC(90)))
        const yearly = yield* seedPlan("stale-pro-year", "year", prices(USDC(900)))
        yield* at("2025-02-01T10:00:00Z")
        const cheap = yield* checkout("stale", basic, USDC(30))
        const monthly = yield* checkout("stale", pro, USDC(90), "2025-02-01T10:01:00Z")
        yield* at("2025-02-01T10:05:00Z")
        yield* pay("stale", yearly, USDC(900))

        yield* at("2025-02-01T10:20:00Z")
        yield* settle(cheap, USDC(30))
        yield* at("2025-02-01T10:25:00Z")
        // 90/month is worth more than 900/year (75/month), but it would end on Mar 1 instead of 2026-02-01.
        yield* settle(monthly, USDC(90))

        assert.deepStrictEqual(yield* subscriptionsOf("stale"), [
          ["stale-pro-year", "active", "2025-02-01T10:05:00.000Z", "2026-02-01T10:05:00.000Z", null]
        ])
        assert.deepStrictEqual((yield* ledgerOf(cheap)).map((r) => [r[1], r[2], r[4]]), [
          ["payment", "treasury:anvil", "30000000"],
          ["payment", "customer_credit:stale", "-30000000"]
        ])
        assert.deepStrictEqual((yield* ledgerOf(monthly)).map((r) => [r[1], r[2], r[4]]), [
          ["payment", "treasury:anvil", "90000000"],
          ["payment", "customer_credit:stale", "-90000000"]
        ])
        assert.strictEqual(yield* balance("customer_credit:stale"), -120_000_000n)
        const statuses = yield* sqlDo((sql) =>
          sql<{ status: string }>`SELECT status FROM payment_transactions WHERE id IN (${cheap}, ${monthly})`
        )
        assert.deepStrictEqual(statuses.map((r) => r.status), ["confirmed", "confirmed"])
        const [confirmed] = yield* auditOf(`payment:${cheap}`)
        assert.deepInclude(confirmed?.after as object, { status: "confirmed", credited: "stale_checkout" })
        assert.deepStrictEqual((yield* planEventsOf("stale")).map((e) => e.reason), ["activated"], "nothing changed: no event")
        const credited = (yield* notificationsOf("stale")).filter((n) => n.kind === "payment.credited")
        assert.deepStrictEqual(credited.map((n) => [n.payload["plan_slug"], n.payload["amount"]]), [["stale-basic", "30000000"], ["stale-pro", "90000000"]])
      }))

    it.effect("reversals: the basic payment's reversal takes back its proration; the upgrade's reversal takes back pro, the credit stays", () =>
      Effect.gen(function*() {
        const basic = yield* seedPlan("rev-basic", "month", prices(USDC(30)))
        const pro = yield* seedPlan("rev-pro", "month", prices(USDC(90)))
        yield* at("2025-03-01T00:00:00Z")
        const funding = yield* pay("rev-a", basic, USDC(30))
        const kept = yield* pay("rev-b", basic, USDC(30))
        yield* at("2025-03-11T00:00:00Z")
        const upgradeA = yield* pay("rev-a", pro, USDC(90))
        const upgradeB = yield* pay("rev-b", pro, USDC(90))

        yield* at("2025-03-20T00:00:00Z")
        assert.strictEqual(yield* reverse(funding), "reversed")
        const proration = `proration:${funding.paymentId}:${upgradeA.ledgerId}`
        assert.deepStrictEqual((yield* ledgerOf(funding.paymentId)).map((r) => [r[0], r[2], r[4]]), [
          [funding.ledgerId, "treasury:anvil", "30000000"],
          [funding.ledgerId, "revenue:anvil", "-30000000"],
          [proration, "revenue:anvil", "20322581"],
          [proration, "customer_credit:rev-a", "-20322581"],
          [`reversal:${funding.ledgerId.slice("payment:".length)}`, "treasury:anvil", "-30000000"],
          [`reversal:${funding.ledgerId.slice("payment:".length)}`, "revenue:anvil", "30000000"],
          [`reversal:${proration}`, "revenue:anvil", "-20322581"],
          [`reversal:${proration}`, "customer_credit:rev-a", "20322581"]
        ])
        assert.strictEqual(yield* balance("customer_credit:rev-a"), 0n)
        assert.deepStrictEqual((yield* subscriptionsOf("rev-a"))[1], ["rev-pro", "active", "2025-03-11T00:00:00.000Z", "2025-04-11T00:00:00.000Z", null])

        assert.strictEqual(yield* reverse(upgradeB), "reversed")
        assert.deepStrictEqual(yield* subscriptionsOf("rev-b"), [
          ["rev-basic", "canceled", "2025-03-01T00:00:00.000Z", "2025-03-11T00:00:00.000Z", null],
          ["rev-pro", "expired", "2025-03-11T00:00:00.000Z", "2025-03-20T00:00:00.000Z", null]
        ])
        // The basic payment still stands: the credit for its unused 21 days stays with the customer.
        assert.strictEqual(yield* balance("customer_credit:rev-b"), -20_322_581n)
        assert.deepStrictEqual((yield* ledgerOf(kept.paymentId)).filter((r) => r[0].startsWith("reversal:")), [])
      }))

    it.effect("reversals: a paid downgrade reversed before it starts is dropped; the scheduler then makes the year past_due", () =>
      Effect.gen(function*() {
        const yearly = yield* seedPlan("rd-pro-year", "year", prices(USDC(900)))
        const basic = yield* seedPlan("rd-basic", "month", prices(USDC(30)))
        yield* at("2025-01-15T00:00:00Z")
        yield* pay("rd", yearly, USDC(900))
        yield* at("2025-06-01T00:00:00Z")
        const downgrade = yield* pay("rd", basic, USDC(30))
        yield* at("2025-06-02T00:00:00Z")
        assert.strictEqual(yield* reverse(downgrade), "reversed")
        assert.deepStrictEqual(yield* subscriptionsOf("rd"), [
          ["rd-pro-year", "active", "2025-01-15T00:00:00.000Z", "2026-01-15T00:00:00.000Z", null]
        ])
        yield* at("2026-01-15T00:00:00Z")
        yield* pass
        assert.deepStrictEqual((yield* subscriptionsOf("rd"))[0]?.slice(0, 2), ["rd-pro-year", "past_due"])
        assert.deepStrictEqual((yield* planEventsOf("rd")).map((e) => e.reason), ["activated", "reversed", "past_due"])
      }))

    it.effect("reversals: the yearly payment reversed under a paid downgrade: the paid basic month starts now", () =>
      Effect.gen(function*() {
        const yearly = yield* seedPlan("ry-pro-year", "year", prices(USDC(900)))
        const basic = yield* seedPlan("ry-basic", "month", prices(USDC(30)))
        yield* at("2025-01-15T00:00:00Z")
        const year = yield* pay("ry", yearly, USDC(900))
        yield* at("2025-06-01T00:00:00Z")
        yield* pay("ry", basic, USDC(30))
        yield* at("2025-06-02T00:00:00Z")
        assert.strictEqual(yield* reverse(year), "reversed")
        assert.deepStrictEqual(yield* subscriptionsOf("ry"), [
          ["ry-basic", "active", "2025-06-02T00:00:00.000Z", "2025-07-02T00:00:00.000Z", null]
        ])
      }))

    it.effect("a paid next period: a cancel keeps it (the end of what is paid), a scheduled change is refused", () =>
      Effect.gen(function*() {
        const yearly = yield* seedPlan("kept-pro-year", "year", prices(USDC(900)))
        const basic = yield* seedPlan("kept-basic", "month", prices(USDC(30)))
        yield* at("2025-01-15T00:00:00Z")
        yield* pay("kept", yearly, USDC(900))
        yield* at("2025-06-01T00:00:00Z")
        yield* pay("kept", basic, USDC(30))
        const subscriptions = yield* Subscriptions
        const canceled = yield* subscriptions.cancel("kept")
        assert.deepStrictEqual([canceled.cancel_at_period_end, canceled.next_plan_slug], [true, "kept-basic"])
        const refused = yield* Effect.flip(subscriptions.changePlan("kept", "kept-pro-year"))
        assert.strictEqual(refused._tag, "NextPeriodPaid")

        yield* at("2026-01-15T00:00:00Z")
        yield* pass
        assert.deepStrictEqual(yield* subscriptionsOf("kept"), [
          ["kept-basic", "active", "2026-01-15T00:00:00.000Z", "2026-02-15T00:00:00.000Z", null]
        ])
        yield* at("2026-02-15T00:00:00Z")
        yield* pass
        assert.deepStrictEqual((yield* subscriptionsOf("kept"))[0]?.slice(0, 2), ["kept-basic", "canceled"])
      }))

    it.effect("unchanged: a canceled user paying another plan starts it now; not comparable (another token) waits for the period end", () =>
      Effect.gen(function*() {
        const basic = yield* seedPlan("keep-basic", "month", prices(USDC(30)))
        const pro = yield* seedPlan("keep-pro", "month", [["anvil", TOKEN, USDC(90)], ["anvil", "native", 10n ** 16n]])
        yield* at("2025-03-01T00:00:00Z")
        yield* pay("keep", basic, USDC(30))
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE subscriptions SET status = 'canceled' WHERE user_id = 'keep'`
        yield* at("2025-03-11T00:00:00Z")
        yield* pay("keep", pro, USDC(90))
        assert.deepStrictEqual((yield* subscriptionsOf("keep")).map((r) => r.slice(0, 4)), [
          ["keep-basic", "canceled", "2025-03-01T00:00:00.000Z", "2025-04-01T00:00:00.000Z"],
          ["keep-pro", "active", "2025-03-11T00:00:00.000Z", "2025-04-11T00:00:00.000Z"]
        ])

        // Basic paid in the token, pro in the native coin: no price per month to compare, so pro waits.
        yield* pay("keep2", basic, USDC(30))
        yield* at("2025-03-12T00:00:00Z")
        const id = yield* seedPayment({ userId: "keep2", planId: pro, amount: 10n ** 16n, status: "pending", txHash: null, createdAt: new Date(Date.parse("2025-03-12T00:00:00Z")) })
        const outcome = yield* (yield* Settlement).settleMint({
          dedupeKey: `test:${id}`,
          source: "test",
          paymentId: id,
          log: {
            orderId: yield* orderOf(id),
            network: "anvil",
            chainId: 31337,
            txHash: hash(),
            logIndex: 0,
            blockNumber: 10n,
            blockHash: hash(),
            token: "native",
            amount: 10n ** 16n
          },
          verdict: { _tag: "Match", excess: 0n },
          stillCanonical: Effect.succeed(true)
        })
        assert.strictEqual(outcome, "confirmed")
        assert.deepStrictEqual(yield* subscriptionsOf("keep2"), [
          ["keep-basic", "active", "2025-03-11T00:00:00.000Z", "2025-04-11T00:00:00.000Z", "keep-pro"]
        ])
        assert.strictEqual(yield* balance("customer_credit:keep2"), 0n)
      }))
  })
})
