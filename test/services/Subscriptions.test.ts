/**
 * Subscriptions against a real PostgreSQL database, periods computed from TestClock: activation, renewal from the
 * period end (or from now once it ended), an upgrade paid now, reversal, the user's cancel and plan change, the
 * one-current-subscription constraint, and `addInterval` agreeing with PostgreSQL's interval arithmetic.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, TestClock } from "effect"
import { addInterval } from "../../src/domain/Period.ts"
import { Subscriptions } from "../../services/Subscriptions.ts"
import { TestDatabase } from "../support/database.ts"
import { seedPayment, seedPlan, seedSubscription, subscriptionRow } from "./SubscriptionFixtures.ts"

const services = Subscriptions.Default.pipe(Layer.provideMerge(TestDatabase))
const T0 = Date.parse("2025-01-31T12:00:00Z")
const iso = (d: Date) => d.toISOString()

/** Pays `planId` now (a confirmed payment row first, as Settlement does). */
const pay = (userId: string, planId: number, interval: "month" | "year" = "month", amount = 100n) =>
  Effect.gen(function*() {
    const paymentId = yield* seedPayment({ userId, planId, amount })
    return { ...yield* (yield* Subscriptions).applyPayment({ userId, planId, interval, paymentId, ledgerId: `payment:${paymentId}` }), paymentId }
  })

const periodOf = (id: string) =>
  Effect.map(subscriptionRow(id), (r) => [r.status, iso(r.current_period_start), iso(r.current_period_end)] as const)

describe("Subscriptions", () => {
  it.layer(services, { timeout: 60_000 })((it) => {
    it.effect("first payment activates from now; paying again before the end extends from the end, without drift", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const plan = yield* seedPlan("renew-plan", "month", [["anvil", "native", 100n]])
        const first = yield* pay("renew", plan)
        assert.deepStrictEqual([first.reason, first.previousPlanId, first.replacedSubscriptionId], ["activated", null, null])
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["active", "2025-01-31T12:00:00.000Z", "2025-02-28T12:00:00.000Z"])

        yield* TestClock.setTime(Date.parse("2025-02-20T00:00:00Z"))
        const second = yield* pay("renew", plan)
        assert.deepStrictEqual([second.reason, second.subscriptionId, second.previousPlanId], ["renewed", first.subscriptionId, plan])
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["active", "2025-01-31T12:00:00.000Z", "2025-03-31T12:00:00.000Z"])
        // Paid twice more in advance: Apr 30, then May 31 (the Jan 31 anchor, not Feb 28 + 1 month = Mar 28).
        yield* pay("renew", plan)
        yield* pay("renew", plan)
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["active", "2025-01-31T12:00:00.000Z", "2025-05-31T12:00:00.000Z"])
      }))

    it.effect("paying after the period ended (past_due) renews from now and clears a scheduled cancel or change", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const plan = yield* seedPlan("late-plan", "year", [["anvil", "native", 100n]])
        yield* seedPlan("late-other", "month", [["anvil", "native", 1n]])
        const start = new Date(T0 - 400 * 86_400_000)
        const id = yield* seedSubscription({ userId: "late", planId: plan, start, end: addInterval(start, "year"), status: "past_due" })
        yield* (yield* Subscriptions).changePlan("late", "late-other")
        const applied = yield* pay("late", plan, "year")
        assert.deepStrictEqual([applied.reason, applied.subscriptionId], ["renewed", id])
        assert.deepStrictEqual(yield* periodOf(id), ["active", "2025-01-31T12:00:00.000Z", "2026-01-31T12:00:00.000Z"])
        const row = yield* subscriptionRow(id)
        assert.deepStrictEqual([row.next_plan_slug, row.cancel_at_period_end], [null, false])
      }))

    it.effect("another plan worth more per month, paid now, replaces the current subscription from now; 18 of 28 days credited", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const basic = yield* seedPlan("switch-basic", "month", [["anvil", "native", 100n]])
        const pro = yield* seedPlan("switch-pro", "year", [["anvil", "native", 1500n]])
        const first = yield* pay("switcher", basic)
        yield* TestClock.adjust("10 days")
        const second = yield* pay("switcher", pro, "year", 1500n)
        assert.deepStrictEqual([second.reason, second.previousPlanId, second.replacedSubscriptionId], ["activated", basic, first.subscriptionId])
        // ⌈100 × 18 days / 28 days⌉ = ⌈64.29⌉ = 65
        assert.deepStrictEqual(second.credits, [{ paymentId: first.paymentId, network: "anvil", token: "native", amount: 65n }])
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["canceled", "2025-01-31T12:00:00.000Z", "2025-02-10T12:00:00.000Z"])
        assert.deepStrictEqual(yield* periodOf(second.subscriptionId), ["active", "2025-02-10T12:00:00.000Z", "2026-02-10T12:00:00.000Z"])
      }))

    it.effect("a reversed payment takes its interval back, and expires the subscription when nothing is left", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const plan = yield* seedPlan("revoke-plan", "month", [["anvil", "native", 100n]])
        const only = yield* pay("revoker2", plan)
        const subscriptions = yield* Subscriptions
        yield* TestClock.adjust("1 day")
        assert.strictEqual(yield* subscriptions.revokePayment(only.paymentId), only.subscriptionId)
        assert.deepStrictEqual(yield* periodOf(only.subscriptionId), ["expired", "2025-01-31T12:00:00.000Z", "2025-02-01T12:00:00.000Z"])
        // Revoked once: revoking it again takes nothing more.
        assert.isNull(yield* subscriptions.revokePayment(only.paymentId))
      }))

    it.effect("a reversal takes back exactly what that payment bought, whatever renewals followed", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const plan = yield* seedPlan("revoke-any", "month", [["anvil", "native", 100n]])
        const first = yield* pay("revoker", plan)
        const second = yield* pay("revoker", plan)
        const third = yield* pay("revoker", plan)
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["active", "2025-01-31T12:00:00.000Z", "2025-04-30T12:00:00.000Z"])
        const subscriptions = yield* Subscriptions
        // The first payment is no longer the subscription's last one; its month is still taken back.
        assert.strictEqual(yield* subscriptions.revokePayment(first.paymentId), first.subscriptionId)
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["active", "2025-01-31T12:00:00.000Z", "2025-03-31T12:00:00.000Z"])
        assert.strictEqual(yield* subscriptions.revokePayment(third.paymentId), first.subscriptionId)
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["active", "2025-01-31T12:00:00.000Z", "2025-02-28T12:00:00.000Z"])
        assert.strictEqual(yield* subscriptions.revokePayment(second.paymentId), first.subscriptionId)
        assert.deepStrictEqual(yield* periodOf(first.subscriptionId), ["expired", "2025-01-31T12:00:00.000Z", "2025-01-31T12:00:01.000Z"])
      }))

    it.effect("change: validates the plan, schedules it, the current plan's slug undoes it; cancel drops it", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const basic = yield* seedPlan("change-basic", "month", [["anvil", "native", 100n]])
        yield* seedPlan("change-pro", "month", [["anvil", "native", 300n]])
        yield* seedPlan("change-retired", "month", [["anvil", "native", 300n]])
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE plans SET is_active = false WHERE slug = 'change-retired'`
        const subscriptions = yield* Subscriptions

        const none = yield* Effect.flip(subscriptions.changePlan("changer", "change-pro"))
        assert.strictEqual(none._tag, "NoCurrentSubscription")
        const { subscriptionId } = yield* pay("changer", basic)
        for (const slug of ["no-such-plan", "change-retired"]) {
          const bad = yield* Effect.flip(subscriptions.changePlan("changer", slug))
          assert.deepStrictEqual([bad._tag, "slug" in bad ? bad.slug : undefined], ["PlanUnavailable", slug])
        }
        const canceled = yield* subscriptions.cancel("changer")
        assert.isTrue(canceled.cancel_at_period_end)
        const scheduled = yield* subscriptions.changePlan("changer", "change-pro")
        assert.deepStrictEqual([scheduled.plan_slug, scheduled.next_plan_slug, scheduled.cancel_at_period_end], ["change-basic", "change-pro", false])
        const undone = yield* subscriptions.changePlan("changer", "change-basic")
        assert.strictEqual(undone.next_plan_slug, null)
        yield* subscriptions.changePlan("changer", "change-pro")
        const view = yield* subscriptions.cancel("changer")
        assert.deepStrictEqual([view.next_plan_slug, view.cancel_at_period_end], [null, true])
        assert.strictEqual((yield* subscriptionRow(subscriptionId)).status, "active")
      }))

    it.effect("at most one current subscription per user is a constraint", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const plan = yield* seedPlan("unique-plan", "month", [["anvil", "native", 100n]])
        const start = new Date(T0)
        yield* seedSubscription({ userId: "twice", planId: plan, start, end: addInterval(start, "month") })
        const second = yield* Effect.exit(seedSubscription({ userId: "twice", planId: plan, start, end: addInterval(start, "month"), status: "past_due" }))
        assert.isTrue(Exit.isFailure(second))
        yield* seedSubscription({ userId: "twice", planId: plan, start, end: addInterval(start, "month"), status: "expired" })
      }))

    it.effect("addInterval agrees with PostgreSQL's timestamptz + interval (UTC) on every day of 2023–2025", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const days = Array.from({ length: 3 * 366 }, (_, i) => new Date(Date.parse("2023-01-01T07:08:09.123Z") + i * 86_400_000))
        for (const [interval, step] of [["month", "1 month"], ["year", "1 year"]] as const) {
          const rows = yield* sql.withTransaction(Effect.zipRight(
            sql`SET LOCAL TIME ZONE 'UTC'`,
            sql<{ next: Date }>`SELECT d::timestamptz + ${step}::interval AS next
              FROM jsonb_array_elements_text(${JSON.stringify(days.map(iso))}::jsonb) WITH ORDINALITY AS u(d, i) ORDER BY i`
          ))
          assert.deepStrictEqual(rows.map((r) => iso(r.next)), days.map((d) => iso(addInterval(d, interval))))
        }
      }))
  })
})
