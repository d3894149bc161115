import { assert, describe, it } from "@effect/vitest"
import { BlockNotFoundError, ExecutionRevertedError, HttpRequestError, RpcRequestError } from "viem"
import { isRangeRefusal, isRetryable, safeMessage } from "../../services/RpcError.ts"

const rpcError = (code: number, message: string) =>
  new RpcRequestError({ body: { method: "eth_getLogs" }, error: { code, message }, url: "https://rpc.example.com/v2/SeCrEtKeY1234567890" })

describe("the RPC error table", () => {
  it("a refused log range is retryable transport-wise but marked as a range refusal (split, do not fail over)", () => {
    const refused = rpcError(-32005, "query returned more than 10000 results")
    assert.isTrue(isRetryable(refused))
    assert.isTrue(isRangeRefusal(refused))
    assert.isTrue(isRangeRefusal(rpcError(-32602, "block range is too wide")))
    assert.isTrue(isRangeRefusal(rpcError(-32000, "exceed maximum block range: 2000")))
  })

  it("rate limits and outages are not range refusals", () => {
    assert.isFalse(isRangeRefusal(rpcError(429, "Too Many Requests")))
    assert.isFalse(isRangeRefusal(rpcError(-32005, "request rate limit exceeded")))
    assert.isFalse(isRangeRefusal(new HttpRequestError({ url: "https://rpc.example.com", status: 503, details: "Service Unavailable" })))
    assert.isTrue(isRetryable(new HttpRequestError({ url: "https://rpc.example.com", status: 503 })))
  })

  it("a missing block and a revert fail at once: retrying them inside a confirmation's transaction would hold its locks", () => {
    assert.isFalse(isRetryable(new BlockNotFoundError({ blockNumber: 716n })))
    assert.isFalse(isRetryable(new ExecutionRevertedError({ message: "execution reverted" })))
  })

  it("messages never carry the endpoint URL", () => {
    assert.notInclude(safeMessage(rpcError(-32005, "limit exceeded")), "SeCrEtKeY")
  })
})
