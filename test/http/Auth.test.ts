/**
 * The Auth middleware over HTTP on a light HttpApi: a refused token is a 401 with the verifier's reason, a missing role
 * a 403, and a key set that cannot be fetched a 503 (fail closed, never a pass).
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import { generateKeyPair, SignJWT } from "jose"
import { AdminOnly, AuthLive, Authentication, CurrentUser } from "../../src/http/Auth.ts"
import { testToken } from "../support/jwt.ts"

const SECRET = "http-auth-test-secret-0123456789abcdef"

class Probe extends HttpApiGroup.make("probe")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Struct({ id: Schema.String })).middleware(Authentication))
  .add(HttpApiEndpoint.get("admin", "/admin").addSuccess(Schema.Struct({ id: Schema.String })).middleware(AdminOnly))
{}
const ProbeApi = HttpApi.make("probe").add(Probe)
const ProbeLive = HttpApiBuilder.group(ProbeApi, "probe", (handlers) =>
  handlers
    .handle("me", () => Effect.map(CurrentUser, (user) => ({ id: user.id })))
    .handle("admin", () => Effect.map(CurrentUser, (user) => ({ id: user.id }))))

const serverWith = (env: Record<string, string>) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(ProbeApi).pipe(Layer.provide(ProbeLive), Layer.provide(AuthLive))),
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

const get = (path: string, token?: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const request = HttpClientRequest.get(path).pipe(token === undefined ? (r) => r : HttpClientRequest.bearerToken(token))
    const res = yield* client.execute(request)
    return { status: res.status, body: yield* res.json }
  })

describe("Auth middleware", () => {
  it.scoped("401 with a reason, 403 for a missing role, 200 otherwise", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* get("/me", testToken("alice", [], SECRET)), { status: 200, body: { id: "alice" } })
      assert.deepStrictEqual(yield* get("/me"), { status: 401, body: { error: "unauthorized", message: "a bearer token is required" } })
      assert.deepStrictEqual(yield* get("/me", testToken("system:scheduler", ["admin"], SECRET)), {
        status: 401,
        body: { error: "unauthorized", message: "token subject is in the reserved service namespace" }
      })
      assert.deepStrictEqual(yield* get("/admin", testToken("alice", ["superuser"], SECRET)), {
        status: 403,
        body: { error: "forbidden", message: "role admin is required" }
      })
      assert.deepStrictEqual(yield* get("/admin", testToken("root", ["admin"], SECRET)), { status: 200, body: { id: "root" } })
    }).pipe(Effect.provide(serverWith({ BILLING_AUTH_JWT_SECRET: SECRET }))))

  it.scoped("an unreachable key set answers 503, never lets the request through", () =>
    Effect.gen(function*() {
      const { privateKey } = yield* Effect.promise(() => generateKeyPair("ES256"))
      const token = yield* Effect.promise(() =>
        new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).setSubject("alice").setAudience("billing").setExpirationTime("10m").sign(privateKey)
      )
      const res = yield* get("/me", token)
      assert.deepStrictEqual(res, { status: 503, body: { error: "not_ready", message: "token signing keys are unavailable, try again" } })
    }).pipe(Effect.provide(serverWith({ BILLING_AUTH_JWKS_URL: "http://127.0.0.1:9/jwks.json", BILLING_AUTH_AUDIENCE: "billing" }))))
})
