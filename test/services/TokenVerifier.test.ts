/**
 * The bearer token rules with the HS256 verifier, the clock driven by TestClock: exp required, nbf and leeway, issuer
 * and audience, algorithm pinning, the reserved service-actor namespace, bounded subject, roles and token size.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, TestClock } from "effect"
import { jwtVerify, SignJWT } from "jose"
import { TokenVerifier } from "../../services/TokenVerifier.ts"
import { TokenVerifierConfig } from "../../services/TokenVerifierConfig.ts"
import { withDevelopmentDefaults } from "../../src/devnet/DevelopmentConfig.ts"
import { signTestJwt, testToken } from "../support/jwt.ts"

const SECRET = "unit-test-secret-0123456789abcdefgh"
const NOW = 1_800_000_000

const verifierWith = (env: Record<string, string>) =>
  TokenVerifier.pipe(Effect.provide(TokenVerifier.Default.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))))

/** Verifies `token` at NOW (+ `later` seconds) and returns the claims or the refusal's reason. */
const check = (token: string, env: Record<string, string> = {}, later = 0) =>
  Effect.gen(function*() {
    yield* TestClock.setTime((NOW + later) * 1000)
    const verifier = yield* verifierWith({ BILLING_AUTH_JWT_SECRET: SECRET, ...env })
    return yield* verifier.verify(token).pipe(
      Effect.map((claims) => ({ ok: true as const, claims })),
      Effect.catchTag("InvalidToken", (e) => Effect.succeed({ ok: false as const, reason: e.reason }))
    )
  })

const reasonOf = (token: string, env: Record<string, string> = {}, later = 0) =>
  Effect.map(check(token, env, later), (r) => (r.ok ? "accepted" : r.reason))

const claims = (over: Record<string, unknown> = {}) => ({ sub: "user-1", roles: [], iat: NOW, exp: NOW + 600, ...over })
const sign = (over: Record<string, unknown> = {}, header: Record<string, unknown> = {}) => signTestJwt(claims(over), SECRET, header)

describe("TokenVerifier (HS256)", () => {
  it.effect("accepts a good token; unknown roles are dropped", () =>
    Effect.gen(function*() {
      const result = yield* check(sign({ roles: ["admin", "superuser", "finance_ops"] }))
      assert.deepStrictEqual(result, { ok: true, claims: { sub: "user-1", roles: ["admin", "finance_ops"] } })
    }))

  it.effect("a token minted by jose SignJWT verifies, and the test signer's tokens verify with jose itself", () =>
    Effect.gen(function*() {
      const key = new TextEncoder().encode(SECRET)
      const minted = yield* Effect.promise(() =>
        new SignJWT({ roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).setSubject("u-2").setExpirationTime(NOW + 60).sign(key)
      )
      assert.deepStrictEqual(yield* check(minted), { ok: true, claims: { sub: "u-2", roles: ["admin"] } })
      const { payload } = yield* Effect.promise(() => jwtVerify(testToken("u-3", ["finance_ops"], SECRET), key, { algorithms: ["HS256"] }))
      assert.deepStrictEqual([payload.sub, payload["roles"]], ["u-3", ["finance_ops"]])
    }))

  it.effect("exp is required; an expired token is refused", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* reasonOf(sign({ exp: undefined })), "token has no expiry (exp)")
      assert.strictEqual(yield* reasonOf(sign({ exp: "soon" })), "token expiry (exp) is invalid")
      assert.strictEqual(yield* reasonOf(sign({ exp: NOW - 120 })), "token expired")
    }))

  it.effect("nbf is honoured", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* reasonOf(sign({ nbf: NOW + 300 })), "token not yet valid")
      assert.strictEqual(yield* reasonOf(sign({ nbf: NOW + 300 }), {}, 300), "accepted")
    }))

  it.effect("the clock leeway (default 30 s, configurable) applies to exp and nbf", () =>
    Effect.gen(function*() {
      const token = sign({ exp: NOW + 10, nbf: NOW - 5 })
      assert.strictEqual(yield* reasonOf(token, {}, 35), "accepted")
      assert.strictEqual(yield* reasonOf(token, {}, 45), "token expired")
      assert.strictEqual(yield* reasonOf(token, { BILLING_AUTH_CLOCK_LEEWAY: "0 seconds" }, 10), "token expired")
      assert.strictEqual(yield* reasonOf(sign({ nbf: NOW + 20 })), "accepted")
      assert.strictEqual(yield* reasonOf(sign({ nbf: NOW + 20 }), { BILLING_AUTH_CLOCK_LEEWAY: "5 seconds" }), "token not yet valid")
    }))

  it.effect("issuer and audience are checked when configured", () =>
    Effect.gen(function*() {
      const env = { BILLING_AUTH_ISSUER: "https://id.example", BILLING_AUTH_AUDIENCE: "billing" }
      assert.strictEqual(yield* reasonOf(sign({ iss: "https://id.example", aud: ["other", "billing"] }), env), "accepted")
      assert.strictEqual(yield* reasonOf(sign({ iss: "https://evil.example", aud: "billing" }), env), "token issuer is wrong")
      assert.strictEqual(yield* reasonOf(sign({ aud: "billing" }), env), "token issuer is wrong")
      assert.strictEqual(yield* reasonOf(sign({ iss: "https://id.example", aud: "other" }), env), "token audience is wrong")
      assert.strictEqual(yield* reasonOf(sign({ iss: "https://id.example" }), env), "token audience is wrong")
      // Unconfigured, neither is required.
      assert.strictEqual(yield* reasonOf(sign({ iss: "anyone", aud: "anything" })), "accepted")
    }))

  it.effect("alg none, another algorithm, another secret and a tampered payload are refused", () =>
    Effect.gen(function*() {
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url")
      assert.strictEqual(yield* reasonOf(`${b64({ alg: "none", typ: "JWT" })}.${b64(claims())}.`), "token algorithm is not accepted")
      assert.strictEqual(yield* reasonOf(sign({}, { alg: "HS512" })), "token algorithm is not accepted")
      assert.strictEqual(yield* reasonOf(signTestJwt(claims(), "another-secret-0123456789abcdefghij")), "bad token signature")
      const [head, , signature] = sign().split(".")
      assert.strictEqual(yield* reasonOf(`${head}.${b64(claims({ roles: ["admin"] }))}.${signature}`), "bad token signature")
      assert.strictEqual(yield* reasonOf("not-a-jwt"), "malformed token")
    }))

  it.effect("no subject in the service-actor namespace, whatever its case or width", () =>
    Effect.gen(function*() {
      for (const sub of ["system:payment-processor", "system:scheduler", "SYSTEM:payment-processor", "System:anything", "ｓｙｓｔｅｍ:scheduler"]) {
        assert.strictEqual(yield* reasonOf(sign({ sub, roles: ["admin"] })), "token subject is in the reserved service namespace", sub)
      }
      assert.strictEqual(yield* reasonOf(sign({ sub: "systems:fine" })), "accepted")
    }))

  it.effect("the subject is a bounded, visible string", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* reasonOf(sign({ sub: undefined })), "token has no subject")
      assert.strictEqual(yield* reasonOf(sign({ sub: "" })), "token has no subject")
      assert.strictEqual(yield* reasonOf(sign({ sub: 42 })), "token has no subject")
      assert.strictEqual(yield* reasonOf(sign({ sub: "u".repeat(257) })), "token subject is too long")
      assert.strictEqual(yield* reasonOf(sign({ sub: "u".repeat(256) })), "accepted")
      for (const sub of ["admin\u0000", "adm\u200Bin-1", "\u202Eadmin", "line\nbreak", " admin-1"]) {
        assert.strictEqual(yield* reasonOf(sign({ sub })), "token subject has control characters or surrounding spaces", JSON.stringify(sub))
      }
    }))

  it.effect("roles must be a bounded array of strings", () =>
    Effect.gen(function*() {
      const bad = "token roles must be at most 32 short strings"
      assert.strictEqual(yield* reasonOf(sign({ roles: "admin" })), bad)
      assert.strictEqual(yield* reasonOf(sign({ roles: [1] })), bad)
      assert.strictEqual(yield* reasonOf(sign({ roles: Array.from({ length: 33 }, (_, i) => `r${i}`) })), bad)
      assert.deepStrictEqual(yield* check(sign({ roles: undefined })), { ok: true, claims: { sub: "user-1", roles: [] } })
    }))

  it.effect("a token over 8 KiB is refused before it is parsed; no reason echoes the token", () =>
    Effect.gen(function*() {
      const big = sign({ padding: "x".repeat(9000) })
      assert.strictEqual(yield* reasonOf(big), "token is too large")
      assert.strictEqual(yield* reasonOf(`${"a".repeat(9000)}`), "token is too large")
      const token = sign({ exp: NOW - 3600 })
      const reason = yield* reasonOf(token)
      for (const part of token.split(".")) assert.notInclude(reason, part)
    }))
})

describe("TokenVerifier configuration", () => {
  const failure = (env: Record<string, string>) =>
    Effect.map(Effect.exit(verifierWith(env)), (exit) => (Exit.isFailure(exit) ? String(exit.cause) : "built"))

  it.effect("none or several verifiers: refused, naming the three variables", () =>
    Effect.gen(function*() {
      const envs: ReadonlyArray<Record<string, string>> = [{}, { BILLING_AUTH_JWT_SECRET: SECRET, BILLING_AUTH_JWKS_URL: "https://id.example/jwks", BILLING_AUTH_AUDIENCE: "b" }]
      for (const env of envs) {
        const out = yield* failure(env)
        for (const name of ["BILLING_AUTH_JWT_SECRET", "BILLING_AUTH_JWKS_URL", "BILLING_AUTH_PUBLIC_KEY"]) assert.include(out, name)
      }
      assert.notInclude(yield* failure({ BILLING_AUTH_JWT_SECRET: SECRET, BILLING_AUTH_PUBLIC_KEY: "x" }), SECRET)
    }))

  it.effect("a short secret, a leeway over 5 minutes, a bad JWKS URL or a JWKS without audience are refused", () =>
    Effect.gen(function*() {
      assert.include(yield* failure({ BILLING_AUTH_JWT_SECRET: "short-0123456789" }), "at least 32 characters")
      assert.include(yield* failure({ BILLING_AUTH_JWT_SECRET: SECRET, BILLING_AUTH_CLOCK_LEEWAY: "6 minutes" }), "BILLING_AUTH_CLOCK_LEEWAY")
      assert.include(yield* failure({ BILLING_AUTH_JWT_SECRET: SECRET, BILLING_AUTH_CLOCK_LEEWAY: "soon" }), "BILLING_AUTH_CLOCK_LEEWAY")
      assert.strictEqual(yield* failure({ BILLING_AUTH_JWT_SECRET: SECRET, BILLING_AUTH_CLOCK_LEEWAY: "5 minutes" }), "built")
      const jwks = (url: string) => failure({ BILLING_AUTH_JWKS_URL: url, BILLING_AUTH_AUDIENCE: "billing" })
      assert.include(yield* jwks("http://id.example/jwks"), "must be an https URL")
      assert.include(yield* jwks("https://user:pw@id.example/jwks"), "must not carry credentials")
      assert.include(yield* jwks("not a url"), "is not a URL")
      assert.strictEqual(yield* jwks("http://127.0.0.1:9/jwks"), "built")
      assert.strictEqual(yield* jwks("http://localhost:9/jwks"), "built")
      assert.include(yield* failure({ BILLING_AUTH_JWKS_URL: "https://id.example/jwks" }), "BILLING_AUTH_AUDIENCE is required")
    }))

  it.effect("the devnet's default secret stands aside when the environment names a JWKS URL or a PEM key", () =>
    Effect.gen(function*() {
      const kindWith = (env: Record<string, string>) =>
        Effect.map(
          withDevelopmentDefaults(TokenVerifierConfig).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))),
          (settings) => settings.keys.kind
        )
      assert.strictEqual(yield* kindWith({}), "secret")
      assert.strictEqual(yield* kindWith({ BILLING_AUTH_JWKS_URL: "https://id.example/jwks", BILLING_AUTH_AUDIENCE: "billing" }), "jwks")
    }))
})
