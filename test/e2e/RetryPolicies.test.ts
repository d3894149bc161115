/**
 * What operators tune and read (issue 10, items 1, 7 and 8), against the whole service: the alerts' series at 0
 * before any payment; request ids on every response; retry policies tuned live (the environment's defaults listed,
 * bad settings refused with nothing stored, a change made while a webhook keeps failing applied to its very next
 * retry, audited and visible on the metrics), from the API and the CLI.
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { DeadLetterPage, DeadLetterView } from "../../src/domain/DeadLetter.ts"
import { AuditPage } from "../../src/domain/AuditLog.ts"
import { RetryPolicyView } from "../../src/domain/RetryPolicy.ts"
import { Schema } from "effect"
import { App, appHarness, decode, errorOf, eventually, type Harness, PASS } from "../support/app.ts"
import { exposed, scrape, total } from "../support/metrics.ts"
import { checkoutNative } from "../support/payments.ts"
import { cli } from "../smoke/harness.ts"

const PATH = "/v1/billing/admin/retry-policies"
const listOf = decode(Schema.Struct({ items: Schema.Array(RetryPolicyView) }))
const viewOf = decode(RetryPolicyView)

const put = (app: Harness, name: string, body: unknown) => app.request("PUT", `${PATH}/${name}`, { token: app.admin, body })

/** The dead letter of the webhook naming `txHash`, once there is one. */
const deadLetterOf = (app: Harness, txHash: string) =>
  Effect.gen(function*() {
    const page = decode(DeadLetterPage)(yield* app.request("GET", "/v1/billing/admin/dead-letters?limit=100", { token: app.admin }))
    const letters = yield* Effect.forEach(page.items, (i) =>
      Effect.map(app.request("GET", `/v1/billing/admin/dead-letters/${i.id}`, { token: app.admin }), decode(DeadLetterView)))
    return letters.find((l) => l.payload.includes(txHash))
  })

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("retry policies (admin routes)", (it) => {
  it.effect("before any payment, the series the alerts read exist at 0 for the configured network", () =>
    Effect.gen(function*() {
      const app = yield* App
      const samples = yield* scrape(app.baseUrl)
      const zero = (name: string, labels: Record<string, string>) => {
        assert.isTrue(exposed(samples, name, labels), `${name} ${JSON.stringify(labels)} exposed`)
        assert.strictEqual(total(samples, name, labels), 0, name)
      }
      zero("billing_transactions_network_failed_total", { network: "anvil" })
      zero("billing_transactions_total", { status: "failed", network: "anvil" })
      zero("billing_transactions_total", { status: "confirmed", network: "anvil" })
      zero("billing_chain_short_head_total", { network: "anvil" })
      zero("billing_chain_reorgs_total", { network: "anvil" })
      zero("billing_rpc_errors_total", { network: "anvil", endpoint: "0" })
    }))

  it.effect("every policy is listed with the environment's values until one is stored", () =>
    Effect.gen(function*() {
      const app = yield* App
      const list = listOf(yield* app.request("GET", PATH, { token: app.admin }))
      assert.deepStrictEqual(list.items.map((p) => p.name), ["webhooks", "chain-events", "outbox", "rpc"])
      assert.isTrue(list.items.every((p) => p.source === "environment" && p.updated_by === null))
      // the harness's BILLING_PROCESSOR_* and BILLING_RPC_RETRY_* values
      const webhooks = viewOf(yield* app.request("GET", `${PATH}/webhooks`, { token: app.admin }))
      assert.deepStrictEqual([webhooks.initial_delay_ms, webhooks.factor, webhooks.max_delay_ms, webhooks.max_attempts, webhooks.jitter], [100, 2, 500, 3, 0])
      const rpc = viewOf(yield* app.request("GET", `${PATH}/rpc`, { token: app.admin }))
      assert.deepStrictEqual([rpc.initial_delay_ms, rpc.max_attempts], [50, 2])
    }))

  it.effect("every API response carries its request id: the caller's when it is a plain token, a new one otherwise", () =>
    Effect.gen(function*() {
      const app = yield* App
      const idOf = (header?: string) =>
        Effect.promise(() =>
          fetch(`${app.baseUrl}${PATH}`, {
            headers: { authorization: `Bearer ${app.admin}`, ...(header === undefined ? {} : { "x-request-id": header }) }
          }).then((r) => r.headers.get("x-request-id")))
      assert.strictEqual(yield* idOf("ops-trace-42"), "ops-trace-42")
      for (const bad of [undefined, "has spaces", "x".repeat(200), "<script>"]) {
        assert.match((yield* idOf(bad)) ?? "", /^[0-9a-f-]{36}$/, String(bad))
      }
    }))

  it.effect("bad settings are a 400 naming the problem, other roles 403, and nothing is stored", () =>
    Effect.gen(function*() {
      const app = yield* App
      const good = { initial_delay_ms: 100, factor: 2, max_delay_ms: 1000, max_attempts: 5, jitter: 0.1 }
      const bad: ReadonlyArray<[string, unknown]> = [
        ["zero delay", { ...good, initial_delay_ms: 0 }],
        ["negative delay", { ...good, initial_delay_ms: -5 }],
        ["max below initial", { ...good, initial_delay_ms: 2000, max_delay_ms: 1000 }],
        ["unbounded max", { ...good, max_delay_ms: 10 ** 12 }],
        ["factor below 1", { ...good, factor: 0.5 }],
        ["no attempts", { ...good, max_attempts: 0 }],
        ["too many attempts", { ...good, max_attempts: 100_000 }],
        ["jitter above 1", { ...good, jitter: 1.5 }],
        ["fractional ms", { ...good, initial_delay_ms: 1.5 }],
        ["missing field", { initial_delay_ms: 100 }],
        ["a string", { ...good, factor: "2" }]
      ]
      for (const [what, body] of bad) {
        const res = yield* put(app, "outbox", body)
        assert.strictEqual(res.status, 400, what)
        assert.strictEqual(errorOf(res).error, "invalid_request", what)
      }
      assert.strictEqual((yield* put(app, "everything", good)).status, 400)
      assert.strictEqual((yield* app.request("PUT", `${PATH}/outbox`, { token: app.token("someone", ["finance_ops"]), body: good })).status, 403)
      assert.strictEqual((yield* app.request("PUT", `${PATH}/outbox`, { body: good })).status, 401)
      const outbox = viewOf(yield* app.request("GET", `${PATH}/outbox`, { token: app.admin }))
      assert.strictEqual(outbox.source, "environment")
    }))

  it.effect("a change made while a webhook keeps failing applies to its next retry: new spacing, new give-up point", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout } = yield* checkoutNative(app, "rp", { native: 10n ** 15n, token: 1_000_000n }, "user-rp", 3)
      // slow: 2 s between deliveries, 20 deliveries before giving up (40 s)
      const slow = yield* put(app, "webhooks", { initial_delay_ms: 2000, factor: 1, max_delay_ms: 2000, max_attempts: 20, jitter: 0 })
      assert.strictEqual(slow.status, 200)
      assert.deepStrictEqual([viewOf(slow).source, viewOf(slow).updated_by], ["stored", "admin-1"])

      const txHash = `0x${randomBytes(32).toString("hex")}`
      const hook = yield* app.webhook({ type: "payment.minted", contract: PASS, network: "anvil", tx_hash: txHash, log_index: 0, order_id: checkout.order_id })
      assert.strictEqual(hook.status, 202)
      yield* Effect.sleep("1 second")
      assert.isUndefined(yield* deadLetterOf(app, txHash), "still retrying under the slow policy")

      // fast: 100 ms apart, 3 deliveries
      const changedAt = Date.now()
      const fast = yield* put(app, "webhooks", { initial_delay_ms: 100, factor: 1, max_delay_ms: 100, max_attempts: 3, jitter: 0 })
      assert.strictEqual(fast.status, 200)
      const letter = (yield* eventually(deadLetterOf(app, txHash), (l) => l !== undefined, "the webhook dead-lettered under the new policy"))!
      assert.strictEqual(letter.delivery_count, 3)
      assert.include(letter.reason, "gave up after 3 failed deliveries")
      // the second delivery was already due 2 s after the first (the slow policy's nak); the third came 100 ms later
      const givenUpAfter = Date.parse(letter.last_failed_at) - changedAt
      assert.isBelow(givenUpAfter, 4_000, `dead-lettered ${givenUpAfter} ms after the change, not after 20 deliveries`)
      const spread = Date.parse(letter.last_failed_at) - Date.parse(letter.first_failed_at!)
      assert.isAtLeast(spread, 1_900)
      assert.isBelow(spread, 4_000)

      // audited, and every instance shows what it runs
      const audit = decode(AuditPage)(yield* app.request("GET", "/v1/billing/admin/audit?resource=retry_policy:webhooks", { token: app.admin }))
      assert.deepStrictEqual(audit.items.map((a) => [a.actor, a.action, (a.after as { max_attempts: number }).max_attempts]), [
        ["admin-1", "retry_policy.set", 3],
        ["admin-1", "retry_policy.set", 20]
      ])
      // no x-request-id was sent: each request got its own, in its audit row
      const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
      assert.isTrue(audit.items.every((a) => UUID.test(a.request_id ?? "")))
      assert.notStrictEqual(audit.items[0]!.request_id, audit.items[1]!.request_id)
      const samples = yield* scrape(app.baseUrl)
      assert.strictEqual(total(samples, "billing_retry_policy_initial_delay_seconds", { policy: "webhooks" }), 0.1)
      assert.strictEqual(total(samples, "billing_retry_policy_max_attempts", { policy: "webhooks" }), 3)
    }))

  it.effect("the CLI sets the fields it is given (the rest kept), refuses what the API refuses, and gets a policy", () =>
    Effect.gen(function*() {
      const app = yield* App
      const env = { ...app.env }
      const before = viewOf(yield* app.request("GET", `${PATH}/chain-events`, { token: app.admin }))
      const set = yield* cli(["retry-policy", "set", "chain-events", "--max-attempts", "9", "--actor", "ops-cli"], env)
      assert.strictEqual(set.code, 0, set.stderr)
      assert.include(set.stdout, "9 attempts")
      const refused = yield* cli(["retry-policy", "set", "chain-events", "--jitter", "2"], env)
      assert.notStrictEqual(refused.code, 0)
      assert.include(refused.stderr, "jitter")
      const got = yield* cli(["retry-policy", "get", "chain-events"], env)
      assert.strictEqual(got.code, 0, got.stderr)
      const view = Schema.decodeUnknownSync(Schema.parseJson(RetryPolicyView))(got.stdout.trim())
      assert.deepStrictEqual([view.max_attempts, view.initial_delay_ms, view.max_delay_ms, view.source, view.updated_by], [
        9,
        before.initial_delay_ms,
        before.max_delay_ms,
        "stored",
        "ops-cli"
      ])
    }), 120_000)
})
