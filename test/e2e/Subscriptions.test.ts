/**
 * The subscription lifecycle through the running service: a subscription paid on chain is changed and canceled
 * over HTTP (with the 401/404/400 answers around it), and the leader-only scheduler inside the service moves an
 * ended subscription to past_due (its debt shown in /me/summary) and expires an abandoned checkout.
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { addInterval } from "../../src/domain/Period.ts"
import { SubscriptionView, Summary } from "../../src/http/Me/Api.ts"
import { App, appHarness, decode, errorOf, eventually, PASS, registerContractAndPlan, type Response } from "../support/app.ts"
import { checkoutNative, mine, mintedEvent, paymentStatus, sendPayload, waitForStatus } from "../support/payments.ts"
import { notificationsOf, planEventsOf, planIdOf, seedPayment, seedSubscription } from "../services/SubscriptionFixtures.ts"

const PRICES = { native: 10n ** 16n, token: 5_000_000n }
const viewOf = decode(SubscriptionView)
const rejection = (res: Response) => {
  assert.deepStrictEqual(Object.keys(res.body as object).sort(), ["error", "message"])
  return [res.status, errorOf(res).error] as const
}

layer(appHarness({ env: { BILLING_SCHEDULER_EVERY: "200 millis" } }), { timeout: 120_000, excludeTestServices: true })(
  "subscriptions over HTTP",
  (it) => {
    it.effect("change and cancel a paid subscription; 401 without a token, 404 without a subscription, 400 for a bad plan", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { checkout, token } = yield* checkoutNative(app, "sub-basic", PRICES, "sub-user", 3)
        yield* registerContractAndPlan(app, "sub-pro", PRICES)
        const [receipt] = yield* sendPayload(app, checkout, 3)
        yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))
        yield* waitForStatus(checkout.transaction_id, "seen")
        yield* mine(app, 1)
        yield* waitForStatus(checkout.transaction_id, "confirmed")

        const post = (path: string, t: string | undefined, body?: unknown) =>
          app.request("POST", `/v1/billing/me/subscription/${path}`, {
            ...(t === undefined ? {} : { token: t }),
            ...(body === undefined ? {} : { body })
          })
        assert.deepStrictEqual(rejection(yield* post("cancel", undefined)), [401, "unauthorized"])
        assert.deepStrictEqual(rejection(yield* post("change", undefined, { plan_slug: "sub-pro" })), [401, "unauthorized"])
        const nobody = app.token("sub-nobody")
        assert.deepStrictEqual(rejection(yield* post("cancel", nobody)), [404, "not_found"])
        assert.deepStrictEqual(rejection(yield* post("change", nobody, { plan_slug: "sub-pro" })), [404, "not_found"])
        assert.deepStrictEqual(rejection(yield* post("change", token, { plan_slug: "no-such-plan" })), [400, "invalid_plan"])
        assert.deepStrictEqual(rejection(yield* post("change", token, { plan_slug: "Not A Slug" })), [400, "invalid_request"])
        assert.deepStrictEqual(rejection(yield* post("change", token, {})), [400, "invalid_request"])

        const changed = yield* post("change", token, { plan_slug: "sub-pro" })
        assert.strictEqual(changed.status, 200)
        const scheduled = viewOf(changed)
        assert.deepStrictEqual([scheduled.plan_slug, scheduled.status, scheduled.next_plan_slug], ["sub-basic", "active", "sub-pro"])

        const canceled = yield* post("cancel", token)
        assert.strictEqual(canceled.status, 200)
        const view = viewOf(canceled)
        assert.deepStrictEqual([view.status, view.cancel_at_period_end, view.next_plan_slug], ["active", true, null])
        assert.deepStrictEqual(view.current_period_end, scheduled.current_period_end, "runs to the period end")
        const again = yield* post("cancel", token)
        assert.deepStrictEqual([again.status, again.body], [200, canceled.body], "idempotent")

        const summary = decode(Summary)(yield* app.request("GET", "/v1/billing/me/summary", { token }))
        assert.deepStrictEqual(summary.subscription, view)
        assert.deepStrictEqual(summary.debt, [])
        // The cancel is a flag until the period ends: no `canceled` event yet.
        assert.notInclude((yield* planEventsOf("sub-user")).map((e) => e.reason), "canceled")
      }))

    it.effect("the scheduler in the service: an ended subscription becomes past_due with its debt; a stale checkout expires", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { plan } = yield* registerContractAndPlan(app, "sched-plan", PRICES)
        assert.strictEqual(plan.status, 201)
        const planId = yield* planIdOf("sched-plan")
        const end = new Date(Date.now() - 60_000)
        const start = addInterval(end, "month", -1)
        const paid = yield* seedPayment({ userId: "sched-user", planId, amount: PRICES.native })
        yield* seedSubscription({ userId: "sched-user", planId, start, end, lastPaymentId: paid })
        const stale = yield* seedPayment({ userId: "sched-user", planId, status: "pending", expiresAt: new Date(Date.now() - 11 * 60_000) })

        const token = app.token("sched-user")
        const summary = yield* eventually(
          Effect.map(app.request("GET", "/v1/billing/me/summary", { token }), decode(Summary)),
          (s) => s.subscription?.status === "past_due",
          "the scheduler to mark the subscription past_due"
        )
        assert.deepStrictEqual(summary.debt, [
          { plan_slug: "sched-plan", network: "anvil", token: "native", amount: PRICES.native.toString(), due_since: end.toISOString() }
        ])
        yield* eventually(paymentStatus(stale), (p) => p.status === "expired", "the stale checkout to expire")
        assert.deepStrictEqual((yield* planEventsOf("sched-user")).map((e) => e.reason), ["past_due"])
        assert.deepStrictEqual((yield* notificationsOf("sched-user")).map((n) => n.kind), ["subscription.past_due"])
      }))
  }
)
