/**
 * The allow/deny matrix: every route of `Api` for anonymous, user, admin and finance_ops. Public routes answer 2xx to
 * everyone; user routes 401 without a token; admin routes 401/403 unless admin; overview routes 401/403 unless
 * finance_ops (admin does not imply it); the webhook 401 without a signature, whatever the bearer token.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { signTestJwt } from "../support/jwt.ts"
import { ErrorBody, request, ROLES, secret, sign, smokeUser, tokens } from "./client.ts"
import { expected, HARMLESS_BODY, routes } from "./routes.ts"

const STATUS = { unauthorized: 401, forbidden: 403 } as const

describe("allow/deny matrix", () => {
  it("the API definition has routes of every kind", () => {
    const kinds = new Set(routes.map((r) => r.access))
    for (const kind of ["public", "user", "admin", "finance_ops", "signed"] as const) assert.isTrue(kinds.has(kind), `no ${kind} route`)
  })

  for (const route of routes) {
    for (const role of ROLES) {
      const want = expected(route, role)
      it.effect(`${route.method} ${route.path} as ${role} → ${want}`, () =>
        Effect.gen(function*() {
          const res = yield* request(route.method, route.url, {
            token: tokens[role],
            ...(route.method === "GET" || route.method === "DELETE" ? {} : { body: HARMLESS_BODY })
          })
          const seen = `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`
          assert.isBelow(res.status, 500, seen)
          switch (want) {
            case "ok":
              assert.isTrue(res.status >= 200 && res.status < 300, seen)
              assert.isTrue(Either.isRight(route.decodeSuccess(res.body)), `body does not match the declared schema: ${seen}`)
              break
            case "allowed":
              assert.notInclude([401, 403], res.status, seen)
              break
            default:
              assert.strictEqual(res.status, STATUS[want], seen)
              assert.isTrue(Schema.is(ErrorBody)(res.body), `error body: ${seen}`)
          }
        }))
    }
  }

  it.effect("a token signed with another key, or expired, is refused on every protected route", () =>
    Effect.gen(function*() {
      const forged = sign(smokeUser, ["admin", "finance_ops"], "not-the-server-secret-0123456789")
      const expired = signTestJwt({ sub: smokeUser, roles: ["admin", "finance_ops"], iat: 1_600_000_000, exp: 1_600_000_060 }, secret)
      for (const route of routes.filter((r) => r.access !== "public" && r.access !== "signed")) {
        for (const token of [forged, expired, "not-a-jwt"]) {
          const res = yield* request(route.method, route.url, { token })
          assert.strictEqual(res.status, 401, `${route.method} ${route.path}: ${res.status}`)
        }
      }
    }))

  it.effect("docs and the OpenAPI document are public", () =>
    Effect.gen(function*() {
      const docs = yield* request("GET", "/docs")
      assert.strictEqual(docs.status, 200)
      assert.include(String(docs.body), '<script src="/docs/scalar.js">')
      const script = yield* request("GET", "/docs/scalar.js")
      assert.strictEqual(script.status, 200)
      assert.include(script.contentType, "application/javascript")
      assert.isAbove(String(script.body).length, 1_000_000, "Scalar's standalone script")
      const openapi = yield* request("GET", "/openapi.json")
      assert.strictEqual(openapi.status, 200)
      const text = JSON.stringify(openapi.body)
      for (const route of routes) assert.include(text, route.path.replace(/:([A-Za-z_]+)/g, "{$1}"), `${route.path} missing from /openapi.json`)
    }))
})
