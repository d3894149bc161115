import { Either, Schema } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"

export const Role = Schema.Literal("admin", "finance_ops")
export type Role = typeof Role.Type

export const Claims = Schema.Struct({
  // bounded: the user id becomes a NATS subject token (escaped, up to 3 bytes per byte)
  sub: Schema.NonEmptyTrimmedString.pipe(
    Schema.filter((sub) => new TextEncoder().encode(sub).byteLength <= 255 || "sub must be at most 255 bytes")
  ),
  roles: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  exp: Schema.optional(Schema.Number),
  iat: Schema.optional(Schema.Number)
})
export type Claims = typeof Claims.Type

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url")
const decodeClaims = Schema.decodeUnknownEither(Schema.parseJson(Claims))
const decodeHeader = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ alg: Schema.Literal("HS256") })))

const sign = (input: string, secret: string) => createHmac("sha256", secret).update(input).digest()

/** HS256 token with `sub`, `roles` and optional expiry. */
export const signJwt = (claims: { sub: string; roles: ReadonlyArray<string>; iat: number; exp?: number }, secret: string) => {
  const head = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`
  return `${head}.${b64url(sign(head, secret))}`
}

/** Verifies signature (constant time), algorithm and expiry; the reason never includes the token. */
export const verifyJwt = (token: string, secret: string, nowSeconds: number): Either.Either<Claims, string> => {
  const parts = token.split(".")
  if (parts.length !== 3) return Either.left("malformed token")
  const [head, body, signature] = parts as [string, string, string]
  const header = decodeHeader(Buffer.from(head, "base64url").toString("utf8"))
  if (Either.isLeft(header)) return Either.left("unsupported token algorithm")
  const expected = sign(`${head}.${body}`, secret)
  const given = Buffer.from(signature, "base64url")
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return Either.left("bad token signature")
  const claims = decodeClaims(Buffer.from(body, "base64url").toString("utf8"))
  if (Either.isLeft(claims)) return Either.left("malformed token claims")
  if (claims.right.exp !== undefined && claims.right.exp <= nowSeconds) return Either.left("token expired")
  return Either.right(claims.right)
}
