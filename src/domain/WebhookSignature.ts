import { Either } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"

/** Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. */
export const TOLERANCE_SECONDS = 5 * 60

export const signWebhook = (secret: string, id: string, timestamp: number, body: Uint8Array | string): string =>
  `v1,${createHmac("sha256", secret).update(`${id}.${timestamp}.`).update(body).digest("base64")}`

export type SignatureFailure = "missing_headers" | "bad_timestamp" | "timestamp_out_of_range" | "bad_signature"

/**
 * Checks the headers against the raw body. Several space-separated signatures are allowed (key rotation);
 * each candidate is compared in constant time.
 */
export const verifyWebhook = (args: {
  readonly secret: string
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
  const expected = Buffer.from(signWebhook(args.secret, id, ts, args.body).slice(3), "base64")
  const match = signature.split(" ").some((candidate) => {
    if (!candidate.startsWith("v1,")) return false
    const given = Buffer.from(candidate.slice(3), "base64")
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
  return match ? Either.right(undefined) : Either.left("bad_signature")
}
