import { Either } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"

/**
 * Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. A `whsec_<base64>` secret is the
 * key's base64 (as the specification and its official libraries read it); any other secret is used as UTF-8 text.
 */
export const TOLERANCE_SECONDS = 5 * 60
export const WHSEC_PREFIX = "whsec_"
/** The specification's lower bound for a `whsec_` key. */
export const MIN_WHSEC_BYTES = 24

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** The HMAC key of a secret; a `whsec_` secret that is not canonical base64 of at least 24 bytes is refused. */
export const webhookKey = (secret: string): Either.Either<Uint8Array, string> => {
  if (!secret.startsWith(WHSEC_PREFIX)) return Either.right(new TextEncoder().encode(secret))
  const encoded = secret.slice(WHSEC_PREFIX.length)
  if (!BASE64.test(encoded)) return Either.left("a whsec_ secret must be base64 after the prefix")
  const key = Buffer.from(encoded, "base64")
  if (key.length < MIN_WHSEC_BYTES) return Either.left(`a whsec_ secret must decode to at least ${MIN_WHSEC_BYTES} bytes`)
  return Either.right(new Uint8Array(key))
}

/** Key bytes, or the secret's text when it is not a valid `whsec_` (what such a secret meant before decoding). */
export const webhookKeyOrText = (secret: string): Uint8Array =>
  Either.getOrElse(webhookKey(secret), () => new TextEncoder().encode(secret))

const hmac = (key: Uint8Array, id: string, timestamp: number, body: Uint8Array | string): Buffer =>
  createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest()

export const signWebhook = (secret: string | Uint8Array, id: string, timestamp: number, body: Uint8Array | string): string =>
  `v1,${hmac(typeof secret === "string" ? webhookKeyOrText(secret) : secret, id, timestamp, body).toString("base64")}`

export type SignatureFailure = "missing_headers" | "bad_timestamp" | "timestamp_out_of_range" | "bad_signature"

/**
 * Checks the headers against the raw body with each key (a contract's active secrets overlap during rotation).
 * Several space-separated signatures are allowed too; every comparison is constant-time.
 */
export const verifyWebhook = (args: {
  readonly keys: ReadonlyArray<Uint8Array>
  readonly id: string | undefined
  readonly timestamp: string | undefined
  readonly signature: string | undefined
  readonly body: Uint8Array
  readonly nowSeconds: number
}): Either.Either<void, SignatureFailure> => {
  const { id, signature, timestamp } = args
  if (!id || !timestamp || !signature) return Either.left("missing_headers")
  if (!/^[0-9]{1,12}$/.test(timestamp)) return Either.left("bad_timestamp")
  const ts = Number(timestamp)
  if (Math.abs(args.nowSeconds - ts) > TOLERANCE_SECONDS) return Either.left("timestamp_out_of_range")
  const given = signature.split(" ").flatMap((candidate) =>
    // Canonical base64 only: Buffer.from skips junk, so a lenient read would accept many spellings of one signature.
    candidate.startsWith("v1,") && BASE64.test(candidate.slice(3)) ? [Buffer.from(candidate.slice(3), "base64")] : []
  )
  let match = false
  // No early exit: the work does not depend on which key matched.
  for (const key of args.keys) {
    const expected = hmac(key, id, ts, args.body)
    for (const g of given) if (g.length === expected.length && timingSafeEqual(g, expected)) match = true
  }
  return match ? Either.right(undefined) : Either.left("bad_signature")
}
