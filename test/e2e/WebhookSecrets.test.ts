/**
 * Standard Webhooks in full: whsec_ secrets from the official library through the real endpoint, several active
 * secrets per contract with an overlap window (add, schedule, retire; audited, never shown), changes honoured by
 * another instance through the NATS signal, and intake that answers from memory while PostgreSQL is unreachable.
 * The periodic reload is an hour here, so only the signal can carry a change to the second instance.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { Webhook } from "standardwebhooks"
import { WebhookSecretView } from "../../src/domain/WebhookSecret.ts"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { App, appHarness, decode, eventually, type Harness, type Response, WEBHOOK_SECRET } from "../support/app.ts"
import { tcpProxy } from "../support/tcpProxy.ts"

const ADMIN = "/v1/billing/admin/contracts"
const UNAUTHORIZED = { error: "unauthorized", message: "webhook signature could not be verified" }
const now = () => Math.floor(Date.now() / 1000)
const whsec = () => `whsec_${randomBytes(32).toString("base64")}`
const plain = () => `plain-secret-${randomBytes(8).toString("hex")}`

const event = (contract: string) =>
  JSON.stringify({ type: "payment.minted", contract, network: "anvil", tx_hash: `0x${randomBytes(32).toString("hex")}`, log_index: 0, block_number: 1 })

/** Posts a webhook for `contract` signed with `secret` (or the given signature function) to `request`'s instance. */
const post = (request: Harness["request"], contract: string, sign: string | ((id: string, at: number, raw: string) => string)) => {
  const raw = event(contract)
  const id = `msg_${randomBytes(8).toString("hex")}`
  const at = now()
  const signature = typeof sign === "string" ? signWebhook(sign, id, at, raw) : sign(id, at, raw)
  return request("POST", "/v1/billing/contracts/webhook", {
    raw,
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(at), "webhook-signature": signature }
  })
}
const status = (res: Effect.Effect<Response>) => Effect.map(res, (r) => r.status)

const createContract = (app: Harness, slug: string, webhookSecret?: string) =>
  app.request("POST", ADMIN, {
    token: app.admin,
    body: { slug, network: "anvil", address: `0x${randomBytes(20).toString("hex")}`, ...(webhookSecret ? { webhook_secret: webhookSecret } : {}) }
  }).pipe(Effect.filterOrDie((r) => r.status === 201, (r) => new Error(`contract ${slug}: ${JSON.stringify(r.body)}`)))

const viewOf = decode(WebhookSecretView)
const listOf = decode(Schema.Struct({ items: Schema.Array(WebhookSecretView) }))

layer(appHarness({ env: { BILLING_CONFIG_RELOAD: "1 hour" } }), { timeout: 180_000, excludeTestServices: true })("webhook secrets", (it) => {
  it.effect("a relayer on the official standardwebhooks library with a whsec_ secret is accepted; a bad whsec_ is a 400", () =>
    Effect.gen(function*() {
      const app = yield* App
      const secret = whsec()
      yield* createContract(app, "interop", secret)
      const library = new Webhook(secret)
      const accepted = yield* post(app.request, "interop", (id, at, raw) => library.sign(id, new Date(at * 1000), raw))
      assert.deepStrictEqual([accepted.status, accepted.body], [202, { accepted: true, duplicate: false }])
      // The same string as raw text, the old reading, is refused.
      assert.deepStrictEqual((yield* post(app.request, "interop", (id, at, raw) => signWebhook(new TextEncoder().encode(secret), id, at, raw))).body, UNAUTHORIZED)

      for (const bad of ["whsec_not*base64*at*all!!", `whsec_${randomBytes(16).toString("base64")}`]) {
        const res = yield* app.request("POST", `${ADMIN}/interop/webhook-secrets`, { token: app.admin, body: { secret: bad } })
        assert.strictEqual(res.status, 400)
        assert.notInclude(JSON.stringify(res.body), bad)
      }
    }))

  it.effect("rotation overlaps: add a second secret, both verify, schedule and retire the first; audited, never shown", () =>
    Effect.gen(function*() {
      const app = yield* App
      const first = plain()
      const second = whsec()
      yield* createContract(app, "rotating", first)
      const path = `${ADMIN}/rotating/webhook-secrets`
      const added = yield* app.request("POST", path, { token: app.admin, body: { secret: second } })
      assert.strictEqual(added.status, 201)
      assert.isTrue(viewOf(added).active)
      assert.deepStrictEqual([yield* status(post(app.request, "rotating", first)), yield* status(post(app.request, "rotating", second))], [202, 202])

      const list = listOf(yield* app.request("GET", path, { token: app.admin }))
      assert.strictEqual(list.items.length, 2)
      const firstId = list.items.find((s) => s.id !== viewOf(added).id)!.id
      const soon = new Date(Date.now() + 3_600_000).toISOString()
      const scheduled = yield* app.request("PATCH", `${path}/${firstId}`, { token: app.admin, body: { expires_at: soon } })
      assert.strictEqual(scheduled.status, 200)
      assert.strictEqual(Date.parse(viewOf(scheduled).expires_at!), Date.parse(soon))
      assert.strictEqual(yield* status(post(app.request, "rotating", first)), 202, "still inside the overlap window")
      const past = yield* app.request("PATCH", `${path}/${firstId}`, { token: app.admin, body: { expires_at: "2020-01-01T00:00:00Z" } })
      assert.strictEqual(past.status, 400)

      const retired = yield* app.request("DELETE", `${path}/${firstId}`, { token: app.admin })
      assert.strictEqual(retired.status, 200)
      assert.isFalse(viewOf(retired).active)
      const old = yield* post(app.request, "rotating", first)
      assert.deepStrictEqual([old.status, old.body], [401, UNAUTHORIZED])
      assert.strictEqual(yield* status(post(app.request, "rotating", second)), 202)
      // The global secret does not stand in while the contract has an active secret of its own.
      assert.strictEqual(yield* status(post(app.request, "rotating", WEBHOOK_SECRET)), 401)

      const missing = yield* app.request("DELETE", `${path}/${crypto.randomUUID()}`, { token: app.admin })
      assert.strictEqual(missing.status, 404)
      const forbidden = yield* app.request("POST", path, { token: app.token("user-1"), body: { secret: plain() } })
      assert.strictEqual(forbidden.status, 403)

      const sql = yield* SqlClient.SqlClient
      const audit = yield* sql<{ action: string; row: string }>`SELECT action, concat_ws(' ', before::text, after::text) AS row
        FROM audit_log WHERE resource = 'contract:rotating' ORDER BY id`
      assert.deepStrictEqual(audit.map((a) => a.action), [
        "contract.create", "contract.webhook_secret.add", "contract.webhook_secret.schedule", "contract.webhook_secret.retire"
      ])
      const shown = JSON.stringify([added.body, list, scheduled.body, retired.body, audit])
      for (const secret of [first, second, second.slice(6)]) assert.notInclude(shown, secret)
    }))

  it.effect("at most five active secrets; the legacy webhook_secret replaces them all, null falls back to the global secret", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* createContract(app, "capped", plain())
      const path = `${ADMIN}/capped/webhook-secrets`
      for (let i = 0; i < 4; i++) assert.strictEqual((yield* app.request("POST", path, { token: app.admin, body: { secret: plain() } })).status, 201)
      const sixth = yield* app.request("POST", path, { token: app.admin, body: { secret: plain() } })
      assert.deepStrictEqual([sixth.status, (sixth.body as { error: string }).error], [409, "too_many_webhook_secrets"])

      const replacement = plain()
      const patched = yield* app.request("PATCH", `${ADMIN}/capped`, { token: app.admin, body: { webhook_secret: replacement } })
      assert.include(patched.body as object, { has_webhook_secret: true })
      const active = listOf(yield* app.request("GET", path, { token: app.admin })).items.filter((s) => s.active)
      assert.strictEqual(active.length, 1)
      assert.strictEqual(yield* status(post(app.request, "capped", replacement)), 202)
      assert.strictEqual(yield* status(post(app.request, "capped", WEBHOOK_SECRET)), 401)

      const cleared = yield* app.request("PATCH", `${ADMIN}/capped`, { token: app.admin, body: { webhook_secret: null } })
      assert.include(cleared.body as object, { has_webhook_secret: false })
      assert.strictEqual(yield* status(post(app.request, "capped", replacement)), 401)
      assert.strictEqual(yield* status(post(app.request, "capped", WEBHOOK_SECRET)), 202)
    }))

  it.scoped("a contract or secret changed on one instance is honoured by another at once, through the NATS signal", () =>
    Effect.gen(function*() {
      const app = yield* App
      const other = app.on(yield* app.startInstance)
      const secret = plain()
      assert.strictEqual(yield* status(post(other, "late", secret)), 401, "unknown on the second instance")
      yield* createContract(app, "late", secret)
      yield* eventually(status(post(other, "late", secret)), (s) => s === 202, "the second instance to know the new contract")

      const list = listOf(yield* app.request("GET", `${ADMIN}/late/webhook-secrets`, { token: app.admin }))
      yield* app.request("DELETE", `${ADMIN}/late/webhook-secrets/${list.items[0]!.id}`, { token: app.admin })
      yield* eventually(status(post(other, "late", secret)), (s) => s === 401, "the second instance to drop the retired secret")
    }))

  it.scoped("intake answers from memory: with its database unreachable, an instance still accepts and refuses webhooks", () =>
    Effect.gen(function*() {
      const app = yield* App
      const secret = plain()
      yield* createContract(app, "cached", secret)
      const target = new URL(app.databaseUrl)
      const proxy = yield* tcpProxy({ host: target.hostname, port: Number(target.port) })
      target.port = String(proxy.port)
      const other = app.on(yield* app.startInstanceWith({ DATABASE_URL: target.toString() }))
      // Runs before the instance stops: its connections are let go first, whatever the outcome.
      yield* Effect.addFinalizer(() => proxy.cut)
      // Any SQL from here on waits forever: a request that needed the database would time the test out.
      yield* proxy.freeze
      assert.strictEqual(yield* status(post(other, "cached", secret)), 202)
      for (const res of [yield* post(other, "cached", plain()), yield* post(other, "no-such-contract", secret)]) {
        assert.deepStrictEqual([res.status, res.body], [401, UNAUTHORIZED])
      }
    }))
})
