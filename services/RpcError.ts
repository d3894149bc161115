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

const RANGE_REFUSAL = /block range|range (is )?too (large|wide)|more than \d+ (results|logs)|too many (results|logs)|response size|exceeds? (the )?(max|limit)|max(imum)? block range/i

/**
 * A provider refusing an `eth_getLogs` range (too many results, range too wide): the caller must split the range;
 * another endpoint or a retry would only be refused again, and the endpoint is healthy.
 */
export const isRangeRefusal = (error: unknown): boolean => {
  const texts = error instanceof BaseError
    ? [error.shortMessage, error.details, ...(error.metaMessages ?? [])]
    : [error instanceof Error ? error.message : String(error)]
  return texts.some((t) => typeof t === "string" && RANGE_REFUSAL.test(t))
}

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

/**
 * The bench: how one endpoint is doing. `benchedUntil` is Clock time in epoch millis; 0 = not benched.
 * `consecutiveFailures` counts failed probes since the last success.
 */
export interface EndpointHealth {
  readonly consecutiveFailures: number
  readonly benchedUntil: number
  /** Not yet proven: it must answer `eth_chainId` with the network's chain id before it serves a call. */
  readonly unproven?: boolean
  /** Its last probe proved it untrustworthy (another chain, or outside the endpoint policy): never a last resort. */
  readonly refused?: boolean
}

export const healthyEndpoint: EndpointHealth = { consecutiveFailures: 0, benchedUntil: 0 }
/** A new endpoint: probed before anything else is sent to it. */
export const unprovenEndpoint: EndpointHealth = { consecutiveFailures: 0, benchedUntil: 0, unproven: true }

/** Trusted for calls without a probe: proven, and no failure since. A failure means a reconnect, so a new proof. */
export const isTrusted = (health: EndpointHealth): boolean => health.consecutiveFailures === 0 && health.unproven !== true

export interface BenchPolicy {
  /** Bench time after the first failure; it doubles with each further failed probe. */
  readonly cooldownMillis: number
  readonly maxCooldownMillis: number
}

export const isBenched = (health: EndpointHealth, now: number): boolean => health.benchedUntil > now

/** Bench time after `failures` consecutive failed probes: base · 2^(failures-1), capped. */
export const cooldownMillis = (policy: BenchPolicy, failures: number): number =>
  failures <= 0
    ? 0
    : Math.min(Math.max(policy.maxCooldownMillis, policy.cooldownMillis), policy.cooldownMillis * 2 ** (failures - 1))

/**
 * Endpoint indexes in the order a call should try them: endpoints that are not benched in priority
 * order, then benched ones (a last resort), soonest back first; a refused one waits out its bench. When the primary's bench ends it
 * leads again: the next call is its recovery probe.
 */
export const endpointOrder = (health: ReadonlyArray<EndpointHealth>, now: number): ReadonlyArray<number> => {
  const indexes = health.map((_, i) => i)
  const ready = indexes.filter((i) => !isBenched(health[i]!, now))
  const benched = indexes.filter((i) => isBenched(health[i]!, now) && health[i]!.refused !== true)
    .sort((a, b) => health[a]!.benchedUntil - health[b]!.benchedUntil || a - b)
  return [...ready, ...benched]
}

/**
 * A retryable failure benches the endpoint. A failure while it is already benched (a concurrent call
 * that was in flight, or a last-resort try) changes nothing: the bench grows with failed probes, not
 * with traffic.
 */
export const recordFailure = (health: EndpointHealth, now: number, policy: BenchPolicy): EndpointHealth => {
  if (isBenched(health, now)) return health
  const consecutiveFailures = health.consecutiveFailures + 1
  return { consecutiveFailures, benchedUntil: now + cooldownMillis(policy, consecutiveFailures) }
}


/** A probe that proved the endpoint untrustworthy: benched like a failure and out of rotation until the bench ends. */
export const recordRefusal = (health: EndpointHealth, now: number, policy: BenchPolicy): EndpointHealth => ({
  ...recordFailure(health, now, policy),
  refused: true
})
