import { Schema } from "effect"

/**
 * The retry policies operators tune live: the two payment-processor consumers, the outbox relay and RPC calls.
 * `max_attempts` is deliveries for a consumer (the last failure dead-letters), refused publishes of one row for the
 * outbox (then it is dead-lettered), and tries of one call across a network's endpoints for RPC.
 */
export const RetryPolicyName = Schema.Literal("webhooks", "chain-events", "outbox", "rpc")
export type RetryPolicyName = typeof RetryPolicyName.Type
export const RetryPolicyNames: ReadonlyArray<RetryPolicyName> = RetryPolicyName.literals

/** Delay after the n-th failure: `initial * factor^(n-1)`, capped at `max_delay`, then spread by ± `jitter` of itself. */
export const RetryPolicySettings = Schema.Struct({
  initial_delay_ms: Schema.Int.pipe(Schema.between(1, 3_600_000)).annotations({ description: "1 ms to 1 hour" }),
  factor: Schema.Number.pipe(Schema.between(1, 10)).annotations({ description: "growth per failure, 1 (constant) to 10" }),
  max_delay_ms: Schema.Int.pipe(Schema.between(1, 86_400_000)).annotations({ description: "1 ms to 1 day, not below initial_delay_ms" }),
  max_attempts: Schema.Int.pipe(Schema.between(1, 1000)),
  jitter: Schema.Number.pipe(Schema.between(0, 1)).annotations({ description: "0 (none) to 1 (a delay anywhere from 0 to twice itself)" })
}).pipe(Schema.filter((p) => p.max_delay_ms >= p.initial_delay_ms || "max_delay_ms must not be below initial_delay_ms"))
export type RetryPolicySettings = typeof RetryPolicySettings.Type

export const RetryPolicyView = Schema.Struct({
  name: RetryPolicyName,
  ...RetryPolicySettings.from.fields,
  /** `environment`: the BILLING_* defaults; `stored`: set by an operator (PUT or `evm-billing retry-policy set`). */
  source: Schema.Literal("environment", "stored"),
  updated_at: Schema.NullOr(Schema.String),
  updated_by: Schema.NullOr(Schema.String)
})
export type RetryPolicyView = typeof RetryPolicyView.Type

/**
 * Milliseconds to wait after the `failure`th failure (from 1): `initial * factor^(failure-1)`, capped at `max`,
 * spread by ± `jitter` of itself with `random` (a draw from [0, 1); 0.5 is the delay itself), never above `max`.
 */
export const delayAfter = (
  p: { readonly initial: number; readonly factor: number; readonly max: number; readonly jitter: number },
  failure: number,
  random: number
): number => {
  const grown = Math.min(p.initial * p.factor ** Math.min(Math.max(failure - 1, 0), 60), p.max)
  return Math.min(Math.round(grown * (1 + p.jitter * (2 * random - 1))), p.max)
}
