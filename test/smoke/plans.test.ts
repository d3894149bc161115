/**
 * Plans over real HTTP: the public list, and the admin round trip (create, read, update, list, delete) on a plan
 * of this run only, removed at the end whatever happens.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { ContractView } from "../../src/domain/Contract.ts"
import { PlanView } from "../../src/domain/Plan.ts"
import { decode, ErrorBody, request, tokens } from "./client.ts"

const PlanList = Schema.Struct({ items: Schema.Array(PlanView) })
const ContractList = Schema.Struct({ items: Schema.Array(ContractView) })
const Deleted = Schema.Struct({ deleted: Schema.Literal(true), soft: Schema.Boolean })
/** Amounts on the wire: decimal strings of base units, never JSON numbers. */
const WirePlans = Schema.Struct({ items: Schema.Array(Schema.Struct({ prices: Schema.Array(Schema.Struct({ amount: Schema.String.pipe(Schema.pattern(/^[1-9][0-9]*$/)) })) })) })

const admin = tokens.admin

describe("plans", () => {
  it.effect("the public list has active plans with prices as decimal strings", () =>
    Effect.gen(function*() {
      const res = yield* request("GET", "/v1/billing/plans")
      assert.strictEqual(res.status, 200)
      assert.match(res.contentType, /application\/json/)
      const plans = decode(PlanList, res)
      assert.isTrue(plans.items.every((p) => p.is_active && p.prices.length > 0))
      decode(WirePlans, res)
    }))

  it.effect("admin lists plans, including what the public list shows", () =>
    Effect.gen(function*() {
      const all = decode(PlanList, yield* request("GET", "/v1/billing/admin/plans", { token: admin }))
      const open = decode(PlanList, yield* request("GET", "/v1/billing/plans"))
      const slugs = new Set(all.items.map((p) => p.slug))
      for (const plan of open.items) assert.isTrue(slugs.has(plan.slug), `${plan.slug} missing from the admin list`)
    }))

  it.effect("admin creates, reads, updates and deletes a plan", () =>
    Effect.gen(function*() {
      const contracts = decode(ContractList, yield* request("GET", "/v1/billing/admin/contracts", { token: admin }))
      const contract = contracts.items.find((c) => c.enabled)
      assert.isDefined(contract, "the server has no enabled contract to price a plan on")
      const slug = `smoke-${randomBytes(4).toString("hex")}`
      const body = {
        slug,
        title: "Smoke test plan",
        interval: "month",
        contract_slug: contract!.slug,
        prices: [{ network: contract!.network, token: "native", amount: "1000" }],
        is_active: true
      }
      const remove = request("DELETE", `/v1/billing/admin/plans/${slug}`, { token: admin })
      yield* Effect.gen(function*() {
        const created = yield* request("POST", "/v1/billing/admin/plans", { token: admin, body })
        assert.strictEqual(created.status, 201, JSON.stringify(created.body))
        assert.strictEqual(decode(PlanView, created).slug, slug)

        const again = yield* request("POST", "/v1/billing/admin/plans", { token: admin, body })
        assert.strictEqual(again.status, 409)
        assert.strictEqual(decode(ErrorBody, again).error, "plan_exists")

        const invalid = yield* request("POST", "/v1/billing/admin/plans", { token: admin, body: { ...body, slug: `${slug}-x`, prices: [] } })
        assert.strictEqual(invalid.status, 400)

        const read = yield* request("GET", `/v1/billing/admin/plans/${slug}`, { token: admin })
        assert.strictEqual(read.status, 200)
        assert.deepStrictEqual(decode(PlanView, read).prices.map((p) => p.amount), [1000n])

        const updated = yield* request("PATCH", `/v1/billing/admin/plans/${slug}`, { token: admin, body: { title: "Smoke test plan, renamed" } })
        assert.strictEqual(updated.status, 200)
        assert.strictEqual(decode(PlanView, updated).title, "Smoke test plan, renamed")

        const listed = decode(PlanList, yield* request("GET", "/v1/billing/plans"))
        assert.isTrue(listed.items.some((p) => p.slug === slug), "a new active plan is listed publicly")

        const deleted = yield* remove
        assert.strictEqual(deleted.status, 200)
        assert.deepStrictEqual(decode(Deleted, deleted), { deleted: true, soft: false }, "nothing refers to it: a hard delete")
        assert.strictEqual((yield* request("GET", `/v1/billing/admin/plans/${slug}`, { token: admin })).status, 404)
        const after = decode(PlanList, yield* request("GET", "/v1/billing/plans"))
        assert.isFalse(after.items.some((p) => p.slug === slug))
      }).pipe(Effect.ensuring(remove))
    }))
})
