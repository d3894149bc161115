import { Either } from "effect"
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto"

/**
 * AES-256-GCM for secrets at rest: `nonce (12) || ciphertext || tag (16)`, a fresh random nonce per seal, and
 * associated data that names the row, so a ciphertext copied onto another row no longer opens.
 */
const NONCE_BYTES = 12
const TAG_BYTES = 16
export const KEY_BYTES = 32

export interface SecretsKey {
  /** A short hash of the key, stored beside each ciphertext so keys can rotate. */
  readonly id: string
  readonly key: Uint8Array
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export const keyId = (key: Uint8Array): string =>
  createHash("sha256").update("evm-billing/secrets-key-id/v1").update(key).digest("hex").slice(0, 16)

/** A key given as base64 of exactly 32 bytes; the message never quotes the value. */
export const parseSecretsKey = (encoded: string): Either.Either<SecretsKey, string> => {
  const trimmed = encoded.trim()
  if (!BASE64.test(trimmed)) return Either.left("must be base64 (e.g. `openssl rand -base64 32`)")
  const key = new Uint8Array(Buffer.from(trimmed, "base64"))
  if (key.length !== KEY_BYTES) return Either.left(`must decode to exactly ${KEY_BYTES} bytes`)
  return Either.right({ id: keyId(key), key })
}

export const seal = (key: SecretsKey, plaintext: string, aad: string): Uint8Array => {
  const nonce = randomBytes(NONCE_BYTES)
  const cipher = createCipheriv("aes-256-gcm", key.key, nonce)
  cipher.setAAD(Buffer.from(aad, "utf8"))
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]))
}

/** Fails when the blob was not sealed with this key and this associated data, or was altered. */
export const open = (key: SecretsKey, blob: Uint8Array, aad: string): Either.Either<string, "authentication_failed"> => {
  if (blob.length < NONCE_BYTES + TAG_BYTES) return Either.left("authentication_failed")
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.key, blob.subarray(0, NONCE_BYTES))
    decipher.setAAD(Buffer.from(aad, "utf8"))
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES))
    const text = Buffer.concat([decipher.update(blob.subarray(NONCE_BYTES, blob.length - TAG_BYTES)), decipher.final()])
    return Either.right(text.toString("utf8"))
  } catch {
    return Either.left("authentication_failed")
  }
}

/** What binds a webhook secret's ciphertext to its row. */
export const webhookSecretAad = (contractSlug: string, secretId: string) =>
  `evm-billing/contract_webhook_secrets/v1/${contractSlug}/${secretId}`
