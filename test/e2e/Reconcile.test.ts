import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { App, appHarness, type Harness, registerContractAndPlan } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"
import { checkoutOf, mine, paymentStatus, postingsOf, sendPayload, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"

const BIN = fileURLToPath(new URL("../../bin/evm-billing.js", import.meta.url))

const Report = Schema.Struct({
  network: Schema.String,
  scanned_logs: Schema.Number,
  republished: Schema.Number,
  mismatches: Schema.Array(Schema.Struct({ kind: Schema.String, order_id: Schema.NullOr(Schema.String), detail: Schema.String }))
})

/** Runs the real CLI in a child process (asynchronously: this process's consumers must keep running). */
const reconcile = (app: Harness, ...args: Array<string>) =>
  Effect.async<{ status: number | null; report: typeof Report.Type; stderr: string }>((resume) => {
    const child = spawn(process.execPath, [BIN, "reconcile", "--network", "anvil", "--json", ...args], {
      env: {
        ...process.env,
        DATABASE_URL: app.databaseUrl,
        BILLING_NATS_PREFIX: app.prefix,
        BILLING_CONFIRMATION_POLL: "200 millis",
        // The devnet listens on 127.0.0.1; outside the devnet loopback endpoints must be allowed explicitly.
        BILLING_RPC_ALLOW_LOOPBACK: "true"
      }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (status) =>
      resume(Effect.sync(() => ({ status, report: Schema.decodeUnknownSync(Schema.parseJson(Report))(stdout.trim()), stderr }))))
    return Effect.sync(() => child.kill())
  })

// The listener polls once an hour here: the chain's events reach billing only through reconcile.
layer(appHarness({ env: { BILLING_LISTENER_POLL: "1 hour", BILLING_JANITOR_EVERY: "200 millis", BILLING_JANITOR_STALE_AFTER: "0 seconds" } }), { timeout: 180_000, excludeTestServices: true })("reconcile", (it) => {
  it.effect("repairs a payment whose events never reached the processor, then reports an altered ledger row", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      yield* registerContractAndPlan(app, "recon", { native: 10n ** 15n, token: 1_000_000n })
      const checkout = checkoutOf(yield* app.request("POST", "/v1/billing/checkout", {
        token: app.token("recon-user"),
        body: { plan_slug: "recon", wallet_address: devAccount(4).address, token: "native" }
      }))
      yield* sendPayload(app, checkout, 4)
      yield* mine(app, 3)
      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "pending", "no webhook, no listener: unseen")

      const repaired = yield* reconcile(app)
      assert.strictEqual(repaired.status, 0, repaired.stderr)
      assert.strictEqual(repaired.report.republished, 1)
      assert.deepStrictEqual(repaired.report.mismatches, [])
      assert.strictEqual((yield* paymentStatus(checkout.transaction_id)).status, "confirmed")
      assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 2)

      const again = yield* reconcile(app)
      assert.strictEqual(again.status, 0)
      assert.strictEqual(again.report.republished, 0, "nothing left to repair")

      // Someone edits a posting by hand (bypassing the append-only trigger): reconcile must notice and fail.
      yield* sql`ALTER TABLE ledger_postings DISABLE TRIGGER ledger_postings_append_only`
      yield* sql`UPDATE ledger_postings SET amount = amount - 1 WHERE account = 'treasury:anvil'`
      yield* sql`ALTER TABLE ledger_postings ENABLE TRIGGER ledger_postings_append_only`
      const altered = yield* reconcile(app)
      assert.strictEqual(altered.status, 1)
      assert.deepStrictEqual(altered.report.mismatches.map((m) => [m.kind, m.order_id]), [["wrong_amount", checkout.order_id]])
      assert.isAbove((yield* unbalancedLedgerTransactions).length, 0, "the hand edit unbalanced it")
    }))

  it.effect("the janitor settles a payment stuck in seen whose events were lost", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      yield* registerContractAndPlan(app, "janitor", { native: 10n ** 15n, token: 1_000_000n })
      const checkout = checkoutOf(yield* app.request("POST", "/v1/billing/checkout", {
        token: app.token("janitor-user"),
        body: { plan_slug: "janitor", wallet_address: devAccount(5).address, token: "native" }
      }))
      const [receipt] = yield* sendPayload(app, checkout, 5)
      // What a processor left behind before its message was lost: seen, with the transaction known.
      yield* sql`UPDATE payment_transactions SET status = 'seen', tx_hash = ${receipt!.transactionHash},
        log_index = ${receipt!.logs[0]!.logIndex}, updated_at = now() - interval '1 hour' WHERE id = ${checkout.transaction_id}`
      yield* mine(app, 2)
      yield* waitForStatus(checkout.transaction_id, "confirmed")
      assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 2)
      const [source] = yield* sql<{ source: string }>`SELECT source FROM processed_events WHERE payment_id = ${checkout.transaction_id}`
      assert.strictEqual(source!.source, `janitor:${checkout.transaction_id}`)
    }))
})
