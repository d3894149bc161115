/**
 * Who may call what: every admin route denies anonymous, plain, finance_ops-only, foreign-signed, expired,
 * expiry-less and service-actor tokens, and serves admin. Admin changes are audited (without secrets, invariants 9 and 10);
 * plan deletion is hard when unused and soft once a checkout refers to it. Public routes need no token.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { PlanView } from "../../src/domain/Plan.ts"
import { signTestJwt } from "../support/jwt.ts"
import { Readiness } from "../../src/http/Public/Api.ts"
import { App, appHarness, decode, errorOf, type Harness, JWT_SECRET, registerContractAndPlan, type Response } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"

const ADMIN = "/v1/billing/admin"
const SECRET_1 = "first-contract-webhook-secret-1"
const SECRET_2 = "second-contract-webhook-secret-2"
const now = () => Math.floor(Date.now() / 1000)
const address = () => `0x${randomBytes(20).toString("hex")}`

const planBody = (slug: string, contract: string) => ({
  slug,
  title: `Plan ${slug}`,
  interval: "month",
  contract_slug: contract,
  prices: [{ network: "anvil", token: "native", amount: "1000" }]
})

/** Per resource: a create body, a patch body, and the check that the patch took effect. */
const resources = {
  contracts: {
    create: (slug: string) => ({ slug, network: "anvil", address: address(), webhook_secret: SECRET_1 }),
    patch: { webhook_secret: SECRET_2, enabled: false },
    patched: (body: unknown) => assert.include(body as object, { enabled: false, has_webhook_secret: true })
  },
  plans: {
    create: (slug: string) => planBody(slug, "c-for-plans"),
    patch: { title: "Renamed" },
    patched: (body: unknown) => assert.strictEqual(decode(PlanView)({ status: 200, body }).title, "Renamed")
  },
  gateways: {
    create: (slug: string) => ({ slug, title: "Second", networks: ["anvil"], enabled: true }),
    patch: { enabled: false },
    patched: (body: unknown) => assert.include(body as object, { enabled: false })
  }
} as const
type Resource = keyof typeof resources

/** Every admin route: list, create, get, update, delete of each resource. */
const routes = (Object.keys(resources) as Array<Resource>).flatMap((r) => [
  ["GET", `${ADMIN}/${r}`, undefined],
  ["POST", `${ADMIN}/${r}`, resources[r].create(`denied-${r}`)],
  ["GET", `${ADMIN}/${r}/denied-${r}`, undefined],
  ["PATCH", `${ADMIN}/${r}/denied-${r}`, resources[r].patch],
  ["DELETE", `${ADMIN}/${r}/denied-${r}`, undefined]
] as const)

const errorCode = (res: Response) => {
  assert.deepStrictEqual(Object.keys(res.body as object).sort(), ["error", "message"])
  return [res.status, errorOf(res).error] as const
}

const auditRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ actor: string; action: string; resource: string; text: string }>`SELECT actor, action, resource,
    concat_ws(' ', resource, before::text, after::text, request_id) AS text FROM audit_log ORDER BY id`).pipe(Effect.orDie)

/** Full CRUD of one resource as admin, each route answering its documented status. */
const crud = (app: Harness, r: Resource, slug: string) =>
  Effect.gen(function*() {
    const call = (method: string, path: string, body?: unknown) =>
      app.request(method, `${ADMIN}/${r}${path}`, { token: app.admin, ...(body === undefined ? {} : { body }) })
    const created = yield* call("POST", "", resources[r].create(slug))
    assert.strictEqual(created.status, 201, `${r} create: ${JSON.stringify(created.body)}`)
    assert.strictEqual((yield* call("GET", "")).status, 200)
    assert.strictEqual((yield* call("GET", `/${slug}`)).status, 200)
    const patched = yield* call("PATCH", `/${slug}`, resources[r].patch)
    assert.strictEqual(patched.status, 200)
    resources[r].patched(patched.body)
    assert.deepStrictEqual(errorCode(yield* call("POST", "", resources[r].create(slug))), [409, `${r.slice(0, -1)}_exists`])
    const removed = yield* call("DELETE", `/${slug}`)
    assert.deepStrictEqual([removed.status, removed.body], [200, { deleted: true, soft: false }])
    assert.deepStrictEqual(errorCode(yield* call("GET", `/${slug}`)), [404, `${r.slice(0, -1)}_not_found`])
    return created.body
  })

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("admin roles", (it) => {
  it.effect("every admin route denies anyone but admin, and a denial writes nothing", () =>
    Effect.gen(function*() {
      const app = yield* App
      const audited = (yield* auditRows).length
      const denied: ReadonlyArray<readonly [string, string | undefined, number, string]> = [
        ["anonymous", undefined, 401, "unauthorized"],
        ["plain user", app.token("plain-user"), 403, "forbidden"],
        ["finance_ops only", app.token("finance-user", ["finance_ops"]), 403, "forbidden"],
        ["signed with another secret", signTestJwt({ sub: "admin-1", roles: ["admin"], iat: now(), exp: now() + 600 }, "another-secret-0123456789abcdef"), 401, "unauthorized"],
        ["without exp", signTestJwt({ sub: "admin-1", roles: ["admin"], iat: now() }, JWT_SECRET), 401, "unauthorized"],
        ["a service actor", signTestJwt({ sub: "system:payment-processor", roles: ["admin"], iat: now(), exp: now() + 600 }, JWT_SECRET), 401, "unauthorized"],
        ["expired", signTestJwt({ sub: "admin-1", roles: ["admin"], iat: now() - 7200, exp: now() - 60 }, JWT_SECRET), 401, "unauthorized"],
        ["malformed", "not-a-jwt", 401, "unauthorized"]
      ]
      for (const [who, token, status, code] of denied) {
        for (const [method, path, body] of routes) {
          const res = yield* app.request(method, path, { ...(token === undefined ? {} : { token }), ...(body === undefined ? {} : { body }) })
          assert.deepStrictEqual(errorCode(res), [status, code], `${who}: ${method} ${path}`)
        }
      }
      assert.strictEqual((yield* auditRows).length, audited, "a denied request writes no audit row")
      for (const r of Object.keys(resources)) {
        const res = yield* app.request("GET", `${ADMIN}/${r}/denied-${r}`, { token: app.admin })
        assert.strictEqual(res.status, 404, `denied create of ${r} created nothing`)
      }
    }))

  it.effect("a token without exp, or with a subject in the service-actor namespace, gets 401 naming why and never the token", () =>
    Effect.gen(function*() {
      const app = yield* App
      const cases = [
        [signTestJwt({ sub: "user-1", roles: [], iat: now() }, JWT_SECRET), "token has no expiry (exp)"],
        [signTestJwt({ sub: "system:scheduler", roles: [], exp: now() + 600 }, JWT_SECRET), "token subject is in the reserved service namespace"],
        [signTestJwt({ sub: "SYSTEM:payment-processor", roles: ["admin"], exp: now() + 600 }, JWT_SECRET), "token subject is in the reserved service namespace"]
      ] as const
      for (const [token, message] of cases) {
        for (const path of ["/v1/billing/me/summary", `${ADMIN}/plans`]) {
          const res = yield* app.request("GET", path, { token })
          assert.strictEqual(res.status, 401, path)
          assert.deepStrictEqual(errorOf(res), { error: "unauthorized", message })
          assert.notInclude(JSON.stringify(res.body), token.split(".")[1]!)
        }
      }
      assert.strictEqual((yield* app.request("GET", "/v1/billing/me/summary", { token: app.token("user-1") })).status, 200)
    }))

  it.effect("admin CRUD works on every route, each change audited once, no secret in the trail", () =>
    Effect.gen(function*() {
      const app = yield* App
      const from = (yield* auditRows).length
      const contract = yield* crud(app, "contracts", "c-crud")
      assert.include(contract as object, { has_webhook_secret: true })
      assert.notProperty(contract as object, "webhook_secret")
      const forPlans = yield* app.request("POST", `${ADMIN}/contracts`, { token: app.admin, body: resources.contracts.create("c-for-plans") })
      assert.strictEqual(forPlans.status, 201)
      yield* crud(app, "plans", "p-crud")
      yield* crud(app, "gateways", "g-crud")

      const rows = (yield* auditRows).slice(from)
      assert.deepStrictEqual(rows.map((r) => [r.actor, r.action, r.resource]), [
        ["admin-1", "contract.create", "contract:c-crud"],
        ["admin-1", "contract.update", "contract:c-crud"],
        ["admin-1", "contract.delete", "contract:c-crud"],
        ["admin-1", "contract.create", "contract:c-for-plans"],
        ["admin-1", "plan.create", "plan:p-crud"],
        ["admin-1", "plan.update", "plan:p-crud"],
        ["admin-1", "plan.delete", "plan:p-crud"],
        ["admin-1", "gateway.create", "gateway:g-crud"],
        ["admin-1", "gateway.update", "gateway:g-crud"],
        ["admin-1", "gateway.delete", "gateway:g-crud"]
      ])
      for (const row of yield* auditRows) {
        for (const secret of [SECRET_1, SECRET_2]) assert.notInclude(row.text, secret, `${row.action} ${row.resource}`)
      }
      const sql = yield* SqlClient.SqlClient
      const [plan] = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM plans WHERE slug = 'p-crud'`
      assert.strictEqual(plan!.n, "0", "an unused plan is hard-deleted")
    }))

  it.effect("deleting a plan with a checkout is a soft delete: history kept, no longer offered", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "used", { native: 10n ** 16n, token: 1_000_000n })
      const checkout = yield* app.request("POST", "/v1/billing/checkout", {
        token: app.token("soft-user"),
        body: { plan_slug: "used", wallet_address: devAccount(1).address }
      })
      assert.strictEqual(checkout.status, 201)
      const listed = (res: Response) => Schema.decodeUnknownSync(Schema.Struct({ items: Schema.Array(PlanView) }))(res.body).items.map((p) => p.slug)
      assert.include(listed(yield* app.request("GET", "/v1/billing/plans")), "used")

      const removed = yield* app.request("DELETE", `${ADMIN}/plans/used`, { token: app.admin })
      assert.deepStrictEqual([removed.status, removed.body], [200, { deleted: true, soft: true }])
      assert.notInclude(listed(yield* app.request("GET", "/v1/billing/plans")), "used")
      assert.notInclude(listed(yield* app.request("GET", `${ADMIN}/plans`, { token: app.admin })), "used")
      assert.deepStrictEqual(errorCode(yield* app.request("GET", `${ADMIN}/plans/used`, { token: app.admin })), [404, "plan_not_found"])

      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ deleted: boolean; payments: string }>`SELECT p.deleted_at IS NOT NULL AS deleted,
        (SELECT count(*) FROM payment_transactions t WHERE t.plan_id = p.id)::text AS payments FROM plans p WHERE p.slug = 'used'`
      assert.deepStrictEqual(row, { deleted: true, payments: "1" })
      const last = (yield* auditRows).at(-1)!
      assert.deepStrictEqual([last.actor, last.action, last.resource], ["admin-1", "plan.soft_delete", "plan:used"])
    }))

  it.effect("a contract that a plan refers to cannot be deleted out from under it (409, checkout keeps working)", () =>
    Effect.gen(function*() {
      const app = yield* App
      const contract = yield* app.request("POST", `${ADMIN}/contracts`, { token: app.admin, body: resources.contracts.create("c-in-use") })
      assert.strictEqual(contract.status, 201)
      const plan = yield* app.request("POST", `${ADMIN}/plans`, { token: app.admin, body: planBody("in-use", "c-in-use") })
      assert.strictEqual(plan.status, 201)

      const removed = yield* app.request("DELETE", `${ADMIN}/contracts/c-in-use`, { token: app.admin })
      assert.strictEqual(removed.status, 409, `deleting a contract in use: ${JSON.stringify(removed.body)}`)
      errorCode(removed)
      assert.strictEqual((yield* app.request("GET", `${ADMIN}/contracts/c-in-use`, { token: app.admin })).status, 200)
      const checkout = yield* app.request("POST", "/v1/billing/checkout", {
        token: app.token("in-use-user"),
        body: { plan_slug: "in-use", wallet_address: devAccount(2).address }
      })
      assert.strictEqual(checkout.status, 201, `checkout of a listed plan: ${JSON.stringify(checkout.body)}`)
    }))

  it.effect("public routes need no token", () =>
    Effect.gen(function*() {
      const app = yield* App
      assert.strictEqual((yield* app.request("GET", "/v1/billing/plans")).status, 200)
      const health = yield* app.request("GET", "/healthz")
      assert.deepStrictEqual([health.status, health.body], [200, { status: "ok" }])
      const ready = yield* app.request("GET", "/readyz")
      assert.strictEqual(ready.status, 200)
      const readiness = decode(Readiness)(ready)
      assert.strictEqual(readiness.status, "ok")
      for (const check of ["postgres", "nats", "rpc:anvil"]) assert.isTrue(readiness.checks[check]?.ok, `${check} is ok`)
      const openapi = yield* app.request("GET", "/openapi.json")
      assert.strictEqual(openapi.status, 200)
      const doc = Schema.decodeUnknownSync(Schema.Struct({ openapi: Schema.String, paths: Schema.Record({ key: Schema.String, value: Schema.Unknown }) }))(openapi.body)
      assert.includeMembers(Object.keys(doc.paths), ["/v1/billing/checkout", "/v1/billing/admin/plans/{slug}", "/v1/billing/contracts/webhook"])
    }))
})
