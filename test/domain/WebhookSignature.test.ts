import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { randomBytes } from "node:crypto"
import { Webhook } from "standardwebhooks"
import { signWebhook, verifyWebhook, webhookKey, webhookKeyOrText } from "../../src/domain/WebhookSignature.ts"

const body = new TextEncoder().encode('{"type":"payment.minted"}')
const now = 1_800_000_000
const key = (secret: string) => webhookKeyOrText(secret)

const check = (over: Partial<Parameters<typeof verifyWebhook>[0]>) =>
  verifyWebhook({
    keys: [key("s3cret")],
    id: "msg_1",
    timestamp: String(now),
    signature: signWebhook("s3cret", "msg_1", now, body),
    body,
    nowSeconds: now,
    ...over
  })

describe("webhook signatures", () => {
  it("accepts a valid signature, also among several (key rotation)", () => {
    assert.isTrue(Either.isRight(check({})))
    const rotated = `${signWebhook("old", "msg_1", now, body)} ${signWebhook("s3cret", "msg_1", now, body)}`
    assert.isTrue(Either.isRight(check({ signature: rotated })))
  })

  it("accepts a signature made with any of the contract's keys, and none made with another", () => {
    const keys = [key("first-secret"), key("second-secret")]
    assert.isTrue(Either.isRight(check({ keys, signature: signWebhook("second-secret", "msg_1", now, body) })))
    assert.isTrue(Either.isRight(check({ keys, signature: signWebhook("first-secret", "msg_1", now, body) })))
    assert.deepStrictEqual(check({ keys, signature: signWebhook("third-secret", "msg_1", now, body) }), Either.left("bad_signature"))
    assert.deepStrictEqual(check({ keys: [] }), Either.left("bad_signature"))
  })

  it("rejects a wrong key, a changed body, a changed id and missing headers", () => {
    assert.deepStrictEqual(check({ keys: [key("other")] }), Either.left("bad_signature"))
    assert.deepStrictEqual(check({ body: new TextEncoder().encode("{}") }), Either.left("bad_signature"))
    assert.deepStrictEqual(check({ id: "msg_2" }), Either.left("bad_signature"))
    assert.deepStrictEqual(check({ signature: undefined }), Either.left("missing_headers"))
    assert.deepStrictEqual(check({ signature: "v2,abc" }), Either.left("bad_signature"))
  })

  it("rejects timestamps more than five minutes off, either way", () => {
    assert.isTrue(Either.isRight(check({ nowSeconds: now + 300 })))
    assert.deepStrictEqual(check({ nowSeconds: now + 301 }), Either.left("timestamp_out_of_range"))
    assert.deepStrictEqual(check({ nowSeconds: now - 301 }), Either.left("timestamp_out_of_range"))
    assert.deepStrictEqual(check({ timestamp: "12abc" }), Either.left("bad_timestamp"))
  })
})

describe("whsec_ secrets (Standard Webhooks)", () => {
  const raw = randomBytes(32)
  const whsec = `whsec_${raw.toString("base64")}`

  it("a whsec_ secret is its base64-decoded key; any other secret is its UTF-8 text", () => {
    assert.deepStrictEqual(webhookKey(whsec), Either.right(new Uint8Array(raw)))
    assert.deepStrictEqual(webhookKey("plain-secret-0123456789"), Either.right(new TextEncoder().encode("plain-secret-0123456789")))
  })

  it("a whsec_ secret that is not base64, or shorter than 24 bytes, is refused", () => {
    assert.isTrue(Either.isLeft(webhookKey("whsec_not*base64*at*all")))
    assert.isTrue(Either.isLeft(webhookKey(`whsec_${randomBytes(16).toString("base64")}`)))
    assert.isTrue(Either.isLeft(webhookKey(`whsec_${raw.toString("base64").slice(0, -1)}`)))
  })

  it("a signature made by the official standardwebhooks library verifies with ours", () => {
    const payload = '{"type":"payment.minted","contract":"pass"}'
    const timestamp = new Date(now * 1000)
    const signature = new Webhook(whsec).sign("msg_lib", timestamp, payload)
    const ours = verifyWebhook({
      keys: [key(whsec)],
      id: "msg_lib",
      timestamp: String(now),
      signature,
      body: new TextEncoder().encode(payload),
      nowSeconds: now
    })
    assert.isTrue(Either.isRight(ours))
    // The same string used as raw text (the old behaviour) does not verify it.
    const asText = verifyWebhook({ keys: [new TextEncoder().encode(whsec)], id: "msg_lib", timestamp: String(now), signature, body: new TextEncoder().encode(payload), nowSeconds: now })
    assert.deepStrictEqual(asText, Either.left("bad_signature"))
  })

  it("a signature made by ours verifies with the official library", () => {
    const payload = '{"type":"payment.minted","contract":"pass"}'
    const id = "msg_ours"
    const timestamp = Math.floor(Date.now() / 1000)
    const headers = { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signWebhook(whsec, id, timestamp, payload) }
    assert.deepStrictEqual(new Webhook(whsec).verify(payload, headers), JSON.parse(payload))
    const wrong = `whsec_${randomBytes(32).toString("base64")}`
    assert.throws(() => new Webhook(wrong).verify(payload, headers))
  })
})
