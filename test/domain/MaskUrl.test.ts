import { assert, describe, it } from "@effect/vitest"
import { maskUrl } from "../../src/domain/MaskUrl.ts"

describe("maskUrl", () => {
  it("hides credentials, query values and key-like path segments", () => {
    assert.strictEqual(maskUrl("https://user:pa55@rpc.example.com/v1"), "https://***:***@rpc.example.com/v1")
    assert.strictEqual(maskUrl("https://eth-mainnet.g.alchemy.com/v2/AbCdEf0123456789xyz"), "https://eth-mainnet.g.alchemy.com/v2/***")
    assert.strictEqual(maskUrl("https://rpc.example.com/?apikey=s3cr3t&x=1"), "https://rpc.example.com/?apikey=***&x=***")
    assert.strictEqual(maskUrl("http://127.0.0.1:8545"), "http://127.0.0.1:8545/")
    assert.strictEqual(maskUrl("not a url"), "***")
  })
})
