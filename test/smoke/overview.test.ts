/**
 * The finance_ops overview over real HTTP: every overview GET route answers a finance_ops token with a body of its
 * declared schema, amounts are exact decimal strings, and the payouts filter holds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { request, smokeUser, tokens } from "./client.ts"
import { routes } from "./routes.ts"

const overviewReads = routes.filter((r) => r.access === "finance_ops" && r.method === "GET")
const hasPayouts = routes.some((r) => r.path === "/v1/billing/overview/payouts")
const MONEY_KEYS = /^(amount|paid_amount|mrr|arr|arpu|revenue|volume)$/

/** Paths (e.g. `mrr[0].mrr`) where money is a JSON number: there must be none. */
const numericMoney = (value: unknown, path = "$"): ReadonlyArray<string> => {
  if (Array.isArray(value)) return value.flatMap((v, i) => numericMoney(v, `${path}[${i}]`))
  if (typeof value !== "object" || value === null) return []
  return Object.entries(value).flatMap(([k, v]) =>
    MONEY_KEYS.test(k) && typeof v === "number" ? [`${path}.${k}`] : numericMoney(v, `${path}.${k}`)
  )
}

describe("overview for finance_ops", () => {
  it("the API has overview routes", () => {
    assert.isAbove(overviewReads.length, 0)
  })

  for (const route of overviewReads) {
    it.effect(`GET ${route.path} answers finance_ops with its schema and exact amounts`, () =>
      Effect.gen(function*() {
        const url = route.url.replace("smoke-nobody", smokeUser)
        const res = yield* request("GET", url, { token: tokens.finance_ops })
        assert.strictEqual(res.status, 200, JSON.stringify(res.body))
        const decoded = route.decodeSuccess(res.body)
        assert.isTrue(Either.isRight(decoded), Either.isLeft(decoded) ? decoded.left.message : "")
        assert.deepStrictEqual(numericMoney(res.body), [])
      }))
  }

  it.effect.skipIf(!hasPayouts)("payouts filtered by status return only that status", () =>
    Effect.gen(function*() {
      const res = yield* request("GET", "/v1/billing/overview/payouts?status=pending", { token: tokens.finance_ops })
      assert.strictEqual(res.status, 200, JSON.stringify(res.body))
      const page = Schema.decodeUnknownSync(Schema.Struct({ items: Schema.Array(Schema.Struct({ status: Schema.String })) }))(res.body)
      assert.isTrue(page.items.every((i) => i.status === "pending"))
    }))

  it.effect.skipIf(!hasPayouts)("a bad filter is a 400 with the error shape, not a 5xx", () =>
    Effect.gen(function*() {
      const res = yield* request("GET", "/v1/billing/overview/payouts?status=nonsense", { token: tokens.finance_ops })
      assert.strictEqual(res.status, 400)
    }))

  it.effect("crypto-config is readable and never shows credentials in RPC URLs", () =>
    Effect.gen(function*() {
      const res = yield* request("GET", "/v1/billing/overview/crypto-config", { token: tokens.finance_ops })
      assert.strictEqual(res.status, 200)
      assert.notMatch(JSON.stringify(res.body), /\/\/[^/"@]+:[^/"@]+@/, "user:password@ in an RPC URL")
    }))
})
