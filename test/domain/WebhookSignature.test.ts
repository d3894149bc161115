import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { signWebhook, verifyWebhook } from "../../src/domain/WebhookSignature.ts"

const body = new TextEncoder().encode('{"type":"payment.minted"}')
const now = 1_800_000_000

const check = (over: Partial<Parameters<typeof verifyWebhook>[0]>) =>
  verifyWebhook({
    secret: "s3cret",
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

  it("rejects a wrong key, a changed body, a changed id and missing headers", () => {
    assert.deepStrictEqual(check({ secret: "other" }), Either.left("bad_signature"))
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
