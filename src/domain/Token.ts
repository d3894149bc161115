/**
 * What a verified bearer token may say: who (`sub`, never a service actor) and which billing roles. Everything is
 * bounded, and roles this service does not know are dropped rather than failing a token an identity provider issued.
 */
import { Clock, Duration, Effect, Either, Option, Redacted, Schema } from "effect"
import { SignJWT } from "jose"
import { isServiceActor } from "./Actor.ts"

export const Role = Schema.Literal("admin", "finance_ops")
export type Role = typeof Role.Type
export const isRole = Schema.is(Role)

export interface Claims {
  readonly sub: string
  readonly roles: ReadonlyArray<Role>
}

/** Bearer tokens longer than this are refused before they are parsed. */
export const MAX_TOKEN_LENGTH = 8 * 1024
const MAX_SUBJECT_LENGTH = 256
const MAX_ROLES = 32

const decodeRoles = Schema.decodeUnknownEither(Schema.Array(Schema.String.pipe(Schema.maxLength(64))).pipe(Schema.maxItems(MAX_ROLES)))
// Control and format characters (bidi overrides, zero-width) would let a subject look like another in the audit trail.
const HIDDEN = /[\p{Cc}\p{Cf}]/u

/** Checks a signature-verified payload; the reason is short and never echoes the token or its values. */
export const checkClaims = (payload: Readonly<Record<string, unknown>>): Either.Either<Claims, string> => {
  const sub = payload["sub"]
  if (typeof sub !== "string" || sub.trim() === "") return Either.left("token has no subject")
  if (sub.length > MAX_SUBJECT_LENGTH) return Either.left("token subject is too long")
  if (HIDDEN.test(sub) || sub.trim() !== sub) return Either.left("token subject has control characters or surrounding spaces")
  if (isServiceActor(sub)) return Either.left("token subject is in the reserved service namespace")
  const roles = payload["roles"] === undefined ? Either.right([]) : decodeRoles(payload["roles"])
  if (Either.isLeft(roles)) return Either.left(`token roles must be at most ${MAX_ROLES} short strings`)
  return Either.right({ sub, roles: roles.right.filter(isRole) })
}

export interface Mint {
  readonly sub: string
  readonly roles: ReadonlyArray<Role>
  readonly ttl: Duration.Duration
  readonly issuer: Option.Option<string>
  readonly audience: Option.Option<string>
}

/** An HS256 token as `evm-billing token` and e2e hand out: signed by jose, `exp` always set. */
export const signToken = (mint: Mint, secret: Redacted.Redacted) =>
  Effect.gen(function*() {
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const jwt = new SignJWT({ roles: [...mint.roles] })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(mint.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + Math.max(1, Math.floor(Duration.toSeconds(mint.ttl))))
    if (Option.isSome(mint.issuer)) jwt.setIssuer(mint.issuer.value)
    if (Option.isSome(mint.audience)) jwt.setAudience(mint.audience.value)
    const key = new TextEncoder().encode(Redacted.value(secret))
    // HMAC over a valid key cannot fail: a rejection is a defect.
    return yield* Effect.promise(() => jwt.sign(key))
  })
