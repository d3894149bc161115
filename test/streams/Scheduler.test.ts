/**
 * The scheduler's transitions driven by TestClock on a real PostgreSQL database: subscriptions are seeded directly,
 * time moves with `TestClock.adjust` / `setTime`, and one pass runs per step (the last test runs the fiber's loop;
 * the lease around it is Leases' own, tested in test/services/Leases.test.ts, and SchedulerLive runs in the e2e test). Each transition is checked together with its plan.changed event and notification.
 */
import type { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, TestClock, TestServices } from "effect"
import { addInterval } from "../../src/domain/Period.ts"
import { Subscriptions } from "../../services/Subscriptions.ts"
import { UserBundle } from "../../services/UserBundle.ts"
import { Scheduler } from "../../streams/Scheduler.ts"
import { TestDatabase } from "../support/database.ts"
import {
  auditOf,
  notificationsOf,
  paymentStatusOf,
  planEventsOf,
  seedPayment,
  seedPlan,
  seedSubscription,
  subscriptionRow,
  TOKEN
} from "../services/SubscriptionFixtures.ts"

const config = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
  ["BILLING_SCHEDULER_EVERY", "30 seconds"],
  ["BILLING_GRACE_PERIOD", "3 days"],
  ["BILLING_RENEWAL_NOTICE", "3 days"],
  ["BILLING_PENDING_TTL_GRACE", "10 minutes"]
])))

/** Jan 31: the first period ends on Feb 28 (month-end clamping), 28 days later. */
const T0 = Date.parse("2025-01-31T12:00:00Z")
const FEB_28 = new Date("2025-02-28T12:00:00Z")
const GRACE = Duration.days(3)

const services = Layer.mergeAll(Scheduler.Default, Subscriptions.Default, UserBundle.Default).pipe(
  Layer.provideMerge(TestDatabase),
  Layer.provide(config)
)

const pass = Effect.flatMap(Scheduler, (s) => s.pass)
const now = Effect.map(TestClock.currentTimeMillis, (ms) => new Date(ms))
const reasons = (userId: string) => Effect.map(planEventsOf(userId), (events) => events.map((e) => e.reason))
const kinds = (userId: string) => Effect.map(notificationsOf(userId), (rows) => rows.map((r) => r.kind))

/** A user with a plan, a confirmed payment (anvil, native) and an active subscription from T0 for one month. */
const subscriber = (userId: string, planSlug: string, over: { cancelAtPeriodEnd?: boolean } = {}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const planId = yield* seedPlan(planSlug, "month", [["anvil", "native", 100n], ["anvil", TOKEN, 7n]])
    const paymentId = yield* seedPayment({ userId, planId })
    const start = yield* now
    const id = yield* seedSubscription({
      userId,
      planId,
      start,
      end: addInterval(start, "month"),
      lastPaymentId: paymentId,
      ...over
    })
    return { planId, paymentId, id }
  })

describe("Scheduler", () => {
  it.layer(services, { timeout: 60_000 })((it) => {
    it.effect("active → past_due at the period end → expired after the grace period, each once with its event", () =>
      Effect.gen(function*() {
        const { id } = yield* subscriber("lapse", "lapse-plan")
        assert.deepStrictEqual((yield* pass).pastDue, 0)

        yield* TestClock.setTime(FEB_28.getTime() - 1)
        yield* pass
        assert.strictEqual((yield* subscriptionRow(id)).status, "active", "one millisecond before the end")

        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* pass).pastDue, 1)
        assert.strictEqual((yield* subscriptionRow(id)).status, "past_due")
        const [pastDue] = yield* notificationsOf("lapse").pipe(Effect.map((n) => n.filter((r) => r.kind === "subscription.past_due")))
        assert.strictEqual(pastDue?.payload["grace_until"], "2025-03-03T12:00:00.000Z")

        yield* TestClock.adjust(Duration.subtract(GRACE, Duration.millis(1)))
        assert.strictEqual((yield* pass).expired, 0)
        assert.strictEqual((yield* subscriptionRow(id)).status, "past_due", "still within the grace period")

        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* pass).expired, 1)
        assert.strictEqual((yield* subscriptionRow(id)).status, "expired")
        yield* TestClock.adjust("30 days")
        assert.deepStrictEqual(yield* pass, { nextPeriods: 0, pastDue: 0, canceled: 0, expired: 0, renewalDue: 0, checkoutsExpired: 0 })

        const events = yield* planEventsOf("lapse")
        assert.deepStrictEqual(events.map((e) => [e.reason, e.subscription?.status, e.plan.slug, e.previous_plan, e.transaction]), [
          ["past_due", "past_due", "lapse-plan", null, null],
          ["expired", "expired", "lapse-plan", null, null]
        ])
        assert.deepStrictEqual(yield* kinds("lapse"), ["subscription.renewal_due", "subscription.past_due", "subscription.expired"])
      }))

    it.effect("a subscription that ended long ago goes through past_due and expired in one pass", () =>
      Effect.gen(function*() {
        const { id } = yield* subscriber("asleep", "asleep-plan")
        yield* TestClock.adjust("90 days")
        const report = yield* pass
        assert.deepStrictEqual([report.pastDue, report.expired], [1, 1])
        assert.strictEqual((yield* subscriptionRow(id)).status, "expired")
        assert.deepStrictEqual(yield* reasons("asleep"), ["past_due", "expired"])
      }))

    it.effect("cancel at period end: flag recorded at once, canceled (not past_due) at the end, no debt", () =>
      Effect.gen(function*() {
        const { id } = yield* subscriber("leaver", "leaver-plan")
        const subscriptions = yield* Subscriptions
        const view = yield* subscriptions.cancel("leaver")
        assert.deepStrictEqual([view.status, view.cancel_at_period_end], ["active", true])
        assert.deepStrictEqual(yield* subscriptions.cancel("leaver"), view, "idempotent")
        assert.deepStrictEqual(yield* reasons("leaver"), [], "nothing is emitted before it ends")

        yield* TestClock.setTime(FEB_28)
        const report = yield* pass
        assert.deepStrictEqual([report.pastDue, report.canceled, report.renewalDue], [0, 1, 0])
        assert.strictEqual((yield* subscriptionRow(id)).status, "canceled")
        assert.deepStrictEqual(yield* reasons("leaver"), ["canceled"])
        assert.deepStrictEqual(yield* kinds("leaver"), ["subscription.expired"], "no renewal notice for a canceled subscription")
        assert.deepStrictEqual((yield* (yield* UserBundle).summary("leaver")).debt, [])
        const gone = yield* Effect.flip(subscriptions.cancel("leaver"))
        assert.strictEqual(gone._tag, "NoCurrentSubscription")
      }))

    it.effect("a past_due subscription its owner cancels is canceled at the next pass, and owes nothing", () =>
      Effect.gen(function*() {
        const { id } = yield* subscriber("late-leaver", "late-leaver-plan")
        yield* TestClock.setTime(FEB_28)
        yield* pass
        const bundle = yield* UserBundle
        assert.strictEqual((yield* bundle.summary("late-leaver")).debt.length, 1)
        yield* (yield* Subscriptions).cancel("late-leaver")
        assert.deepStrictEqual((yield* bundle.summary("late-leaver")).debt, [])
        assert.strictEqual((yield* pass).canceled, 1)
        assert.strictEqual((yield* subscriptionRow(id)).status, "canceled")
        assert.deepStrictEqual(yield* reasons("late-leaver"), ["past_due", "canceled"])
      }))

    it.effect("renewal_due: once per period, within the notice window, and again after a renewal", () =>
      Effect.gen(function*() {
        const { id, planId } = yield* subscriber("renewer", "renewer-plan")
        yield* TestClock.setTime(FEB_28.getTime() - Duration.toMillis("3 days") - 1)
        assert.strictEqual((yield* pass).renewalDue, 0, "before the window")
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* pass).renewalDue, 1)
        yield* TestClock.adjust("1 day")
        assert.strictEqual((yield* pass).renewalDue, 0, "already told for this period")
        const [notice] = yield* notificationsOf("renewer")
        assert.deepStrictEqual([notice?.kind, notice?.payload["current_period_end"]], ["subscription.renewal_due", FEB_28.toISOString()])

        // Paid one day before the end: the period is extended from its end (anchored on Jan 31: Mar 31).
        const paymentId = yield* seedPayment({ userId: "renewer", planId })
        const applied = yield* (yield* Subscriptions).applyPayment({ userId: "renewer", planId, interval: "month", paymentId, ledgerId: `payment:${paymentId}` })
        assert.deepStrictEqual([applied.reason, applied.subscriptionId], ["renewed", id])
        const renewed = yield* subscriptionRow(id)
        assert.deepStrictEqual([renewed.current_period_start.toISOString(), renewed.current_period_end.toISOString()], [
          new Date(T0).toISOString(),
          "2025-03-31T12:00:00.000Z"
        ])
        yield* TestClock.setTime(Date.parse("2025-03-28T12:00:00Z"))
        assert.strictEqual((yield* pass).renewalDue, 1, "a new period, a new notice")
        assert.strictEqual((yield* pass).renewalDue, 0)
        assert.deepStrictEqual(yield* kinds("renewer"), ["subscription.renewal_due", "subscription.renewal_due"])
      }))

    it.effect("a scheduled plan change applies at the period end: past_due on the next plan, debt in its price", () =>
      Effect.gen(function*() {
        const { id, planId } = yield* subscriber("mover", "mover-basic")
        const pro = yield* seedPlan("mover-pro", "year", [["anvil", "native", 1200n], ["anvil", TOKEN, 84n], ["base", "native", 5n]])
        const subscriptions = yield* Subscriptions
        const view = yield* subscriptions.changePlan("mover", "mover-pro")
        assert.deepStrictEqual([view.plan_slug, view.next_plan_slug, view.status], ["mover-basic", "mover-pro", "active"])

        yield* TestClock.setTime(FEB_28)
        yield* pass
        const moved = yield* subscriptionRow(id)
        assert.deepStrictEqual([moved.status, moved.plan_slug, moved.next_plan_slug], ["past_due", "mover-pro", null])
        const [event] = yield* planEventsOf("mover")
        assert.deepStrictEqual([event?.reason, event?.plan.slug, event?.previous_plan?.slug], ["past_due", "mover-pro", "mover-basic"])

        // Debt: the next plan's price in the network/token last paid with (anvil, native), from the period end.
        const summary = yield* (yield* UserBundle).summary("mover")
        assert.deepStrictEqual(summary.debt, [
          { plan_slug: "mover-pro", network: "anvil", token: "native", amount: "1200", due_since: FEB_28.toISOString() }
        ])
        assert.strictEqual(summary.subscription?.status, "past_due")

        // Paying the (now current) plan after the end renews it from now; the debt is gone.
        yield* TestClock.adjust("1 day")
        const paymentId = yield* seedPayment({ userId: "mover", planId: pro, amount: 1200n })
        yield* subscriptions.applyPayment({ userId: "mover", planId: pro, interval: "year", paymentId, ledgerId: `payment:${paymentId}` })
        const paid = yield* subscriptionRow(id)
        assert.deepStrictEqual([paid.status, paid.current_period_start.toISOString(), paid.current_period_end.toISOString()], [
          "active",
          "2025-03-01T12:00:00.000Z",
          "2026-03-01T12:00:00.000Z"
        ])
        assert.deepStrictEqual((yield* (yield* UserBundle).summary("mover")).debt, [])
        void planId
      }))

    it.effect("debt: a past_due period's price in the token last paid with; abandoned checkouts are not debt", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const planId = yield* seedPlan("debtor-plan", "month", [["anvil", "native", 100n], ["anvil", TOKEN, 7n]])
        const paymentId = yield* seedPayment({ userId: "debtor", planId, token: TOKEN, amount: 7n })
        const start = yield* now
        yield* seedSubscription({ userId: "debtor", planId, start, end: addInterval(start, "month"), lastPaymentId: paymentId })
        yield* seedPayment({ userId: "debtor", planId, status: "pending", expiresAt: new Date(T0 + 3_600_000) })
        const bundle = yield* UserBundle
        assert.deepStrictEqual((yield* bundle.summary("debtor")).debt, [], "active: nothing owed, pending checkout or not")
        yield* TestClock.setTime(FEB_28)
        yield* pass
        assert.deepStrictEqual((yield* bundle.summary("debtor")).debt, [
          { plan_slug: "debtor-plan", network: "anvil", token: TOKEN, amount: "7", due_since: FEB_28.toISOString() }
        ])
        yield* TestClock.adjust(GRACE)
        yield* pass
        assert.deepStrictEqual((yield* bundle.summary("debtor")).debt, [], "expired: nothing owed")
      }))

    it.effect("stale pending checkouts expire after deadline + grace; seen-on-chain or still-valid ones stay", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const planId = yield* seedPlan("stale-plan", "month", [["anvil", "native", 100n]])
        const deadline = new Date(T0 + 3_600_000)
        const stale = yield* seedPayment({ userId: "stale", planId, status: "pending", expiresAt: deadline })
        const onChain = yield* seedPayment({ userId: "stale2", planId, status: "pending", expiresAt: deadline, txHash: "0x" + "11".repeat(32) })
        const later = yield* seedPayment({ userId: "stale3", planId, status: "pending", expiresAt: new Date(T0 + 7_200_000) })
        const confirmed = yield* seedPayment({ userId: "stale4", planId, status: "confirmed", expiresAt: deadline })

        yield* TestClock.setTime(deadline.getTime() + Duration.toMillis("10 minutes") - 1)
        assert.strictEqual((yield* pass).checkoutsExpired, 0, "within the grace")
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* pass).checkoutsExpired, 1)
        assert.deepStrictEqual(yield* Effect.all([stale, onChain, later, confirmed].map(paymentStatusOf)), [
          "expired",
          "pending",
          "pending",
          "confirmed"
        ])
        const [audit] = yield* auditOf(`payment:${stale}`)
        assert.deepStrictEqual([audit?.actor, audit?.action, audit?.after], ["system:scheduler", "payment.expired", { status: "expired" }])
        assert.strictEqual((yield* pass).checkoutsExpired, 0)
        assert.deepStrictEqual(yield* kinds("stale"), [], "an abandoned checkout notifies nobody")
      }))
  })

  it.scoped("the fiber runs a pass at start and then every BILLING_SCHEDULER_EVERY, on TestClock", () =>
    Effect.gen(function*() {
      const { id } = yield* subscriber("fiber", "fiber-plan")
      yield* Effect.forkScoped((yield* Scheduler).loop)
      /**
       * TestClock decides when a pass runs; the pass itself talks to PostgreSQL in real time. Each try moves the
       * clock by one period (a pass may be sleeping towards it) and gives the fiber 50 ms of real time.
       */
      const statusBecomes = (status: string, tries = 200): Effect.Effect<void, never, SqlClient.SqlClient> =>
        Effect.gen(function*() {
          yield* TestClock.adjust("30 seconds")
          yield* TestServices.provideLive(Effect.sleep("50 millis"))
          if ((yield* subscriptionRow(id)).status === status) return
          if (tries === 0) return yield* Effect.dieMessage(`subscription never became ${status}`)
          return yield* statusBecomes(status, tries - 1)
        })
      yield* TestServices.provideLive(Effect.sleep("200 millis"))
      assert.strictEqual((yield* subscriptionRow(id)).status, "active", "the first pass changed nothing")
      yield* TestClock.setTime(FEB_28)
      yield* statusBecomes("past_due")
      yield* TestClock.adjust(GRACE)
      yield* statusBecomes("expired")
      assert.deepStrictEqual(yield* reasons("fiber"), ["past_due", "expired"])
    }).pipe(Effect.provide(services)), { timeout: 60_000 })
})
