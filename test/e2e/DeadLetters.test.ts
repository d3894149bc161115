/**
 * Dead letters operators see and repair (issue 10, item 2), against the whole service: a webhook for a transaction
 * not yet on chain is dead-lettered after its deliveries; the admin routes list, show, replay (once the transaction
 * exists: confirmed once) and discard it, audited; the finance_ops notification links to it; a gauge counts them.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { keccak256 } from "viem"
import { Nats } from "../../services/Nats.ts"
import { DeadLetterHeaders } from "../../services/Subjects.ts"
import { DeadLetterPage, DeadLetterView, ReplayResult } from "../../src/domain/DeadLetter.ts"
import { AuditPage } from "../../src/domain/AuditLog.ts"
import { App, appHarness, CONFIRMATIONS, decode, errorOf, eventually, type Harness, PASS } from "../support/app.ts"
import { exposed, scrape, total } from "../support/metrics.ts"
import { cli } from "../smoke/harness.ts"
import { checkoutNative, mine, nativeCheckout, postingsOf, signMint, waitForStatus } from "../support/payments.ts"

const PRICES = { native: 10n ** 15n, token: 1_000_000n }
const FIN_OPS = "fin-ops-dl"
const PATH = "/v1/billing/admin/dead-letters"
const pageOf = decode(DeadLetterPage)
const viewOf = decode(DeadLetterView)

/** A webhook for a transaction no node has: retried, then dead-lettered; its dead letter once it shows up. */
const deadLetteredHook = (app: Harness, txHash: string, orderId: string) =>
  Effect.gen(function*() {
    const hook = yield* app.webhook({ type: "payment.minted", contract: PASS, network: "anvil", tx_hash: txHash, log_index: 0, order_id: orderId })
    assert.strictEqual(hook.status, 202)
    const find = Effect.gen(function*() {
      const page = pageOf(yield* app.request("GET", `${PATH}?consumer=payment-processor-webhooks&limit=100`, { token: app.admin }))
      const letters = yield* Effect.forEach(page.items, (i) => Effect.map(app.request("GET", `${PATH}/${i.id}`, { token: app.admin }), viewOf))
      return letters.find((l) => l.payload.includes(txHash))
    })
    return (yield* eventually(find, (l) => l !== undefined, "the webhook to be dead-lettered"))!
  })

const ghostHash = () => `0x${randomBytes(32).toString("hex")}`

layer(appHarness({ env: { APP_BILLING_FINANCE_OPS_USER_ID: FIN_OPS, BILLING_DEAD_LETTER_GAUGE_INTERVAL: "1 second" } }), { timeout: 120_000, excludeTestServices: true })(
  "dead letters (admin routes)",
  (it) => {
    it.effect("a webhook dead-lettered before its transaction existed is shown, replayed once it exists, and confirmed once", () =>
      Effect.gen(function*() {
        const app = yield* App
        const sql = yield* SqlClient.SqlClient
        const nats = yield* Nats
        const { checkout } = yield* checkoutNative(app, "dl", PRICES, "user-dl", 5)
        const raw = yield* signMint(app, checkout, 5)
        const letter = yield* deadLetteredHook(app, keccak256(raw), checkout.order_id)

        assert.strictEqual(letter.consumer, "payment-processor-webhooks")
        assert.strictEqual(letter.subject, nats.subjects.webhook(PASS))
        assert.strictEqual(letter.source_stream, nats.subjects.streams.webhooks)
        assert.strictEqual(letter.delivery_count, 3)
        assert.include(letter.reason, "gave up after 3 failed deliveries")
        assert.strictEqual(letter.payload_encoding, "utf8")
        assert.isNotNull(letter.first_failed_at)
        assert.isTrue(Date.parse(letter.first_failed_at!) <= Date.parse(letter.last_failed_at))
        assert.isFalse(Object.keys(letter.headers).some((h) => h.toLowerCase().startsWith("billing-dead") || h === DeadLetterHeaders.reason))

        // finance_ops was told where to find it; the gauge counts it
        const [note] = yield* sql<{ payload: { link: string; dead_letter_id: number } }>`SELECT payload FROM notifications
          WHERE kind = 'dead_letter' AND user_id = ${FIN_OPS} AND (payload->>'dead_letter_id')::bigint = ${Number(letter.id)}`.pipe(Effect.orDie)
        assert.strictEqual(note?.payload.link, `${PATH}/${letter.id}`)
        yield* eventually(scrape(app.baseUrl), (s) => total(s, "billing_dead_letters", { consumer: "payment-processor-webhooks" }) >= 1, "the gauge")
        const samples = yield* scrape(app.baseUrl)
        // every consumer's series exists from the start, at 0 when it has none
        assert.isTrue(exposed(samples, "billing_dead_letters", { consumer: "payment-processor-chain" }))
        assert.strictEqual(total(samples, "billing_dead_letters", { consumer: "payment-processor-chain" }), 0)

        // a replay before the cause is fixed would only fail again; the transaction now lands and gets deep
        yield* Effect.promise(() => app.devnet.publicClient.sendRawTransaction({ serializedTransaction: raw }))
        yield* mine(app, CONFIRMATIONS + 1)
        const replay = yield* app.request("POST", `${PATH}/${letter.id}/replay`, { token: app.admin, headers: { "x-request-id": "req-dl-1" } })
        assert.strictEqual(replay.status, 200)
        const result = decode(ReplayResult)(replay)
        assert.deepStrictEqual(result, {
          id: letter.id,
          replayed_to: letter.subject,
          msg_id: `replay:${letter.id}:${Date.parse(letter.last_failed_at)}`,
          duplicate: false
        })
        yield* waitForStatus(checkout.transaction_id, "confirmed")
        assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 2)

        // gone from the DLQ; a second replay finds nothing; the replay is in the audit trail
        assert.strictEqual((yield* app.request("GET", `${PATH}/${letter.id}`, { token: app.admin })).status, 404)
        const twice = yield* app.request("POST", `${PATH}/${letter.id}/replay`, { token: app.admin })
        assert.deepStrictEqual([twice.status, errorOf(twice).error], [404, "dead_letter_not_found"])
        const audit = decode(AuditPage)(yield* app.request("GET", `/v1/billing/admin/audit?resource=dead_letter:${letter.id}`, { token: app.admin }))
        assert.deepStrictEqual(audit.items.map((a) => [a.actor, a.action, a.request_id]), [["admin-1", "dead_letter.replay", "req-dl-1"]])

        // the same message dead-lettered twice and replayed again: its dedupe key stops a second effect
        const copy = yield* nats.publish(nats.subjects.dlq(nats.subjects.durables.paymentProcessorWebhooks), new TextEncoder().encode(letter.payload), {
          headers: { [DeadLetterHeaders.reason]: "copy", [DeadLetterHeaders.sourceSubject]: letter.subject, [DeadLetterHeaders.deliveryCount]: "3" }
        }).pipe(Effect.orDie)
        assert.strictEqual((yield* app.request("POST", `${PATH}/${copy.seq}/replay`, { token: app.admin })).status, 200)
        yield* Effect.sleep("1 second")
        const ledger = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_transactions WHERE payment_id = ${checkout.transaction_id}`.pipe(Effect.orDie)
        assert.strictEqual(ledger[0]?.n, 1)
        assert.strictEqual((yield* postingsOf(checkout.transaction_id)).length, 2)
      }))

    it.effect("a discard needs a reason, is audited and removes the letter", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { checkout } = yield* nativeCheckout(app, "dl", "user-dl-2", 6)
        const letter = yield* deadLetteredHook(app, ghostHash(), checkout.order_id)
        for (const body of [{}, { reason: "" }, { reason: " padded " }, { reason: "x".repeat(501) }]) {
          const res = yield* app.request("POST", `${PATH}/${letter.id}/discard`, { token: app.admin, body })
          assert.strictEqual(res.status, 400, JSON.stringify(body))
        }
        assert.strictEqual((yield* app.request("GET", `${PATH}/${letter.id}`, { token: app.admin })).status, 200, "still there")
        const res = yield* app.request("POST", `${PATH}/${letter.id}/discard`, { token: app.admin, body: { reason: "the relayer sent a hash of another chain" } })
        assert.deepStrictEqual([res.status, viewOf(res).id], [200, letter.id])
        assert.strictEqual((yield* app.request("GET", `${PATH}/${letter.id}`, { token: app.admin })).status, 404)
        const audit = decode(AuditPage)(yield* app.request("GET", `/v1/billing/admin/audit?resource=dead_letter:${letter.id}`, { token: app.admin }))
        assert.deepStrictEqual(audit.items.map((a) => [a.action, (a.after as { discard_reason: string }).discard_reason]), [
          ["dead_letter.discard", "the relayer sent a hash of another chain"]
        ])
      }))

    it.effect("paging and filters: limit and cursor, reason prefix, time and consumer", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { checkout } = yield* nativeCheckout(app, "dl", "user-dl-3", 7)
        const before = new Date().toISOString()
        yield* deadLetteredHook(app, ghostHash(), checkout.order_id)
        yield* deadLetteredHook(app, ghostHash(), checkout.order_id)
        const get = (query: string) => Effect.map(app.request("GET", `${PATH}?${query}`, { token: app.admin }), pageOf)
        const all = yield* get(`since=${before}`)
        assert.strictEqual(all.items.length, 2)
        const first = yield* get(`since=${before}&limit=1`)
        assert.deepStrictEqual(first.items.map((i) => i.id), [all.items[0]!.id])
        assert.strictEqual(first.next_cursor, all.items[0]!.id)
        const second = yield* get(`since=${before}&limit=1&cursor=${first.next_cursor}`)
        assert.deepStrictEqual(second.items.map((i) => i.id), [all.items[1]!.id])
        assert.deepStrictEqual((yield* get(`since=${before}&reason=zzz`)).items, [])
        assert.strictEqual((yield* get(`since=${before}&reason=${encodeURIComponent(all.items[0]!.reason.slice(0, 10))}`)).items.length, 2)
        assert.deepStrictEqual((yield* get("consumer=payment-processor-chain")).items, [])
        assert.deepStrictEqual((yield* get(`until=${before}&since=${before}`)).items, [])
      }))

    it.effect("the CLI lists, shows, refuses a discard without a reason and replays, as the operator it names", () =>
      Effect.gen(function*() {
        const app = yield* App
        const { checkout } = yield* nativeCheckout(app, "dl", "user-dl-4", 8)
        const txHash = ghostHash()
        const letter = yield* deadLetteredHook(app, txHash, checkout.order_id)
        const env = { ...app.env }
        const listed = yield* cli(["dead-letters", "list", "--consumer", "payment-processor-webhooks", "--limit", "100", "--json"], env)
        assert.strictEqual(listed.code, 0, listed.stderr)
        assert.include(pageOf({ status: 200, body: JSON.parse(listed.stdout) }).items.map((i) => i.id), letter.id)
        const shown = yield* cli(["dead-letters", "get", letter.id], env)
        assert.strictEqual(shown.code, 0, shown.stderr)
        assert.include(viewOf({ status: 200, body: JSON.parse(shown.stdout) }).payload, txHash)
        const refused = yield* cli(["dead-letters", "discard", letter.id, "--reason", " "], env)
        assert.notStrictEqual(refused.code, 0)
        const replayed = yield* cli(["dead-letters", "replay", letter.id, "--actor", "ops-cli"], env)
        assert.strictEqual(replayed.code, 0, replayed.stderr)
        assert.include(replayed.stdout, `dead letter ${letter.id} replayed to ${letter.subject}`)
        const audit = decode(AuditPage)(yield* app.request("GET", `/v1/billing/admin/audit?resource=dead_letter:${letter.id}`, { token: app.admin }))
        assert.deepStrictEqual(audit.items.map((a) => [a.actor, a.action]), [["ops-cli", "dead_letter.replay"]])
      }), 120_000)

    describe("refused", () => {
      it.effect("bad parameters are 400, other roles 401/403, unknown ids 404; nothing changes", () =>
        Effect.gen(function*() {
          const app = yield* App
          for (const query of ["consumer=nope", "limit=0", "limit=101", "since=yesterday", "cursor=-1", "reason="]) {
            const res = yield* app.request("GET", `${PATH}?${query}`, { token: app.admin })
            assert.strictEqual(res.status, 400, query)
          }
          assert.strictEqual((yield* app.request("GET", `${PATH}/abc`, { token: app.admin })).status, 400)
          assert.strictEqual((yield* app.request("GET", `${PATH}/0`, { token: app.admin })).status, 400)
          assert.strictEqual((yield* app.request("GET", PATH)).status, 401)
          assert.strictEqual((yield* app.request("GET", PATH, { token: app.token("someone", ["finance_ops"]) })).status, 403)
          assert.strictEqual((yield* app.request("POST", `${PATH}/999999/replay`, { token: app.token("someone") })).status, 403)
          const missing = yield* app.request("POST", `${PATH}/999999/replay`, { token: app.admin })
          assert.deepStrictEqual([missing.status, errorOf(missing).error], [404, "dead_letter_not_found"])
          const discard = yield* app.request("POST", `${PATH}/999999/discard`, { token: app.admin, body: { reason: "x" } })
          assert.strictEqual(discard.status, 404)
          assert.strictEqual(Schema.is(Schema.Struct({ error: Schema.String }))(discard.body), true)
        }))
    })
  }
)
