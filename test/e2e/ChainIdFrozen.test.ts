/**
 * A network's chain id is frozen once it has payments (API 409 and a database trigger), and every effect of a payment
 * is keyed by the payment's own recorded chain id: an old database whose network changed its chain id under existing
 * payments must not post them again, neither on a redelivered webhook nor on reconcile.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { Nats } from "../../services/Nats.ts"
import { Reconciler } from "../../services/Reconciler.ts"
import { Rpc } from "../../services/Rpc.ts"
import { CryptoConfigView } from "../../src/domain/CryptoConfig.ts"
import { App, appHarness, CONFIRMATIONS, decode, errorOf, eventually, PASS, registerContractAndPlan } from "../support/app.ts"
import { mine, mintedEvent, nativeCheckout, payWithoutWebhook, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"

const FINANCE_OPS = "fin-ops-frozen"
const PATH = "/v1/billing/overview/crypto-config"
const PRICES = { native: 10n ** 15n, token: 1_000_000n }

const auditRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM audit_log WHERE action = 'crypto_config.update'`).pipe(
  Effect.orDie,
  Effect.map((rows) => rows[0]!.n)
)

/** The webhooks stream's durable consumer has acked everything it was given. */
const webhooksAcked = eventually(
  Effect.flatMap(Nats, (nats) =>
    nats.use("consumers.info", ({ jsm }) =>
      jsm.consumers.info(nats.subjects.streams.webhooks, nats.subjects.durables.paymentProcessorWebhooks))).pipe(Effect.orDie),
  (c) => c.num_pending === 0 && c.num_ack_pending === 0 && c.ack_floor.stream_seq >= c.delivered.stream_seq,
  "the payment processor to ack every webhook"
)

layer(appHarness({ env: { APP_BILLING_FINANCE_OPS_USER_ID: FINANCE_OPS, BILLING_CONFIG_RELOAD: "1 hour" } }), {
  timeout: 120_000,
  excludeTestServices: true
})("chain id frozen; the payment's own chain id", (it) => {
  it.effect("a chain_id change is refused with 409 once the network has a payment, and by the database for any writer", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const fin = app.token(FINANCE_OPS, ["finance_ops"])
      yield* registerContractAndPlan(app, "frozen", PRICES)
      const audits = yield* auditRows

      // No payment yet: the change is allowed in principle, but the endpoints must answer the new chain id.
      const unproven = yield* app.request("POST", PATH, { token: fin, body: { chain_id: { anvil: 999 } } })
      assert.strictEqual(unproven.status, 400)
      assert.strictEqual(errorOf(unproven).error, "invalid_rpc_endpoint")
      assert.include(errorOf(unproven).message, "network anvil, rpc endpoint 0: it answered chain id 31337, expected 999")

      yield* nativeCheckout(app, "frozen", "frozen-user", 1)
      const frozen = yield* app.request("POST", PATH, { token: fin, body: { chain_id: { anvil: 999 } } })
      assert.strictEqual(frozen.status, 409)
      assert.strictEqual(errorOf(frozen).error, "chain_id_frozen")
      assert.strictEqual(yield* auditRows, audits, "nothing audited")
      const view = decode(CryptoConfigView)(yield* app.request("GET", PATH, { token: fin }))
      assert.strictEqual(view.networks.find((n) => n.network === "anvil")!.chain_id, 31337)

      // Naming the same chain id is no change.
      const same = yield* app.request("POST", PATH, { token: fin, body: { chain_id: { anvil: 31337 }, confirmations: { anvil: CONFIRMATIONS } } })
      assert.strictEqual(same.status, 200)

      const direct = yield* sql`UPDATE crypto_config SET chain_id = 999 WHERE network = 'anvil'`.pipe(Effect.flip)
      assert.include(String(direct.cause), "frozen")
      yield* sql`UPDATE crypto_config SET confirmations = ${CONFIRMATIONS} WHERE network = 'anvil'`
    }))

  it.effect("after the chain id moved under a confirmed payment (an old database), a redelivered webhook and reconcile post nothing again", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const fin = app.token(FINANCE_OPS, ["finance_ops"])
      yield* registerContractAndPlan(app, "moved", PRICES)
      const { checkout, receipt } = yield* payWithoutWebhook(app, "moved", "moved-user", 2)
      const event = mintedEvent(PASS, receipt, checkout.order_id)
      assert.strictEqual((yield* app.webhook(event)).status, 202)
      yield* mine(app, CONFIRMATIONS)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      const ledger = sql<{ id: string }>`SELECT id FROM ledger_transactions WHERE payment_id = ${checkout.transaction_id} ORDER BY id`
      const before = yield* ledger
      assert.deepStrictEqual(before.map((r) => r.id), [`payment:31337:${receipt.transactionHash}:${checkout.order_id}`])

      // An old database: the chain id changed although payments exist, and the node now answers that chain id.
      yield* sql`ALTER TABLE crypto_config DISABLE TRIGGER crypto_config_chain_id_frozen`
      yield* sql`UPDATE crypto_config SET chain_id = 31338 WHERE network = 'anvil'`
      yield* sql`ALTER TABLE crypto_config ENABLE TRIGGER crypto_config_chain_id_frozen`
      yield* Effect.promise(() =>
        fetch(app.devnet.info.rpc_url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "anvil_setChainId", params: [31338] })
        }))
      // A change through the API reloads this instance's endpoints before it answers: they now prove chain 31338.
      assert.strictEqual((yield* app.request("POST", PATH, { token: fin, body: { confirmations: { anvil: CONFIRMATIONS } } })).status, 200)

      assert.strictEqual((yield* app.webhook(event)).status, 202)
      yield* webhooksAcked
      assert.deepStrictEqual(yield* ledger, before, "the redelivered webhook posted nothing")

      const report = yield* Effect.flatMap(Reconciler, (r) => r.run({ network: "anvil", wait: "10 seconds" })).pipe(
        Effect.provide(Reconciler.Default.pipe(Layer.provide(Rpc.Default))),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BILLING_RPC_ALLOW_LOOPBACK", "true"]])))
      )
      assert.strictEqual(report.republished, 0)
      assert.deepStrictEqual(report.mismatches.filter((m) => m.tx_hash === receipt.transactionHash), [])
      yield* webhooksAcked
      assert.deepStrictEqual(yield* ledger, before, "reconcile posted nothing")
      assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    }))
})
