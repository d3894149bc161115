/**
 * `billing.plan.changed.v1` end to end: real payments (activation, renewal), a failure and a deep-reorg reversal
 * over the running service; each event is taken from the EVENTS stream (published by the OutboxRelay) and
 * validated against `docs/events/billing.plan.changed.v1.schema.json` with ajv, then decoded with the Effect Schema.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it as plain, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { type Hex, zeroAddress } from "viem"
import { PlanChanged } from "../../src/domain/PlanChanged.ts"
import { App, appHarness, eventually, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { chainCall, devAccount } from "../support/anvil.ts"
import { checkoutNative, checkoutOf, mine, mintedEvent, mintWithQuote, sendPayload, waitForStatus } from "../support/payments.ts"
import { awaitMessage, type EventMessage, messagesOn, planChangedValidator } from "./eventsStream.ts"

const PRICES = { native: 10n ** 16n, token: 25_000_000n }
const validate = planChangedValidator()
const decodeEvent = Schema.decodeUnknownSync(PlanChanged)

/** Valid against the JSON Schema (ajv's errors in the message otherwise), then decoded. */
const checked = (body: unknown) => {
  const valid = validate(body)
  assert.isTrue(valid, JSON.stringify(validate.errors))
  return decodeEvent(body)
}

const eventFor = (transactionId: string, reason: string) =>
  awaitMessage("plan.changed.v1", (messages: ReadonlyArray<EventMessage>) =>
    messages.map((m) => m.body).find((b) =>
      Schema.is(Schema.Struct({ reason: Schema.Literal(reason), transaction: Schema.Struct({ id: Schema.Literal(transactionId) }) }))(b)
    ), `plan.changed ${reason} of ${transactionId}`).pipe(Effect.map(checked))

/** Pays a native checkout over HTTP with a webhook and waits for it to be confirmed. */
const payConfirmed = (app: Harness, plan: string, user: string, account: number) =>
  Effect.gen(function*() {
    const token = app.token(user)
    const checkout = checkoutOf(yield* app.request("POST", "/v1/billing/checkout", {
      token,
      body: { plan_slug: plan, wallet_address: devAccount(account).address, network: "anvil", token: "native" }
    }))
    const [receipt] = yield* sendPayload(app, checkout, account)
    yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))
    yield* mine(app, 1)
    yield* waitForStatus(checkout.transaction_id, "confirmed")
    return { checkout, receipt: receipt! }
  })

const reorg = (app: Harness, depth: number) =>
  chainCall(() =>
    app.devnet.testClient.request<{ Parameters: [number, Array<never>]; ReturnType: null }>({ method: "anvil_reorg", params: [depth, []] })
  ).pipe(Effect.orDie)

/** The chain listener's cursor is at the head: it has seen every block (and will see the reorg). */
const listenerCaughtUp = (app: Harness) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tip = yield* chainCall(() => app.devnet.publicClient.getBlock()).pipe(Effect.orDie)
    yield* eventually(
      sql<{ block_hash: string }>`SELECT block_hash FROM chain_cursors WHERE network = 'anvil'`.pipe(Effect.orDie),
      (rows) => rows[0]?.block_hash === tip.hash,
      `listener at block ${tip.number}`
    )
    return tip
  })

const env = { BILLING_LISTENER_POLL: "200 millis", BILLING_OUTBOX_POLL: "100 millis", APP_BILLING_FINANCE_OPS_USER_ID: "fin-ops" }

layer(appHarness({ env }), { timeout: 120_000, excludeTestServices: true })("billing.plan.changed.v1 over the EVENTS stream", (it) => {
  it.effect("a first payment activates, a second renews: plan, subscription and transaction as the schema says", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "evpro", PRICES)
      const first = yield* payConfirmed(app, "evpro", "ev-user", 1)
      const activated = yield* eventFor(first.checkout.transaction_id, "activated")
      assert.strictEqual(activated.type, "billing.plan.changed.v1")
      assert.deepStrictEqual(activated.user, { id: "ev-user" })
      assert.deepStrictEqual(activated.plan, { slug: "evpro", interval: "month", monthly_limits: { requests: 1000 }, features: ["api"] })
      assert.strictEqual(activated.subscription?.status, "active")
      assert.isFalse(activated.subscription?.cancel_at_period_end)
      assert.isNull(activated.previous_plan)
      assert.deepStrictEqual(activated.transaction, {
        id: first.checkout.transaction_id,
        order_id: first.checkout.order_id,
        status: "confirmed",
        failure_reason: null,
        network: "anvil",
        token: "native",
        amount: PRICES.native,
        tx_hash: first.receipt.transactionHash
      })

      const second = yield* payConfirmed(app, "evpro", "ev-user", 1)
      const renewed = yield* eventFor(second.checkout.transaction_id, "renewed")
      assert.strictEqual(renewed.subscription?.id, activated.subscription?.id, "the same subscription, extended")
      assert.isTrue(renewed.subscription!.current_period_end > activated.subscription!.current_period_end)
      assert.isNull(renewed.previous_plan)
      assert.notStrictEqual(renewed.event_id, activated.event_id)

      // Paying for another plan now replaces the current one: activated, with the previous plan.
      yield* registerContractAndPlan(app, "evmax", PRICES)
      const upgrade = yield* payConfirmed(app, "evmax", "ev-user", 1)
      const switched = yield* eventFor(upgrade.checkout.transaction_id, "activated")
      assert.strictEqual(switched.plan.slug, "evmax")
      assert.strictEqual(switched.previous_plan?.slug, "evpro")
      assert.notStrictEqual(switched.subscription?.id, activated.subscription?.id)
    }))

  it.effect("a failed payment: payment_failed with the failure_reason, the plan paid for, no subscription", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout } = yield* checkoutNative(app, "evfail", PRICES, "ev-failed", 2)
      const receipt = yield* mintWithQuote(app.devnet, 2, {
        contract: app.devnet.info.contract_address,
        orderId: checkout.order_id as Hex,
        token: zeroAddress,
        amount: PRICES.native / 2n,
        deadline: BigInt(checkout.payload.deadline)
      })
      yield* app.webhook(mintedEvent(PASS, receipt, checkout.order_id))
      yield* mine(app, 2)
      yield* waitForStatus(checkout.transaction_id, "failed")
      const failed = yield* eventFor(checkout.transaction_id, "payment_failed")
      assert.strictEqual(failed.plan.slug, "evfail")
      assert.isNull(failed.subscription)
      assert.strictEqual(failed.transaction?.status, "failed")
      assert.strictEqual(failed.transaction?.failure_reason, "underpaid")
      assert.strictEqual(failed.transaction?.amount, PRICES.native, "the checkout's amount, not what was paid")
    }))

  it.effect("a reorg deeper than the confirmations: reversed, the subscription loses its period", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "evreorg", PRICES)
      const { checkout, receipt } = yield* payConfirmed(app, "evreorg", "ev-reorg", 3)
      yield* mine(app, 1)
      const tip = yield* listenerCaughtUp(app)
      yield* reorg(app, Number(tip.number - receipt.blockNumber) + 1)
      yield* waitForStatus(checkout.transaction_id, "reversed")
      const reversed = yield* eventFor(checkout.transaction_id, "reversed")
      assert.strictEqual(reversed.transaction?.status, "reversed")
      assert.strictEqual(reversed.plan.slug, "evreorg")
      assert.strictEqual(reversed.subscription?.status, "expired", "its only period was taken back")
    }))

  it.effect("every plan.changed message on the stream is valid, once per event", () =>
    Effect.gen(function*() {
      const messages = yield* messagesOn("plan.changed.v1")
      assert.isAtLeast(messages.length, 6)
      for (const m of messages) checked(m.body)
      const ids = messages.map((m) => decodeEvent(m.body).event_id)
      assert.strictEqual(new Set(ids).size, ids.length)
    }))
})

describe("the billing.plan.changed.v1 JSON Schema", () => {
  const event = {
    event_id: "0b0f6c1e-8f59-4d0e-9a55-3f3c1f0a6f4e",
    type: "billing.plan.changed.v1",
    occurred_at: "2026-11-26T14:24:21.123Z",
    reason: "expired",
    user: { id: "u" },
    plan: { slug: "pro", interval: "month", monthly_limits: {}, features: [] },
    subscription: null,
    previous_plan: null,
    transaction: null
  }
  const transaction = {
    id: "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
    order_id: `0x${"ab".repeat(32)}`,
    status: "failed",
    failure_reason: "underpaid",
    network: "anvil",
    token: "native",
    amount: "10000000000000000",
    tx_hash: null
  }

  plain("accepts a scheduler event and a failed payment", () => {
    assert.isTrue(validate(event), JSON.stringify(validate.errors))
    assert.isTrue(validate({ ...event, reason: "payment_failed", transaction }), JSON.stringify(validate.errors))
  })

  plain("rejects a number amount, an unknown reason, an undocumented field, a failure without its reason", () => {
    for (const bad of [
      { ...event, transaction: { ...transaction, amount: 10000000000000000 } },
      { ...event, reason: "upgraded" },
      { ...event, extra: true },
      { ...event, reason: "payment_failed", transaction: { ...transaction, failure_reason: null } },
      { ...event, reason: "payment_failed" }
    ]) {
      assert.isFalse(validate(bad), JSON.stringify(bad))
    }
  })
})
