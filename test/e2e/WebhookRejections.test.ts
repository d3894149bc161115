/**
 * Invariant 7 (and 10 for the webhook secret): a webhook is accepted only when signed with the contract's
 * secret (or the global one), fresh, at most 64 KiB and well-formed. Anything else is a 4xx
 * `{error, message}`, and nothing is written or queued.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { Nats } from "../../services/Nats.ts"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { App, appHarness, errorOf, type Harness, PASS, registerContractAndPlan, type Response, WEBHOOK_SECRET } from "../support/app.ts"

const OWN_SECRET = "contract-own-webhook-secret-42"
const UNAUTHORIZED = { error: "unauthorized", message: "webhook signature could not be verified" }
const hex32 = () => `0x${randomBytes(32).toString("hex")}`
const now = () => Math.floor(Date.now() / 1000)

const event = (contract: string) => ({
  type: "payment.minted",
  contract,
  network: "anvil",
  tx_hash: hex32(),
  log_index: 0,
  block_number: 1
})

/** Posts raw bytes with Standard Webhooks headers; `signature: null` (or `contentType: null`) leaves that header out. */
const postRaw = (
  app: Harness,
  raw: string,
  over: { secret?: string; signature?: string | null; timestamp?: number; contentType?: string | null } = {}
) => {
  const id = `msg_${randomBytes(8).toString("hex")}`
  const timestamp = over.timestamp ?? now()
  const signature = over.signature === undefined ? signWebhook(over.secret ?? WEBHOOK_SECRET, id, timestamp, raw) : over.signature
  return app.request("POST", "/v1/billing/contracts/webhook", {
    raw: new TextEncoder().encode(raw),
    headers: {
      ...(over.contentType === null ? {} : { "content-type": over.contentType ?? "application/json" }),
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      ...(signature === null ? {} : { "webhook-signature": signature })
    }
  })
}

/** A correct signature with a character a lenient base64 decoder ignores. */
const lenient = (app: Harness, body: object) => {
  const id = `msg_${randomBytes(8).toString("hex")}`
  const timestamp = now()
  const signature = signWebhook(WEBHOOK_SECRET, id, timestamp, JSON.stringify(body))
  return app.webhook(body, { id, timestamp, signature: `${signature.slice(0, 10)}*${signature.slice(10)}` })
}

/** The status and the error code; the body must be exactly `{error, message}`. */
const rejection = (res: Response) => {
  const body = errorOf(res)
  assert.deepStrictEqual(Object.keys(res.body as object).sort(), ["error", "message"])
  assert.isTrue(body.message.length > 0)
  return [res.status, body.error] as const
}

const webhookMessages = Effect.flatMap(Nats, (nats) =>
  nats.use("streams.info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.webhooks))).pipe(
    Effect.map((info) => info.state.messages),
    Effect.orDie
  )

const rowCounts = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ processed: string; payments: string; postings: string; audit: string }>`SELECT
    (SELECT count(*) FROM processed_events)::text AS processed,
    (SELECT count(*) FROM payment_transactions)::text AS payments,
    (SELECT count(*) FROM ledger_postings)::text AS postings,
    (SELECT count(*) FROM audit_log)::text AS audit`).pipe(Effect.map((rows) => rows[0]!), Effect.orDie)

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("webhook rejections (invariant 7)", (it) => {
  it.effect("every bad webhook gets its 4xx and leaves no row and no message", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "hooks", { native: 10n ** 16n, token: 1_000_000n })
      const before = yield* rowCounts
      const good = event(PASS)

      const U = "unauthorized"
      const cases: ReadonlyArray<readonly [string, Effect.Effect<Response>, number, string]> = [
        ["wrong secret", app.webhook(good, { secret: "not-the-webhook-secret-at-all" }), 401, U],
        ["missing signature", postRaw(app, JSON.stringify(good), { signature: null }), 401, U],
        ["garbage signature", postRaw(app, JSON.stringify(good), { signature: "v1,AAAA" }), 401, U],
        ["6 minutes old", app.webhook(good, { timestamp: now() - 360 }), 401, U],
        ["6 minutes ahead", app.webhook(good, { timestamp: now() + 360 }), 401, U],
        // Nothing names a contract, so nothing can be verified: the same 401.
        ["malformed JSON", postRaw(app, `{"type":"payment.minted","contract":"${PASS}",`), 401, U],
        ["not an object", postRaw(app, "[1,2,3]"), 401, U],
        // Signed with the global secret, which an unknown contract does not have either.
        ["unknown contract", app.webhook(event("no-such-contract")), 401, U],
        ["over 64 KiB", app.webhook({ ...good, padding: "x".repeat(64 * 1024) }), 413, "payload_too_large"],
        // Verified, but not an event.
        ["missing fields", app.webhook({ type: "payment.minted", contract: PASS }), 400, "invalid_webhook"],
        ["bad tx_hash", app.webhook({ ...good, tx_hash: "0x1234" }), 400, "invalid_webhook"],
        ["negative log_index", app.webhook({ ...good, log_index: -1 }), 400, "invalid_webhook"],
        ["unknown event type", app.webhook({ ...good, type: "payment.refunded" }), 400, "invalid_webhook"],
        // Signed for this contract, but naming a network the contract is not on.
        ["another network", app.webhook({ ...good, network: "base" }), 400, "invalid_webhook"],
        // A valid signature spelled with junk that a lenient base64 reader would skip.
        ["non-canonical base64", lenient(app, good), 401, U],
        ["text/plain body", postRaw(app, JSON.stringify(good), { contentType: "text/plain" }), 415, "unsupported_media_type"],
        ["form body", postRaw(app, JSON.stringify(good), { contentType: "application/x-www-form-urlencoded" }), 415, "unsupported_media_type"],
        ["no content type", postRaw(app, JSON.stringify(good), { contentType: null }), 415, "unsupported_media_type"]
      ]
      for (const [what, send, status, code] of cases) {
        const res = yield* send
        assert.deepStrictEqual(rejection(res), [status, code], what)
        // One body for every authentication failure: the answer tells nothing about why.
        if (status === 401) assert.deepStrictEqual(res.body, UNAUTHORIZED, what)
      }

      assert.strictEqual(yield* webhookMessages, 0, "no rejected webhook reached JetStream")
      assert.deepStrictEqual(yield* rowCounts, before, "no rejected webhook wrote a row")
    }))

  it.effect("a contract's own secret replaces the global one; the secret never leaves the service", () =>
    Effect.gen(function*() {
      const app = yield* App
      const address = `0x${randomBytes(20).toString("hex")}`
      const created = yield* app.request("POST", "/v1/billing/admin/contracts", {
        token: app.admin,
        body: { slug: "own-secret", network: "anvil", address, webhook_secret: OWN_SECRET }
      })
      assert.strictEqual(created.status, 201)
      const messages = yield* webhookMessages

      assert.deepStrictEqual(rejection(yield* app.webhook(event("own-secret"))), [401, "unauthorized"])
      assert.strictEqual(yield* webhookMessages, messages)
      const accepted = yield* app.webhook(event("own-secret"), { secret: OWN_SECRET })
      assert.deepStrictEqual([accepted.status, accepted.body], [202, { accepted: true, duplicate: false }])
      assert.strictEqual(yield* webhookMessages, messages + 1)

      const view = yield* app.request("GET", "/v1/billing/admin/contracts/own-secret", { token: app.admin })
      assert.strictEqual(view.status, 200)
      const body = view.body as Record<string, unknown>
      assert.strictEqual(body["has_webhook_secret"], true)
      assert.notProperty(body, "webhook_secret")
      const list = yield* app.request("GET", "/v1/billing/admin/contracts", { token: app.admin })
      for (const res of [created, view, list]) {
        assert.notInclude(JSON.stringify(res.body), OWN_SECRET)
        assert.notInclude(JSON.stringify(res.body), WEBHOOK_SECRET)
      }
      const sql = yield* SqlClient.SqlClient
      const audit = yield* sql<{ row: string }>`SELECT concat_ws(' ', before::text, after::text) AS row FROM audit_log`
      assert.isTrue(audit.length > 0)
      for (const { row } of audit) assert.notInclude(row, OWN_SECRET)
    }))

  it.effect("a rejected webhook_secret is not echoed back in the 400 (invariant 10)", () =>
    Effect.gen(function*() {
      const app = yield* App
      const tooLong = `sk_live_${"9f8e7d6c5b4a".repeat(50)}`
      const numeric = 98765432109876543210
      const attempts = [
        { slug: "long-secret", network: "anvil", address: `0x${randomBytes(20).toString("hex")}`, webhook_secret: tooLong },
        { slug: "num-secret", network: "anvil", address: `0x${randomBytes(20).toString("hex")}`, webhook_secret: numeric }
      ]
      for (const body of attempts) {
        const res = yield* app.request("POST", "/v1/billing/admin/contracts", { token: app.admin, body })
        assert.deepStrictEqual(rejection(res), [400, "invalid_request"], body.slug)
        assert.notInclude(JSON.stringify(res.body), "9f8e7d6c5b4a", `${body.slug}: the secret is not echoed`)
        assert.notInclude(JSON.stringify(res.body), "98765432109876", `${body.slug}: the secret is not echoed`)
      }
    }))

  it.effect("several signatures (key rotation): one valid among them is enough", () =>
    Effect.gen(function*() {
      const app = yield* App
      const body = event(PASS)
      const raw = JSON.stringify(body)
      const id = `msg_${randomBytes(8).toString("hex")}`
      const timestamp = now()
      const old = signWebhook("the-retired-webhook-secret-000", id, timestamp, raw)
      const current = signWebhook(WEBHOOK_SECRET, id, timestamp, raw)

      const rotated = yield* app.webhook(body, { id, timestamp, signature: `${old} ${current}` })
      assert.deepStrictEqual([rotated.status, rotated.body], [202, { accepted: true, duplicate: false }])
      const onlyOld = yield* app.webhook(body, { id: `${id}_x`, timestamp, signature: `${old} v1,bm90LWEtc2lnbmF0dXJl` })
      assert.deepStrictEqual(rejection(onlyOld), [401, "unauthorized"])
    }))
})
