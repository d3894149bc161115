/**
 * Notifications and the audit trail of payments over the running service: rows in PostgreSQL written in the
 * payment's own SQL transaction (PostgreSQL's `now()` is the transaction's start, so equal times prove it), and
 * the same rows published on `notifications.<user>` and `audit.<kind>` by the OutboxRelay.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { type Hex, zeroAddress } from "viem"
import { App, appHarness, eventually, PASS, registerContractAndPlan } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"
import { checkoutNative, checkoutOf, mine, mintedEvent, mintWithQuote, sendPayload, waitForStatus } from "../support/payments.ts"
import { awaitMessage, messagesOn } from "./eventsStream.ts"

const PRICES = { native: 10n ** 16n, token: 25_000_000n }
const FIN_OPS = "fin-ops"
const CONTRACT_SECRET = "audit-contract-secret-0123456789"

interface Note {
  readonly user_id: string
  readonly kind: string
  readonly payload: { readonly title: string; readonly body: string } & Record<string, unknown>
  readonly created_at: Date
}
const notes = (userId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<Note>`SELECT user_id, kind, payload, created_at FROM notifications WHERE user_id = ${userId} ORDER BY id`).pipe(Effect.orDie)

interface AuditRow {
  readonly id: string
  readonly actor: string
  readonly action: string
  readonly before: { readonly status: string } | null
  readonly after: Record<string, unknown>
  readonly created_at: Date
}
const auditOf = (paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<AuditRow>`SELECT id::text AS id, actor, action, before, after, created_at FROM audit_log
      WHERE resource = ${`payment:${paymentId}`} ORDER BY audit_log.id`).pipe(Effect.orDie)

const paymentTimes = (paymentId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ confirmed_at: Date | null; updated_at: Date }>`SELECT confirmed_at, updated_at FROM payment_transactions
      WHERE id = ${paymentId}`).pipe(Effect.orDie, Effect.map((rows) => rows[0]!))

const withPayload = (name: string, key: string, value: string) =>
  awaitMessage(name, (ms) => ms.find((m) => (m.body as Record<string, unknown>)[key] === value), `${name} with ${key}=${value}`)

const env = { APP_BILLING_FINANCE_OPS_USER_ID: FIN_OPS, BILLING_OUTBOX_POLL: "100 millis" }

layer(appHarness({ env }), { timeout: 120_000, excludeTestServices: true })("notifications and audit of payments", (it) => {
  it.effect("a confirmed payment: templated notifications to the payer and finance_ops, audited moves, all published", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "ntpro", PRICES)
      const user = "nt-user"
      const token = app.token(user)
      const checkout = checkoutOf(yield* app.request("POST", "/v1/billing/checkout", {
        token,
        body: { plan_slug: "ntpro", wallet_address: devAccount(1).address, network: "anvil", token: "native" }
      }))
      const [receipt] = yield* sendPayload(app, checkout, 1)
      yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))
      yield* waitForStatus(checkout.transaction_id, "seen")
      yield* mine(app, 1)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      const { confirmed_at } = yield* paymentTimes(checkout.transaction_id)

      const [mine_] = yield* notes(user)
      assert.strictEqual(mine_?.kind, "payment.confirmed")
      assert.strictEqual(mine_!.payload.title, "Payment confirmed")
      for (const part of [PRICES.native.toString(), "native", "anvil", "ntpro", receipt!.transactionHash]) {
        assert.include(mine_!.payload.body, part)
      }
      assert.notMatch(mine_!.payload.body, /\{[a-z_]+\}/, "every placeholder filled")
      assert.strictEqual(mine_!.payload["amount"], PRICES.native.toString(), "a decimal string")
      assert.strictEqual(mine_!.created_at.getTime(), confirmed_at!.getTime(), "written in the confirming transaction")
      const fin = (yield* notes(FIN_OPS)).filter((n) => n.payload["transaction_id"] === checkout.transaction_id)
      assert.deepStrictEqual(fin.map((n) => n.kind), ["payment.confirmed"])
      assert.include(fin[0]!.payload.body, user)

      const trail = yield* auditOf(checkout.transaction_id)
      assert.deepStrictEqual(trail.map((a) => [a.actor, a.action, a.before?.status ?? null, a.after["status"]]), [
        [user, "payment.pending", null, "pending"],
        ["system:payment-processor", "payment.seen", "pending", "seen"],
        ["system:payment-processor", "payment.confirmed", "seen", "confirmed"]
      ])
      assert.strictEqual(trail[2]!.created_at.getTime(), confirmed_at!.getTime(), "audited in the confirming transaction")
      assert.strictEqual(trail[0]!.after["token"], "native", "an asset is not a secret")

      const published = yield* withPayload(`notifications.${user}`, "kind", "payment.confirmed")
      assert.deepInclude(published.body as object, { user_id: user, audience: "user", title: mine_!.payload.title, body: mine_!.payload.body })
      yield* withPayload(`notifications.${FIN_OPS}`, "kind", "payment.confirmed")
      for (const row of trail) {
        const message = yield* withPayload("audit.payment", "id", row.id)
        assert.deepInclude(message.body as object, { actor: row.actor, action: row.action, resource: `payment:${checkout.transaction_id}` })
      }
    }))

  it.effect("a failed payment: the payer is told why, the failure is audited, finance_ops is not paged", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout } = yield* checkoutNative(app, "ntfail", PRICES, "nt-failed", 2)
      const receipt = yield* mintWithQuote(app.devnet, 2, {
        contract: app.devnet.info.contract_address,
        orderId: checkout.order_id as Hex,
        token: zeroAddress,
        amount: PRICES.native - 1n,
        deadline: BigInt(checkout.payload.deadline)
      })
      yield* app.webhook(mintedEvent(PASS, receipt, checkout.order_id))
      yield* mine(app, 2)
      yield* waitForStatus(checkout.transaction_id, "failed")
      const [note] = yield* notes("nt-failed")
      assert.strictEqual(note?.kind, "payment.failed")
      assert.include(note!.payload.body, "underpaid")
      const trail = yield* auditOf(checkout.transaction_id)
      const failed = trail.find((a) => a.action === "payment.failed")
      assert.deepInclude(failed!.after, { status: "failed", failure_reason: "underpaid" })
      const fin = (yield* notes(FIN_OPS)).filter((n) => n.payload["transaction_id"] === checkout.transaction_id)
      assert.strictEqual(fin.length, 0)
      yield* withPayload("notifications.nt-failed", "kind", "payment.failed")
    }))

  it.effect("a superseded checkout is audited as expired by the user who superseded it", () =>
    Effect.gen(function*() {
      const app = yield* App
      const { checkout: first, token } = yield* checkoutNative(app, "ntswap", PRICES, "nt-swap", 3)
      const second = checkoutOf(yield* app.request("POST", "/v1/billing/checkout", {
        token,
        body: { plan_slug: "ntswap", wallet_address: devAccount(4).address, network: "anvil", token: "native" }
      }))
      const trail = yield* auditOf(first.transaction_id)
      assert.deepStrictEqual(trail.map((a) => [a.actor, a.action]), [["nt-swap", "payment.pending"], ["nt-swap", "payment.expired"]])
      assert.deepStrictEqual(trail[1]!.after, { status: "expired", superseded_by: second.transaction_id })
    }))

  it.effect("a dead letter notifies finance_ops, in the notifications table and on the subject", () =>
    Effect.gen(function*() {
      const app = yield* App
      const txHash = `0x${randomBytes(32).toString("hex")}`
      // A transaction no node knows: retried until the policy gives up (3 deliveries here), then dead-lettered.
      const hook = yield* app.webhook({ type: "payment.minted", contract: PASS, network: "anvil", tx_hash: txHash, log_index: 0 })
      assert.strictEqual(hook.status, 202)
      const [note] = yield* eventually(
        Effect.map(notes(FIN_OPS), (ns) => ns.filter((n) => n.kind === "dead_letter")),
        (ns) => ns.length > 0,
        "a dead_letter notification"
      )
      assert.strictEqual(note!.payload.title, "Message dead-lettered")
      assert.include(note!.payload.body, "payment-processor-webhooks")
      assert.include(note!.payload.body, txHash)
      yield* withPayload(`notifications.${FIN_OPS}`, "kind", "dead_letter")
    }))

  it.effect("admin changes reach audit.<kind> too, with secrets removed and assets kept", () =>
    Effect.gen(function*() {
      const app = yield* App
      const created = yield* app.request("POST", "/v1/billing/admin/contracts", {
        token: app.admin,
        body: { slug: "audited", network: "anvil", address: `0x${randomBytes(20).toString("hex")}`, webhook_secret: CONTRACT_SECRET }
      })
      assert.strictEqual(created.status, 201)
      const message = yield* withPayload("audit.contract", "resource", "contract:audited")
      assert.notInclude(JSON.stringify(message.body), CONTRACT_SECRET)
      const plan = yield* withPayload("audit.plan", "resource", "plan:ntpro")
      assert.include(JSON.stringify(plan.body), app.devnet.info.token_address.toLowerCase(), "price tokens stay visible")
      const everything = JSON.stringify((yield* messagesOn("audit.contract")).map((m) => m.body))
      assert.notInclude(everything, CONTRACT_SECRET)
    }))
})
