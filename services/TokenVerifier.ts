/**
 * Bearer token verification through jose, with the algorithm pinned by the configured key (never by the token), `exp`
 * required and issuer/audience checked when configured. Rejections carry a short reason and nothing of the token.
 */
import { Clock, Data, Duration, Effect, Either, Option, Redacted } from "effect"
import { createRemoteJWKSet, customFetch, errors, importSPKI, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from "jose"
import { maskUrl } from "../src/domain/MaskUrl.ts"
import { checkClaims, type Claims, MAX_TOKEN_LENGTH } from "../src/domain/Token.ts"
import { JWKS_ALGORITHMS, type KeySource, TokenVerifierConfig } from "./TokenVerifierConfig.ts"

/** The token is refused (401). */
export class InvalidToken extends Data.TaggedError("InvalidToken")<{ readonly reason: string }> {}

/** The identity provider's key set could not be fetched, so no token can be judged (503, fail closed). */
export class TokenKeysUnavailable extends Data.TaggedError("TokenKeysUnavailable")<{ readonly reason: string }> {}

/** Marks key-set fetch failures inside jose's resolver, so they are not mistaken for a bad token. */
class KeySetFailure extends Error {}

const MAX_JWKS_BYTES = 64 * 1024

/** fetch with the JWKS document bounded: a misbehaving endpoint cannot make every request buffer megabytes. */
const boundedFetch = async (url: string, init: RequestInit): Promise<Response> => {
  const res = await fetch(url, init)
  if (Number(res.headers.get("content-length") ?? 0) > MAX_JWKS_BYTES) throw new KeySetFailure("JWKS document over 64 KiB")
  const chunks: Array<Uint8Array> = []
  let size = 0
  if (res.body !== null) {
    for await (const chunk of res.body) {
      size += chunk.byteLength
      if (size > MAX_JWKS_BYTES) throw new KeySetFailure("JWKS document over 64 KiB")
      chunks.push(chunk)
    }
  }
  return new Response(Buffer.concat(chunks), { status: res.status, headers: res.headers })
}

const resolveKeys = (keys: KeySource) =>
  Effect.gen(function*() {
    switch (keys.kind) {
      case "secret":
        return { key: new TextEncoder().encode(Redacted.value(keys.secret)), algorithms: ["HS256"] } as const
      case "pem":
        return { key: yield* Effect.promise(() => importSPKI(keys.pem, keys.algorithm)), algorithms: [keys.algorithm] } as const
      case "jwks": {
        const remote = createRemoteJWKSet(keys.url, {
          timeoutDuration: Math.floor(Duration.toMillis(keys.timeout)),
          cooldownDuration: Duration.toMillis(keys.cooldown),
          [customFetch]: boundedFetch
        })
        const where = maskUrl(keys.url.href)
        const key: JWTVerifyGetKey = (header, token) =>
          remote(header, token).catch((e: unknown) => {
            // An unknown or ambiguous kid is the token's fault; anything else is the key set's.
            if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) throw e
            // jose's and fetch's messages are fixed texts (no token, no key material).
            throw new KeySetFailure(`${where}: ${e instanceof Error ? e.message.slice(0, 200) : "unknown failure"}`)
          })
        return { key, algorithms: [...JWKS_ALGORITHMS] } as const
      }
    }
  })

/** A jose rejection as a short reason; the key set's own failures are told apart. */
const classify = (e: unknown): InvalidToken | TokenKeysUnavailable => {
  if (e instanceof KeySetFailure) return new TokenKeysUnavailable({ reason: e.message })
  const reason = (text: string) => new InvalidToken({ reason: text })
  if (e instanceof errors.JWTExpired) return reason("token expired")
  if (e instanceof errors.JWTClaimValidationFailed) {
    switch (e.claim) {
      case "exp":
        return reason(e.reason === "missing" ? "token has no expiry (exp)" : "token expiry (exp) is invalid")
      case "nbf":
        return reason("token not yet valid")
      case "iss":
        return reason("token issuer is wrong")
      case "aud":
        return reason("token audience is wrong")
      default:
        return reason("token claims are invalid")
    }
  }
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return reason("token algorithm is not accepted")
  if (e instanceof errors.JWSSignatureVerificationFailed) return reason("bad token signature")
  if (e instanceof errors.JWKSNoMatchingKey) return reason("token signing key is unknown")
  if (e instanceof errors.JWKSMultipleMatchingKeys) return reason("token signing key is ambiguous")
  return reason("malformed token")
}

export class TokenVerifier extends Effect.Service<TokenVerifier>()("billing/TokenVerifier", {
  effect: Effect.gen(function*() {
    const settings = yield* TokenVerifierConfig
    const { algorithms, key } = yield* resolveKeys(settings.keys)
    const options: JWTVerifyOptions = {
      algorithms: [...algorithms],
      requiredClaims: ["exp"],
      clockTolerance: Duration.toSeconds(settings.leeway),
      ...Option.match(settings.issuer, { onNone: () => ({}), onSome: (issuer) => ({ issuer }) }),
      ...Option.match(settings.audience, { onNone: () => ({}), onSome: (audience) => ({ audience }) })
    }

    const verify = Effect.fn("TokenVerifier.verify")(function*(token: string) {
      if (token.length > MAX_TOKEN_LENGTH) return yield* new InvalidToken({ reason: "token is too large" })
      const currentDate = new Date(yield* Clock.currentTimeMillis)
      const { payload } = yield* Effect.tryPromise({ try: () => jwtVerify(token, key, { ...options, currentDate }), catch: classify })
      return yield* Either.match(checkClaims(payload), {
        onLeft: (reason) => Effect.fail(new InvalidToken({ reason })),
        onRight: (claims): Effect.Effect<Claims> => Effect.succeed(claims)
      })
    }, Effect.tapErrorTag("TokenKeysUnavailable", (e) => Effect.logWarning("token signing keys unavailable", e.reason)))

    return { verify } as const
  })
}) {}
