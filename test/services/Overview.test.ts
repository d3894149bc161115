/**
 * finance_ops figures against hand-computed values. The data set is inserted with SQL at fixed instants; the
 * clock is pinned to NOW, so the 30-day window is [2025-03-01T12:00Z, 2025-03-31T12:00Z).
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Exit, Layer, TestClock } from "effect"
import { divRound, Overview, ratio4 } from "../../services/Overview.ts"
import { UserBundle } from "../../services/UserBundle.ts"
import { TestDatabase } from "../support/database.ts"
import { seedLedger, seedNetwork, seedPayment, seedPlan, seedSubscription, TOK, uuid } from "../support/overviewSeed.ts"

const NOW = Date.parse("2025-03-31T12:00:00Z")
const BIG = 123456789012345678901234567890n // beyond 2^53 and beyond a double's precision
const at = (s: string) => `2025-${s}Z`

const seed = Effect.gen(function*() {
  yield* seedNetwork("anvil", 31337, ["http://a.example/", "http://b.example/"], 2)
  yield* seedNetwork("base", 8453, ["http://c.example/"], 5)
  const basic = yield* seedPlan("basic", "month", [["anvil", "native", 1000n], ["anvil", TOK, 30n]])
  const pro = yield* seedPlan("pro", "year", [["anvil", "native", 12005n], ["base", "native", BIG]])
  const legacy = yield* seedPlan("legacy", "month", [["anvil", TOK, 25n]]) // no anvil/native price any more

  const confirmed = (n: number, user: string, plan: string, network: string, token: string, amount: bigint,
    created: string, confirmed: string, extra: { paid?: bigint; contract?: string; status?: string } = {}) =>
    seedPayment({ n, user, plan, network, token, amount, paid: extra.paid ?? amount, status: extra.status ?? "confirmed",
      created: at(created), confirmed: at(confirmed), ...(extra.contract ? { contract: extra.contract } : {}) })
  yield* confirmed(1, "u1", basic, "anvil", "native", 1000n, "03-10T10:00:00", "03-10T10:01:00") // 60 s
  yield* confirmed(2, "u2", basic, "anvil", TOK, 30n, "03-20T08:00:00", "03-20T08:02:00") // 120 s
  yield* confirmed(3, "u3", pro, "anvil", "native", 12005n, "03-05T00:00:00", "03-05T00:00:30") // 30 s
  yield* confirmed(4, "u4", pro, "base", "native", BIG, "03-15T12:00:00", "03-15T12:10:00", { paid: BIG + 1n, contract: "pass-base" }) // 600 s
  yield* confirmed(5, "u5", legacy, "anvil", "native", 703n, "03-25T09:00:00", "03-25T09:00:45") // 45 s
  yield* confirmed(6, "u6", basic, "anvil", "native", 1000n, "02-01T00:00:00", "02-01T00:01:30") // before the window
  yield* confirmed(7, "u7", basic, "anvil", "native", 1000n, "03-02T00:00:00", "03-02T00:01:00", { status: "reversed" }) // 60 s
  yield* confirmed(9, "u9", pro, "anvil", "native", 12005n, "03-18T00:00:00", "03-18T00:03:00") // 180 s
  yield* seedPayment({ n: 10, user: "u10", plan: basic, network: "anvil", token: "native", amount: 1000n, paid: 900n,
    status: "failed", reason: "underpaid", created: at("03-28T00:00:00") })
  yield* seedPayment({ n: 11, user: "u11", plan: basic, network: "anvil", token: TOK, amount: 30n, status: "expired", created: at("03-26T00:00:00") })
  yield* seedPayment({ n: 12, user: "u12", plan: basic, network: "anvil", token: "native", amount: 1000n, status: "pending", created: at("03-30T00:00:00") })
  yield* seedPayment({ n: 13, user: "u13", plan: pro, network: "base", token: "native", amount: BIG, status: "seen",
    created: at("03-29T00:00:00"), contract: "pass-base" })

  const sale = (n: number, network: string, token: string, time: string, amount: bigint, excess = 0n, user = "") =>
    seedLedger(`payment:${n}`, n, "payment", at(time), [
      [`treasury:${network}`, `${network}:${token}`, amount + excess],
      [`revenue:${network}`, `${network}:${token}`, -amount],
      ...(excess > 0n ? [[`customer_credit:${user}`, `${network}:${token}`, -excess] as const] : [])
    ])
  yield* sale(1, "anvil", "native", "03-10T10:01:00", 1000n)
  yield* sale(2, "anvil", TOK, "03-20T08:02:00", 30n)
  yield* sale(3, "anvil", "native", "03-05T00:00:30", 12005n)
  yield* sale(4, "base", "native", "03-15T12:10:00", BIG, 1n, "u4")
  yield* sale(5, "anvil", "native", "03-25T09:00:45", 703n)
  yield* sale(6, "anvil", "native", "02-01T00:01:30", 1000n)
  yield* sale(7, "anvil", "native", "03-02T00:01:00", 1000n)
  yield* sale(9, "anvil", "native", "03-18T00:03:00", 12005n)
  yield* seedLedger("reversal:7", 7, "reversal", at("03-05T18:00:00"), [["revenue:anvil", "anvil:native", 1000n], ["treasury:anvil", "anvil:native", -1000n]])
  yield* seedLedger("payment:10", 10, "payment", at("03-28T00:05:00"), [["treasury:anvil", "anvil:native", 900n], ["customer_credit:u10", "anvil:native", -900n]])

  const sub = (n: number, user: string, plan: string, status: "active" | "past_due" | "canceled" | "expired", created: string,
    payment?: number, updated?: string) =>
    seedSubscription({ n, user, plan, status, created: at(created), start: at(created), end: at("04-30T00:00:00"),
      ...(updated ? { updated: at(updated) } : {}), ...(payment ? { payment } : {}) })
  yield* sub(1, "u1", basic, "active", "02-10T00:00:00", 1)
  yield* sub(2, "u2", basic, "active", "03-20T08:02:00", 2)
  yield* sub(3, "u3", pro, "active", "03-05T00:00:30", 3)
  yield* sub(4, "u4", pro, "active", "01-15T12:10:00", 4)
  yield* sub(5, "u5", legacy, "active", "01-25T09:00:45", 5)
  yield* sub(15, "u15", basic, "active", "03-28T00:00:00") // no payment: unpriced
  yield* sub(6, "u6", basic, "past_due", "02-01T00:01:30", 6)
  yield* sub(7, "u7", basic, "expired", "01-02T00:00:00", 7, "03-05T18:00:00") // revoked by the reversal: churned
  yield* sub(8, "u8", pro, "canceled", "01-20T00:00:00", undefined, "03-20T00:00:00") // canceled: churned
  yield* sub(90, "u9", basic, "canceled", "01-18T00:00:00", undefined, "03-18T00:03:00") // replaced by a plan change: not churn
  yield* sub(9, "u9", pro, "active", "03-18T00:03:00", 9)
  yield* sub(10, "u10", basic, "expired", "01-01T00:00:00", undefined, "02-20T00:00:00") // ended before the window
  yield* sub(11, "u11", basic, "canceled", "03-05T00:00:00", undefined, "03-25T00:00:00") // started inside the window
})

const Seeded = Layer.effectDiscard(seed).pipe(Layer.provideMerge(TestDatabase))
const at_now = TestClock.setTime(NOW)
const ids = (page: { readonly items: ReadonlyArray<{ readonly transaction_id: string }> }) => page.items.map((i) => i.transaction_id)

layer(Layer.merge(Seeded, Overview.Default.pipe(Layer.provide(Seeded))), { timeout: 60_000 })("overview figures", (it) => {
  it.effect("dashboard: MRR, ARPU, subscriptions, churn, revenue per day, confirmation times, counts", () =>
    Effect.gen(function*() {
      yield* at_now
      const d = yield* (yield* Overview).dashboard()
      assert.deepStrictEqual(d.window, { from: "2025-03-01T12:00:00.000Z", to: "2025-03-31T12:00:00.000Z" })
      assert.deepStrictEqual(d.mrr, [
        // s2 basic monthly 30 → ARR 12·30 = 360, MRR 30
        { network: "anvil", token: TOK, subscriptions: 1, arr: "360", mrr: "30", mrr_remainder_twelfths: "0" },
        // s1 basic 12·1000 + s3 pro yearly 12005 + s5 legacy (price gone: paid 703) 12·703 + s9 pro 12005
        // = 12000 + 12005 + 8436 + 12005 = 44446 = 12·3703 + 10
        { network: "anvil", token: "native", subscriptions: 4, arr: "44446", mrr: "3703", mrr_remainder_twelfths: "10" },
        // s4 pro yearly BIG: 123456789012345678901234567890 = 12·10288065751028806575102880657 + 6
        { network: "base", token: "native", subscriptions: 1, arr: BIG.toString(), mrr: "10288065751028806575102880657", mrr_remainder_twelfths: "6" }
      ])
      assert.strictEqual(d.mrr_unpriced_subscriptions, 1) // s15
      assert.deepStrictEqual(d.arpu, [
        { network: "anvil", token: TOK, revenue: "30", paying_users: 1, arpu: "30" },
        // p7 1000 + p3 12005 − reversal of p7 1000 + p1 1000 + p9 12005 + p5 703 = 25713 (p6 is before the window);
        // users u7 u3 u1 u9 u5 = 5; 25713 / 5 = 5142.6 → 5143
        { network: "anvil", token: "native", revenue: "25713", paying_users: 5, arpu: "5143" },
        // p4's revenue is the price; the 1 overpaid went to customer credit
        { network: "base", token: "native", revenue: BIG.toString(), paying_users: 1, arpu: BIG.toString() }
      ])
      // active s1 s2 s3 s4 s5 s15 s9; past_due s6; canceled s8 s90 s11; expired s7 s10
      assert.deepStrictEqual(d.subscriptions, { active: 7, past_due: 1, canceled: 3, expired: 2 })
      // current at 03-01T12:00: u1 u4 u5 u6 u7 u8 u9 = 7; churned: u7 (expired 03-05), u8 (canceled 03-20) = 2
      // (u9 changed plan, u10 ended before, u11 started after); 2/7 = 0.285714… → 0.2857
      assert.deepStrictEqual(d.churn, { active_at_start: 7, churned: 2, rate: "0.2857" })
      assert.deepStrictEqual(d.revenue_per_day, [
        { day: "2025-03-02", network: "anvil", token: "native", amount: "1000" },
        { day: "2025-03-05", network: "anvil", token: "native", amount: "11005" }, // 12005 − 1000 reversed
        { day: "2025-03-10", network: "anvil", token: "native", amount: "1000" },
        { day: "2025-03-15", network: "base", token: "native", amount: BIG.toString() },
        { day: "2025-03-18", network: "anvil", token: "native", amount: "12005" },
        { day: "2025-03-20", network: "anvil", token: TOK, amount: "30" },
        { day: "2025-03-25", network: "anvil", token: "native", amount: "703" }
      ])
      // confirmed in the window: 60 120 30 600 45 60 180 → sum 1095 / 7 = 156.428571… → 156.429;
      // sorted 30 45 60 60 120 180 600, nearest rank ⌈0.95·7⌉ = 7th → 600
      assert.deepStrictEqual(d.confirmation_time, { payments: 7, average_seconds: 156.429, p95_seconds: 600 })
      assert.deepStrictEqual(d.payments, { pending: 1, seen: 1, confirmed: 7, failed: 1, expired: 1, reversed: 1, refunded: 0 })
      assert.deepStrictEqual(d.volume, [
        { network: "anvil", token: TOK, payments: 1, amount: "30" },
        // p1 1000 + p3 12005 + p5 703 + p6 1000 + p9 12005 = 26713 (p7 is reversed now)
        { network: "anvil", token: "native", payments: 5, amount: "26713" },
        { network: "base", token: "native", payments: 1, amount: (BIG + 1n).toString() } // received, overpayment included
      ])
    }))

  it.effect("networks: configuration, payments per status, volume", () =>
    Effect.gen(function*() {
      const n = yield* (yield* Overview).networks()
      assert.deepStrictEqual(n, [
        {
          network: "anvil", chain_id: 31337, confirmations: 2, rpc_endpoints: 2,
          payments: { pending: 1, seen: 0, confirmed: 6, failed: 1, expired: 1, reversed: 1, refunded: 0 }, // p12; p1 p2 p3 p5 p6 p9; p10; p11; p7
          volume: [{ token: TOK, payments: 1, amount: "30" }, { token: "native", payments: 5, amount: "26713" }]
        },
        {
          network: "base", chain_id: 8453, confirmations: 5, rpc_endpoints: 1,
          payments: { pending: 0, seen: 1, confirmed: 1, failed: 0, expired: 0, reversed: 0, refunded: 0 }, // p13; p4
          volume: [{ token: "native", payments: 1, amount: "123456789012345678901234567891" }]
        }
      ])
    }))

  it.effect("payouts: filters, newest first, keyset paging, exact amounts", () =>
    Effect.gen(function*() {
      const overview = yield* Overview
      const first = yield* overview.payouts({ status: "confirmed", network: "anvil", limit: 4 })
      assert.deepStrictEqual(ids(first), [uuid(5), uuid(2), uuid(9), uuid(1)]) // 03-25, 03-20, 03-18, 03-10
      const second = yield* overview.payouts({ status: "confirmed", network: "anvil", limit: 4, cursor: first.next_cursor! })
      assert.deepStrictEqual(ids(second), [uuid(3), uuid(6)])
      assert.isNull(second.next_cursor)
      assert.deepStrictEqual(ids(yield* overview.payouts({ token: TOK })), [uuid(11), uuid(2)])
      assert.deepStrictEqual(ids(yield* overview.payouts({ contract: "pass-base" })), [uuid(13), uuid(4)])
      // [03-20T00:00, 03-29T00:00): p13 created exactly at `to` is out
      const range = yield* overview.payouts({ from: new Date(at("03-20T00:00:00")), to: new Date(at("03-29T00:00:00")) })
      assert.deepStrictEqual(ids(range), [uuid(10), uuid(11), uuid(5), uuid(2)])
      assert.strictEqual((yield* overview.payouts({})).items.length, 12)
      const [p4] = (yield* overview.payouts({ network: "base", status: "confirmed" })).items
      assert.deepInclude(p4, { user_id: "u4", contract_slug: "pass-base", amount: BIG.toString(), paid_amount: "123456789012345678901234567891",
        created_at: "2025-03-15T12:00:00.000Z", confirmed_at: "2025-03-15T12:10:00.000Z", status: "confirmed" })
      const bad = yield* Effect.exit(overview.payouts({ cursor: "not-a-cursor" }))
      assert.isTrue(Exit.isFailure(bad))
    }))
})

const Paging = Layer.mergeAll(TestDatabase, Overview.Default, UserBundle.Default).pipe(Layer.provideMerge(TestDatabase))

layer(Paging, { timeout: 60_000 })("payout and history paging", (it) => {
  it.effect("rows within one millisecond are neither skipped nor repeated", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const plan = yield* seedPlan("basic", "month", [["anvil", "native", 1000n]])
      // Same millisecond, different microseconds; a millisecond cursor would skip 2 and 3 after 1.
      const micros = ["2025-03-10T00:00:00.123456Z", "2025-03-10T00:00:00.123400Z", "2025-03-10T00:00:00.123001Z", "2025-03-10T00:00:00.122999Z"]
      for (const [i, created] of micros.entries()) {
        yield* seedPayment({ n: i + 1, user: `m${i}`, plan, network: "anvil", token: "native", amount: 1000n, status: "expired", created })
      }
      assert.strictEqual((yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM payment_transactions`)[0]!.n, 4)
      const overview = yield* Overview
      const seen: Array<string> = []
      let cursor: string | undefined
      do {
        const page = yield* overview.payouts({ limit: 1, ...(cursor === undefined ? {} : { cursor }) })
        seen.push(...ids(page))
        cursor = page.next_cursor ?? undefined
      } while (cursor !== undefined)
      assert.deepStrictEqual(seen, [uuid(1), uuid(2), uuid(3), uuid(4)])

      // A user's history pages the same way (the cursor keeps PostgreSQL's microseconds).
      yield* sql`UPDATE payment_transactions SET user_id = 'same-user'`
      const bundle = yield* UserBundle
      const mine: Array<string> = []
      let next: string | undefined
      do {
        const page = yield* bundle.history("same-user", next, 1)
        mine.push(...page.items.map((i) => i.transaction_id))
        next = page.next_cursor ?? undefined
      } while (next !== undefined)
      assert.deepStrictEqual(mine, [uuid(1), uuid(2), uuid(3), uuid(4)])
    }))
})

describe("exact rounding", () => {
  it("divRound rounds half away from zero", () => {
    assert.deepStrictEqual([divRound(25713n, 5n), divRound(5n, 2n), divRound(7n, 2n), divRound(-5n, 2n), divRound(-7n, 3n), divRound(4n, 3n)],
      [5143n, 3n, 4n, -3n, -2n, 1n])
    assert.strictEqual(divRound(10n ** 40n + 1n, 2n), 5n * 10n ** 39n + 1n)
  })
  it("ratio4 has four places, half up", () => {
    assert.deepStrictEqual([ratio4(2n, 7n), ratio4(1n, 3n), ratio4(2n, 3n), ratio4(1n, 20000n), ratio4(0n, 5n), ratio4(5n, 5n)],
      ["0.2857", "0.3333", "0.6667", "0.0001", "0.0000", "1.0000"])
  })
})
