/**
 * finance_ops overview and the audit views (admin changes for admins, payment rows for finance_ops) over HTTP against the running service: who may call them, bad
 * query parameters, the per-user bundle being exactly what the user sees, paging and filters. The figures
 * themselves are checked against hand-computed values in test/services/Overview.test.ts.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Audit } from "../../services/Audit.ts"
import { AuditPage } from "../../src/domain/AuditLog.ts"
import { Dashboard, Networks, PayoutsPage } from "../../src/domain/Overview.ts"
import { HistoryPage } from "../../src/http/Me/Api.ts"
import { App, appHarness, decode, errorOf, type Response } from "../support/app.ts"
import { seedLedger, seedPayment, seedPlan, seedSubscription, uuid } from "../support/overviewSeed.ts"

const OVERVIEW = "/v1/billing/overview"
const AUDIT = "/v1/billing/admin/audit"
const FINANCE_AUDIT = `${OVERVIEW}/audit`
const USER = "alice@example.com"
const USER_PATH = encodeURIComponent(USER)

const errorCode = (res: Response) => {
  assert.deepStrictEqual(Object.keys(res.body as object).sort(), ["error", "message"], JSON.stringify(res.body))
  return [res.status, errorOf(res).error] as const
}

/** Alice: a confirmed payment 10 minutes ago (confirmed 90 s after checkout), an active monthly subscription, a pending checkout. */
const seedAlice = Effect.gen(function*() {
  const now = Date.now()
  const iso = (ms: number) => new Date(ms).toISOString()
  const plan = yield* seedPlan("monthly", "month", [["anvil", "native", 1000n]])
  const created = now - 600_000
  const confirmed = created + 90_000
  yield* seedPayment({ n: 1, user: USER, plan, network: "anvil", token: "native", amount: 1000n, paid: 1000n, status: "confirmed",
    created: iso(created), confirmed: iso(confirmed) })
  yield* seedPayment({ n: 2, user: USER, plan, network: "anvil", token: "native", amount: 1000n, status: "failed", reason: "underpaid",
    paid: 10n, created: iso(created - 60_000) })
  yield* seedPayment({ n: 3, user: USER, plan, network: "anvil", token: "native", amount: 1000n, status: "pending",
    created: iso(now - 1000), expires: iso(now + 3_600_000) })
  yield* seedLedger("payment:1", 1, "payment", iso(confirmed), [["treasury:anvil", "anvil:native", 1000n], ["revenue:anvil", "anvil:native", -1000n]])
  yield* seedSubscription({ n: 1, user: USER, plan, status: "active", created: iso(confirmed), start: iso(confirmed),
    end: iso(confirmed + 30 * 86_400_000), payment: 1 })
  return { confirmedDay: iso(confirmed).slice(0, 10) }
})

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("overview and audit over HTTP", (it) => {
  it.effect("overview is finance_ops only, audit is admin only", () =>
    Effect.gen(function*() {
      const app = yield* App
      const overview = ["/dashboard", "/networks", "/payouts?status=pending", `/users/${USER_PATH}/history`, `/users/${USER_PATH}/summary`, "/audit"]
      const finance = app.token("fin-1", ["finance_ops"])
      const both = app.token("boss", ["admin", "finance_ops"])
      for (const path of overview) {
        const get = (token?: string) => app.request("GET", `${OVERVIEW}${path}`, token === undefined ? {} : { token })
        assert.deepStrictEqual(errorCode(yield* get()), [401, "unauthorized"], path)
        assert.deepStrictEqual(errorCode(yield* get(app.token("plain"))), [403, "forbidden"], path)
        assert.deepStrictEqual(errorCode(yield* get(app.admin)), [403, "forbidden"], `admin does not imply finance_ops: ${path}`)
        assert.strictEqual((yield* get(finance)).status, 200, path)
        assert.strictEqual((yield* get(both)).status, 200, path)
      }
      const audit = (token?: string) => app.request("GET", AUDIT, token === undefined ? {} : { token })
      assert.deepStrictEqual(errorCode(yield* audit()), [401, "unauthorized"])
      assert.deepStrictEqual(errorCode(yield* audit(app.token("plain"))), [403, "forbidden"])
      assert.deepStrictEqual(errorCode(yield* audit(finance)), [403, "forbidden"])
      assert.strictEqual((yield* audit(app.admin)).status, 200)
      assert.strictEqual((yield* audit(both)).status, 200)
    }))

  it.effect("bad query parameters are 400 {error, message}", () =>
    Effect.gen(function*() {
      const app = yield* App
      const finance = app.token("fin-1", ["finance_ops"])
      const cases: ReadonlyArray<readonly [string, string, string]> = [
        [`${OVERVIEW}/payouts?status=lost`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?network=Main%20Net`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?token=0x1234`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?contract=NO!`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?from=yesterday`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?from=2025-13-45`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?to=2025-02-30`, finance, "invalid_request"], // JS Date would read March 2nd
        [`${OVERVIEW}/payouts?from=2025-03-01T00:00:00`, finance, "invalid_request"], // no zone
        [`${OVERVIEW}/payouts?from=2025-03-02&to=2025-03-01`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?limit=0`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?limit=101`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?limit=ten`, finance, "invalid_request"],
        [`${OVERVIEW}/payouts?cursor=bm90LWEtY3Vyc29y`, finance, "invalid_cursor"],
        [`${OVERVIEW}/users/${USER_PATH}/history?cursor=nope`, finance, "invalid_cursor"],
        [`${OVERVIEW}/users/${USER_PATH}/history?limit=1000`, finance, "invalid_request"],
        [`${AUDIT}?limit=0`, app.admin, "invalid_request"],
        [`${AUDIT}?resource=`, app.admin, "invalid_request"],
        [`${AUDIT}?cursor=e30`, app.admin, "invalid_cursor"],
        [`${FINANCE_AUDIT}?limit=101`, finance, "invalid_request"],
        [`${FINANCE_AUDIT}?cursor=e30`, finance, "invalid_cursor"]
      ]
      for (const [path, token, code] of cases) {
        assert.deepStrictEqual(errorCode(yield* app.request("GET", path, { token })), [400, code], path)
      }
    }))

  it.effect("dashboard, networks and payouts over HTTP; a user's bundle is exactly what the user sees", () =>
    Effect.gen(function*() {
      const app = yield* App
      const finance = app.token("fin-1", ["finance_ops"])
      const { confirmedDay } = yield* seedAlice
      const get = (path: string, token = finance) => app.request("GET", path, { token })

      const dash = decode(Dashboard)(yield* get(`${OVERVIEW}/dashboard`))
      // One monthly subscription at 1000: ARR 12·1000 = 12000, MRR 1000.
      assert.deepStrictEqual(dash.mrr, [{ network: "anvil", token: "native", subscriptions: 1, arr: "12000", mrr: "1000", mrr_remainder_twelfths: "0" }])
      assert.deepStrictEqual(dash.arpu, [{ network: "anvil", token: "native", revenue: "1000", paying_users: 1, arpu: "1000" }])
      assert.deepStrictEqual(dash.revenue_per_day, [{ day: confirmedDay, network: "anvil", token: "native", amount: "1000" }])
      assert.deepStrictEqual(dash.confirmation_time, { payments: 1, average_seconds: 90, p95_seconds: 90 })
      assert.deepStrictEqual(dash.payments, { pending: 1, seen: 0, confirmed: 1, failed: 1, expired: 0, reversed: 0, refunded: 0 })
      assert.strictEqual(dash.subscriptions.active, 1)

      const [anvil] = decode(Networks)(yield* get(`${OVERVIEW}/networks`)).networks
      assert.deepInclude(anvil, { network: "anvil", chain_id: app.devnet.info.chain_id, confirmations: 2, rpc_endpoints: 1 })
      assert.deepStrictEqual(anvil!.rpc_health.map((h) => h.index), [0])
      assert.deepStrictEqual(anvil!.volume, [{ token: "native", payments: 1, amount: "1000" }])
      assert.notInclude(JSON.stringify(anvil), app.devnet.info.rpc_url)

      const pending = decode(PayoutsPage)(yield* get(`${OVERVIEW}/payouts?status=pending&network=anvil&token=native&contract=pass`))
      assert.deepStrictEqual(pending.items.map((i) => [i.transaction_id, i.user_id, i.contract_slug]), [[uuid(3), USER, "pass"]])
      const all = decode(PayoutsPage)(yield* get(`${OVERVIEW}/payouts?limit=2`))
      assert.deepStrictEqual(all.items.map((i) => i.transaction_id), [uuid(3), uuid(1)])
      const rest = decode(PayoutsPage)(yield* get(`${OVERVIEW}/payouts?limit=2&cursor=${all.next_cursor}`))
      assert.deepStrictEqual([rest.items.map((i) => i.transaction_id), rest.next_cursor], [[uuid(2)], null])
      const dateOnly = decode(PayoutsPage)(yield* get(`${OVERVIEW}/payouts?from=2000-01-01&to=2000-01-02`))
      assert.deepStrictEqual(dateOnly.items, [])

      const alice = app.token(USER)
      const mine = yield* app.request("GET", "/v1/billing/me/summary", { token: alice })
      const theirs = yield* get(`${OVERVIEW}/users/${USER_PATH}/summary`)
      assert.deepStrictEqual([theirs.status, theirs.body], [200, mine.body])
      assert.include(theirs.body as object, { user_id: USER })
      const myPage = decode(HistoryPage)(yield* app.request("GET", "/v1/billing/me/history?limit=2", { token: alice }))
      const theirPage = decode(HistoryPage)(yield* get(`${OVERVIEW}/users/${USER_PATH}/history?limit=2`))
      assert.deepStrictEqual(theirPage, myPage)
      const next = yield* get(`${OVERVIEW}/users/${USER_PATH}/history?limit=2&cursor=${theirPage.next_cursor}`)
      assert.deepStrictEqual(decode(HistoryPage)(next).items.map((i) => i.transaction_id), [uuid(2)])
      const nobody = yield* get(`${OVERVIEW}/users/nobody/summary`)
      assert.deepStrictEqual(nobody.body, { user_id: "nobody", wallet: null, subscription: null, debt: [], credit: [], last_payment: null })
    }))

  it.effect("audit: newest first, filters, cursor paging, before/after as stored", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const finance = app.token("fin-1", ["finance_ops"])
      const contract = { slug: "audited-c", network: "anvil", address: `0x${"d".repeat(40)}`, webhook_secret: "audit-secret-0123456789" }
      assert.strictEqual((yield* app.request("POST", "/v1/billing/admin/contracts", { token: app.admin, body: contract })).status, 201)
      const plan = { slug: "audited", title: "A", interval: "month", contract_slug: "audited-c", prices: [{ network: "anvil", token: "native", amount: "5" }] }
      assert.strictEqual((yield* app.request("POST", "/v1/billing/admin/plans", { token: app.admin, body: plan })).status, 201)
      const patch = yield* app.request("PATCH", "/v1/billing/admin/plans/audited", { token: app.admin, body: { title: "B" }, headers: { "x-request-id": "req-7" } })
      assert.strictEqual(patch.status, 200)
      const config = { confirmations: { anvil: 2 } }
      assert.strictEqual((yield* app.request("POST", `${OVERVIEW}/crypto-config`, { token: finance, body: config })).status, 200)
      const list = (query: string) => Effect.map(app.request("GET", `${AUDIT}${query}`, { token: app.admin }), decode(AuditPage))

      const everything = yield* list("")
      const ids = everything.items.map((i) => BigInt(i.id))
      assert.isAtLeast(ids.length, 3)
      assert.deepStrictEqual(ids, [...ids].sort((a, b) => (a > b ? -1 : 1)), "newest first")

      const planRows = yield* list("?resource=plan:audited")
      assert.deepStrictEqual(planRows.items.map((i) => [i.action, i.actor]), [["plan.update", "admin-1"], ["plan.create", "admin-1"]])
      const stored = yield* sql<{ before: unknown; after: unknown }>`SELECT before, after FROM audit_log WHERE action = 'plan.update'`
      assert.deepStrictEqual([planRows.items[0]!.before, planRows.items[0]!.after], [stored[0]!.before, stored[0]!.after])
      assert.deepInclude(planRows.items[0]!.after as object, { title: "B" })
      assert.strictEqual(planRows.items[0]!.request_id, "req-7")
      assert.isNull(planRows.items[1]!.before)

      const contractRows = yield* list("?resource=contract:audited-c")
      assert.deepStrictEqual(contractRows.items.map((i) => i.action), ["contract.create"])
      assert.notInclude(JSON.stringify(everything), "audit-secret-0123456789")

      const byFinance = yield* list("?actor=fin-1")
      assert.deepStrictEqual(byFinance.items.map((i) => [i.action, i.resource]), [["crypto_config.update", "crypto_config:anvil"]])
      assert.deepStrictEqual((yield* list("?actor=fin-1&resource=plan:audited")).items, [])
      assert.deepStrictEqual((yield* list("?action=plan.create&resource=plan:audited")).items.map((i) => i.action), ["plan.create"])

      const first = yield* list("?resource=plan:audited&limit=1")
      assert.deepStrictEqual(first.items.map((i) => i.action), ["plan.update"])
      const second = yield* list(`?resource=plan:audited&limit=1&cursor=${first.next_cursor}`)
      assert.deepStrictEqual([second.items.map((i) => i.action), second.next_cursor], [["plan.create"], null])
    }))

  it.effect("payment rows are finance_ops': no admin filter or cursor reaches them, the finance_ops view shows them", () =>
    Effect.gen(function*() {
      const app = yield* App
      const finance = app.token("fin-2", ["finance_ops"])
      const both = app.token("boss-2", ["admin", "finance_ops"])
      const paymentId = uuid(77)
      // Written as the service writes them: checkout (by the user), the processor's moves, the scheduler's expiry.
      yield* Effect.flatMap(Audit, (audit) =>
        Effect.all([
          audit.paymentTransition({ paymentId, from: null, to: "pending", actor: "payer-77", details: { amount: "1000", user_id: "payer-77" } }),
          audit.paymentTransition({ paymentId, from: "pending", to: "confirmed", details: { tx_hash: `0x${"7".repeat(64)}` } }),
          audit.record({ actor: "system:scheduler", action: "payment.expired", resource: `payment:${uuid(78)}`, after: { status: "expired" } })
        ], { discard: true })).pipe(Effect.provide(Audit.Default))
      const contract = { slug: "scoped-c", network: "anvil", address: `0x${"e".repeat(40)}` }
      assert.strictEqual((yield* app.request("POST", "/v1/billing/admin/contracts", { token: app.admin, body: contract })).status, 201)
      const plan = { slug: "scoped", title: "S", interval: "month", contract_slug: "scoped-c", prices: [{ network: "anvil", token: "native", amount: "5" }] }
      assert.strictEqual((yield* app.request("POST", "/v1/billing/admin/plans", { token: app.admin, body: plan })).status, 201)
      const list = (path: string, token: string) => Effect.map(app.request("GET", path, { token }), decode(AuditPage))
      const isPayment = (i: { readonly resource: string; readonly action: string }) =>
        i.resource.startsWith("payment:") || i.action.startsWith("payment.")

      const adminQueries = [
        "", "?limit=100", `?resource=payment:${paymentId}`, `?resource=payment:${uuid(78)}`, "?action=payment.confirmed",
        "?action=payment.pending", "?action=payment.expired", "?actor=system:payment-processor", "?actor=system:scheduler",
        "?actor=payer-77", `?actor=payer-77&resource=payment:${paymentId}`
      ]
      for (const token of [app.admin, both]) {
        for (const query of adminQueries) {
          const page = yield* list(`${AUDIT}${query}`, token)
          assert.deepStrictEqual(page.items.filter(isPayment), [], `admin view ${query}`)
          assert.notInclude(JSON.stringify(page), paymentId, `admin view ${query}`)
        }
        // Paging one row at a time through the whole admin view never lands on a payment row either.
        const seen: Array<string> = []
        let cursor: string | null = ""
        while (cursor !== null) {
          const page: AuditPage = yield* list(`${AUDIT}?limit=1${cursor === "" ? "" : `&cursor=${cursor}`}`, token)
          seen.push(...page.items.map((i) => i.resource))
          cursor = page.next_cursor
        }
        assert.include(seen, "plan:scoped")
        assert.isFalse(seen.some((r) => r.startsWith("payment:")), seen.join(" "))
      }

      assert.deepStrictEqual(errorCode(yield* app.request("GET", FINANCE_AUDIT, { token: app.admin })), [403, "forbidden"])
      const payment = yield* list(`${FINANCE_AUDIT}?resource=payment:${paymentId}`, finance)
      assert.deepStrictEqual(payment.items.map((i) => [i.action, i.actor]), [
        ["payment.confirmed", "system:payment-processor"],
        ["payment.pending", "payer-77"]
      ])
      assert.deepInclude(payment.items[1]!.after as object, { status: "pending", amount: "1000", user_id: "payer-77" })
      assert.deepStrictEqual((yield* list(`${FINANCE_AUDIT}?action=payment.expired`, both)).items.map((i) => i.resource), [`payment:${uuid(78)}`])
      const first = yield* list(`${FINANCE_AUDIT}?actor=payer-77&limit=1`, finance)
      assert.deepStrictEqual([first.items.map((i) => i.action), first.next_cursor], [["payment.pending"], null])
      // finance_ops sees the money and its own config changes, not the admins' plan edits.
      const view = yield* list(`${FINANCE_AUDIT}?limit=100`, finance)
      assert.isTrue(view.items.every((i) => isPayment(i) || i.resource.startsWith("crypto_config:")), JSON.stringify(view.items.map((i) => i.resource)))
      assert.deepStrictEqual((yield* list(`${FINANCE_AUDIT}?resource=plan:scoped`, finance)).items, [])
    }))
})
