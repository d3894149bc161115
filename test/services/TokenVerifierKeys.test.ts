/**
 * Asymmetric verifiers as identity providers use them: a PEM public key (algorithm pinned from the key) and a JWKS
 * document served over HTTP by a node:http server in this file, cached, refetched for an unknown kid after the
 * cooldown, bounded, and failing closed when the key set cannot be fetched. Alg confusion is refused both ways.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { TokenVerifier } from "../../services/TokenVerifier.ts"
import { signTestJwt } from "../support/jwt.ts"

const AUDIENCE = "billing"
const ISSUER = "https://id.test"

const verifierWith = (env: Record<string, string>) =>
  TokenVerifier.pipe(Effect.provide(TokenVerifier.Default.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))))

const reasonOf = (verifier: TokenVerifier, token: string) =>
  verifier.verify(token).pipe(
    Effect.map((claims) => `accepted ${claims.sub}`),
    Effect.catchTags({ InvalidToken: (e) => Effect.succeed(e.reason), TokenKeysUnavailable: () => Effect.succeed("keys unavailable") })
  )

const keyPair = (alg: "ES256" | "RS256" | "EdDSA", kid: string) =>
  Effect.promise(async () => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" }
    return { alg, kid, privateKey, jwk, pem: await exportSPKI(publicKey) }
  })
type KeyPair = Effect.Effect.Success<ReturnType<typeof keyPair>>

const mint = (key: KeyPair, sub: string, over: { kid?: string; exp?: number } = {}) =>
  Effect.promise(() => {
    const now = Math.floor(Date.now() / 1000)
    return new SignJWT({ roles: ["admin"] })
      .setProtectedHeader({ alg: key.alg, kid: over.kid ?? key.kid })
      .setSubject(sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime(over.exp ?? now + 600)
      .sign(key.privateKey)
  })

/** A JWKS endpoint whose document the test swaps; it counts the fetches. */
const jwksServer = Effect.acquireRelease(
  Effect.async<{
    url: string
    serve: (body: string, status?: number, chunked?: boolean) => void
    fetches: () => number
    close: () => void
  }>((resume) => {
    let body = "{\"keys\":[]}"
    let status = 200
    let chunked = false
    let fetches = 0
    const server = createServer((_req, res) => {
      fetches += 1
      res.writeHead(status, { "content-type": "application/json" })
      // Written in pieces without a content-length, the size is only known while reading.
      if (!chunked) return res.end(body)
      for (let i = 0; i < body.length; i += 4096) res.write(body.slice(i, i + 4096))
      return res.end()
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({
        url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        serve: (next, code = 200, inPieces = false) => {
          body = next
          status = code
          chunked = inPieces
        },
        fetches: () => fetches,
        close: () => server.close()
      }))
    })
  }),
  (server) => Effect.sync(server.close)
)
const keySet = (...jwks: ReadonlyArray<JWK>) => JSON.stringify({ keys: jwks })

describe("TokenVerifier with a JWKS URL", () => {
  it.scoped("verifies against the served key set, caches it, and fetches the rotated key for a new kid", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer
      const first = yield* keyPair("ES256", "key-1")
      const second = yield* keyPair("ES256", "key-2")
      server.serve(keySet(first.jwk))
      const verifier = yield* verifierWith({
        BILLING_AUTH_JWKS_URL: server.url,
        BILLING_AUTH_AUDIENCE: AUDIENCE,
        BILLING_AUTH_ISSUER: ISSUER,
        BILLING_AUTH_JWKS_COOLDOWN: "0 millis"
      })
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(first, "alice")), "accepted alice")
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(first, "bob")), "accepted bob")
      assert.strictEqual(server.fetches(), 1, "the key set is cached")

      // Rotation: the provider now signs with key-2, which the cached set does not hold.
      server.serve(keySet(first.jwk, second.jwk))
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(second, "carol")), "accepted carol")
      assert.strictEqual(server.fetches(), 2, "an unknown kid refetches the key set")

      // A kid nobody published: refused after one more look.
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(second, "dave", { kid: "key-3" })), "token signing key is unknown")
      // Another key claiming a published kid: the signature does not verify.
      const forger = yield* keyPair("ES256", "key-2")
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(forger, "mallory")), "bad token signature")
      // Valid signature, but the subject is a service actor.
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(second, "system:payment-processor")), "token subject is in the reserved service namespace")
    }))

  it.scoped("within the cooldown an unknown kid does not refetch", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer
      const first = yield* keyPair("RS256", "rsa-1")
      const second = yield* keyPair("RS256", "rsa-2")
      server.serve(keySet(first.jwk))
      const verifier = yield* verifierWith({ BILLING_AUTH_JWKS_URL: server.url, BILLING_AUTH_AUDIENCE: AUDIENCE, BILLING_AUTH_JWKS_COOLDOWN: "1 hour" })
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(first, "alice")), "accepted alice")
      server.serve(keySet(first.jwk, second.jwk))
      for (let i = 0; i < 3; i++) assert.strictEqual(yield* reasonOf(verifier, yield* mint(second, "bob")), "token signing key is unknown")
      assert.strictEqual(server.fetches(), 1, "attacker-chosen kids cannot make the service hammer the provider")
    }))

  it.scoped("an HS256 token is refused even when the key set publishes a symmetric key", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer
      const secret = "shared-bytes-0123456789abcdefghijkl"
      server.serve(keySet({ kty: "oct", kid: "oct-1", k: Buffer.from(secret).toString("base64url") }))
      const verifier = yield* verifierWith({ BILLING_AUTH_JWKS_URL: server.url, BILLING_AUTH_AUDIENCE: AUDIENCE })
      const token = signTestJwt({ sub: "mallory", roles: ["admin"], aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 }, secret, { kid: "oct-1" })
      assert.strictEqual(yield* reasonOf(verifier, token), "token algorithm is not accepted")
    }))

  it.scoped("an unreachable, failing or oversized key set fails closed as unavailable", () =>
    Effect.gen(function*() {
      const server = yield* jwksServer
      const key = yield* keyPair("ES256", "key-1")
      const verifier = yield* verifierWith({ BILLING_AUTH_JWKS_URL: server.url, BILLING_AUTH_AUDIENCE: AUDIENCE })
      const token = yield* mint(key, "alice")
      server.serve("oops", 500)
      assert.strictEqual(yield* reasonOf(verifier, token), "keys unavailable")
      const oversized = JSON.stringify({ keys: [key.jwk], pad: "x".repeat(70 * 1024) })
      server.serve(oversized)
      assert.strictEqual(yield* reasonOf(verifier, token), "keys unavailable")
      server.serve(oversized, 200, true)
      assert.strictEqual(yield* reasonOf(verifier, token), "keys unavailable")
      server.serve("not json")
      assert.strictEqual(yield* reasonOf(verifier, token), "keys unavailable")
      server.serve(keySet(key.jwk))
      assert.strictEqual(yield* reasonOf(verifier, token), "accepted alice")
      server.close()
      const down = yield* verifierWith({ BILLING_AUTH_JWKS_URL: server.url, BILLING_AUTH_AUDIENCE: AUDIENCE })
      assert.strictEqual(yield* reasonOf(down, token), "keys unavailable")
    }))
})

describe("TokenVerifier with a PEM public key", () => {
  it.effect("an Ed25519 key verifies EdDSA tokens only: alg confusion with the PEM as HS256 secret is refused", () =>
    Effect.gen(function*() {
      const key = yield* keyPair("EdDSA", "ed-1")
      const verifier = yield* verifierWith({ BILLING_AUTH_PUBLIC_KEY: key.pem })
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(key, "alice")), "accepted alice")
      const exp = Math.floor(Date.now() / 1000) + 60
      assert.strictEqual(yield* reasonOf(verifier, signTestJwt({ sub: "mallory", roles: ["admin"], exp }, key.pem)), "token algorithm is not accepted")
      const other = yield* keyPair("EdDSA", "ed-1")
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(other, "mallory")), "bad token signature")
      const es = yield* keyPair("ES256", "es-1")
      assert.strictEqual(yield* reasonOf(verifier, yield* mint(es, "mallory")), "token algorithm is not accepted")
      // A PEM written on one line with literal \n works too.
      const oneLine = yield* verifierWith({ BILLING_AUTH_PUBLIC_KEY: key.pem.trim().replace(/\n/g, "\\n") })
      assert.strictEqual(yield* reasonOf(oneLine, yield* mint(key, "bob")), "accepted bob")
    }))

  it.effect("RSA and P-256 keys pin RS256 and ES256; an HS256 verifier refuses asymmetric tokens", () =>
    Effect.gen(function*() {
      const rsa = yield* keyPair("RS256", "rsa-1")
      const es = yield* keyPair("ES256", "es-1")
      const rsaVerifier = yield* verifierWith({ BILLING_AUTH_PUBLIC_KEY: rsa.pem, BILLING_AUTH_AUDIENCE: AUDIENCE })
      assert.strictEqual(yield* reasonOf(rsaVerifier, yield* mint(rsa, "alice")), "accepted alice")
      assert.strictEqual(yield* reasonOf(rsaVerifier, yield* mint(es, "alice")), "token algorithm is not accepted")
      const esVerifier = yield* verifierWith({ BILLING_AUTH_PUBLIC_KEY: es.pem })
      assert.strictEqual(yield* reasonOf(esVerifier, yield* mint(es, "alice")), "accepted alice")
      const hs = yield* verifierWith({ BILLING_AUTH_JWT_SECRET: "hs-secret-0123456789abcdefghijklmn" })
      assert.strictEqual(yield* reasonOf(hs, yield* mint(es, "alice")), "token algorithm is not accepted")
    }))

  it.effect("a private key, an unreadable value or an unsupported key type is refused at start", () =>
    Effect.gen(function*() {
      const failure = (pem: string) => Effect.map(Effect.flip(verifierWith({ BILLING_AUTH_PUBLIC_KEY: pem })), String)
      const { privateKey } = yield* Effect.promise(() => generateKeyPair("ES256", { extractable: true }))
      const privatePem = yield* Effect.promise(() => exportPKCS8(privateKey))
      const refused = yield* failure(privatePem)
      assert.include(refused, "BILLING_AUTH_PUBLIC_KEY must be a PEM public key")
      assert.notInclude(refused, privatePem.split("\n")[1]!)
      assert.include(yield* failure("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"), "not a readable PEM public key")
      const p384 = yield* Effect.promise(async () => exportSPKI((await generateKeyPair("ES384", { extractable: true })).publicKey))
      assert.include(yield* failure(p384), "curve other than P-256")
    }))
})
