import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { randomBytes } from "node:crypto"
import { open, parseSecretsKey, seal, webhookSecretAad } from "../../src/domain/SecretBox.ts"

const keyOf = (bytes: Buffer) => Either.getOrThrow(parseSecretsKey(bytes.toString("base64")))

describe("secrets at rest (AES-256-GCM)", () => {
  const key = keyOf(randomBytes(32))
  const aad = webhookSecretAad("pass", "2f1d8a52-6f0e-4c61-9d9f-0b0c1c2d3e4f")

  it("round-trips, with a fresh nonce each time and no plaintext in the ciphertext", () => {
    const a = seal(key, "the-webhook-secret-0123", aad)
    const b = seal(key, "the-webhook-secret-0123", aad)
    assert.notDeepEqual(a, b)
    assert.notInclude(Buffer.from(a).toString("latin1"), "the-webhook-secret")
    assert.deepStrictEqual(open(key, a, aad), Either.right("the-webhook-secret-0123"))
  })

  it("a ciphertext moved to another row, altered, or opened with another key does not open", () => {
    const blob = seal(key, "the-webhook-secret-0123", aad)
    assert.isTrue(Either.isLeft(open(key, blob, webhookSecretAad("pass", "00000000-0000-0000-0000-000000000000"))))
    assert.isTrue(Either.isLeft(open(key, blob, webhookSecretAad("other", "2f1d8a52-6f0e-4c61-9d9f-0b0c1c2d3e4f"))))
    const altered = new Uint8Array(blob)
    altered[14] = altered[14]! ^ 1
    assert.isTrue(Either.isLeft(open(key, altered, aad)))
    assert.isTrue(Either.isLeft(open(keyOf(randomBytes(32)), blob, aad)))
    assert.isTrue(Either.isLeft(open(key, blob.subarray(0, 20), aad)))
  })

  it("the key must be base64 of exactly 32 bytes; its id is a short hash that differs per key", () => {
    assert.isTrue(Either.isLeft(parseSecretsKey(randomBytes(16).toString("base64"))))
    assert.isTrue(Either.isLeft(parseSecretsKey("not base64 at all!")))
    assert.isTrue(Either.isLeft(parseSecretsKey(randomBytes(32).toString("hex"))))
    const other = keyOf(randomBytes(32))
    assert.strictEqual(key.id.length, 16)
    assert.notStrictEqual(key.id, other.id)
  })
})
