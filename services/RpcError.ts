import { Data } from "effect"
import { BaseError, ExecutionRevertedError, HttpRequestError, RpcRequestError, TimeoutError } from "viem"

/** Endpoints are named by network and index: their URLs often embed API keys. */
export class RpcError extends Data.TaggedError("RpcError")<{
  readonly network: string
  readonly method: string
  readonly endpoint: number
  readonly retryable: boolean
  readonly message: string
}> {}

export class UnknownNetwork extends Data.TaggedError("UnknownNetwork")<{ readonly network: string }> {}

const RETRYABLE_STATUS = new Set([403, 408, 413, 429, 500, 502, 503, 504])
// -32005 limit exceeded, -32603 internal, -32007 provider rate limit, 429 rate limit in a 200 body.
const RETRYABLE_CODES = new Set([-1, -32005, -32603, -32007, 429])

/** The one table that decides what moves to the next endpoint: transport trouble yes, a revert never. */
export const isRetryable = (error: unknown): boolean => {
  if (!(error instanceof BaseError)) return true
  if (error.walk((e) => e instanceof ExecutionRevertedError)) return false
  if (error.walk((e) => e instanceof TimeoutError)) return true
  const http = error.walk((e) => e instanceof HttpRequestError || e instanceof RpcRequestError) as
    | HttpRequestError
    | RpcRequestError
    | null
  const code = (error.walk((e) => typeof (e as { code?: unknown }).code === "number") as { code?: number } | null)?.code
  if (code !== undefined && RETRYABLE_CODES.has(code)) return true
  if (http?.status !== undefined) return RETRYABLE_STATUS.has(http.status)
  // No HTTP status: connection refused/reset, DNS, socket closed.
  return http instanceof HttpRequestError
}

/** A message safe to log: viem's short message with any URL removed. */
export const safeMessage = (error: unknown): string => {
  const text = error instanceof BaseError ? error.shortMessage : error instanceof Error ? error.message : String(error)
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, "<url>").slice(0, 300)
}
