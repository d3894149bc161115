/**
 * What to do with a JetStream message once its handler has run: a pure function of the handler's
 * `Exit`, how often the message was delivered, and a retry policy.
 *
 * | handler result                        | disposition                                             |
 * | ------------------------------------- | ------------------------------------------------------- |
 * | `Done`                                | `Ack`                                                   |
 * | `Later(delay)` (not ready yet)        | `Retry(delay)`; `DeadLetter` at `maxTotalDeliveries`    |
 * | `HandlerFailure` retryable, or defect | `Retry(backoff)`; `DeadLetter` at the `maxDeliveries`th failure |
 * | `HandlerFailure` not retryable        | `DeadLetter` at once                                    |
 * | `Undecodable`                         | `DeadLetter` at once                                    |
 * | interrupted                           | `Retry(baseDelay)` (not the message's fault)            |
 *
 * `Later` deliveries do not count toward `maxDeliveries`. JetStream 2.9 only reports the total
 * delivery count, so the caller says how many earlier deliveries of this message failed
 * (`previousFailures`); without it every earlier delivery counts as a failure.
 */
import { Cause, Data, Duration, type Effect, Exit, Option } from "effect"
import { delayAfter, type RetryPolicySettings } from "../src/domain/RetryPolicy.ts"

/** What a handler reports when it finished normally. */
export type Outcome = Data.TaggedEnum<{
  Done: {}
  /**
   * Not ready yet (e.g. too few confirmations): deliver again after `delay`, or as soon as `wake` completes (the
   * consumer keeps the message meanwhile, e.g. until the block that makes a payment deep enough).
   */
  Later: { readonly delay: Duration.Duration; readonly reason: string; readonly wake?: Effect.Effect<void> }
}>
export const Outcome = Data.taggedEnum<Outcome>()

/** A handler failure; `retryable` carries the retry decision as data. */
export class HandlerFailure extends Data.TaggedError("HandlerFailure")<{
  readonly retryable: boolean
  readonly reason: string
  readonly cause?: unknown
}> {
  static retryable(reason: string, cause?: unknown): HandlerFailure {
    return new HandlerFailure({ retryable: true, reason, cause })
  }
  static permanent(reason: string, cause?: unknown): HandlerFailure {
    return new HandlerFailure({ retryable: false, reason, cause })
  }
}

/** The payload could not be decoded: no retry can fix it. */
export class Undecodable extends Data.TaggedError("Undecodable")<{ readonly reason: string }> {}

export type Disposition = Data.TaggedEnum<{
  Ack: {}
  Retry: { readonly delay: Duration.Duration }
  DeadLetter: { readonly reason: string }
}>
export const Disposition = Data.taggedEnum<Disposition>()

export interface RetryPolicy {
  /** A retryable failure (or defect) that is the `maxDeliveries`th failed delivery dead-letters. */
  readonly maxDeliveries: number
  /** Delay after the first failure; grows by `factor` (default 2) with each further failure. */
  readonly baseDelay: Duration.DurationInput
  readonly maxDelay: Duration.DurationInput
  readonly factor?: number
  /** Each delay spread by ± this fraction of itself (default 0), still capped at `maxDelay`. */
  readonly jitter?: number
  /** Hard cap on deliveries of any kind, `Later` included. Default `DefaultMaxTotalDeliveries`. */
  readonly maxTotalDeliveries?: number
}

export const DefaultMaxTotalDeliveries = 1000

export interface Attempt {
  /** JetStream's delivery count of this delivery, from 1. */
  readonly deliveryCount: number
  /** Failed earlier deliveries of this message; defaults to `deliveryCount - 1`. */
  readonly previousFailures?: number
  /** A uniform draw from [0, 1) for the jitter; default 0.5 (the delay itself). */
  readonly random?: number
}

export type HandlerExit = Exit.Exit<Outcome, HandlerFailure | Undecodable>

/** Delay before redelivering after the `failure`th failure (from 1): `baseDelay * factor^(failure-1)`, capped, jittered. */
export const backoff = (failure: number, policy: RetryPolicy, random = 0.5): Duration.Duration =>
  Duration.millis(delayAfter({
    initial: Duration.toMillis(Duration.decode(policy.baseDelay)),
    factor: policy.factor ?? 2,
    max: Duration.toMillis(Duration.decode(policy.maxDelay)),
    jitter: policy.jitter ?? 0
  }, failure, random))

/** A consumer's policy from an operator's (services/RetryPolicies.ts). */
export const fromSettings = (p: RetryPolicySettings): RetryPolicy => ({
  maxDeliveries: p.max_attempts,
  baseDelay: Duration.millis(p.initial_delay_ms),
  maxDelay: Duration.millis(p.max_delay_ms),
  factor: p.factor,
  jitter: p.jitter
})

const describe = (defect: unknown): string => defect instanceof Error ? `${defect.name}: ${defect.message}` : String(defect)

type Classified =
  | { readonly _tag: "Success"; readonly outcome: Outcome }
  | { readonly _tag: "Permanent"; readonly reason: string }
  | { readonly _tag: "Transient"; readonly reason: string }
  | { readonly _tag: "Interrupted" }

const classify = (exit: HandlerExit): Classified => {
  if (Exit.isSuccess(exit)) return { _tag: "Success", outcome: exit.value }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error._tag === "Undecodable") return { _tag: "Permanent", reason: `undecodable: ${error.reason}` }
    return error.retryable ? { _tag: "Transient", reason: error.reason } : { _tag: "Permanent", reason: error.reason }
  }
  const defect = Cause.dieOption(exit.cause)
  if (Option.isSome(defect)) return { _tag: "Transient", reason: `defect: ${describe(defect.value)}` }
  return { _tag: "Interrupted" }
}

/** True when this exit is a failed delivery that counts toward `maxDeliveries`. */
export const countsAsFailure = (exit: HandlerExit): boolean => classify(exit)._tag === "Transient"

export const decide = (exit: HandlerExit, attempt: Attempt, policy: RetryPolicy): Disposition => {
  const cap = policy.maxTotalDeliveries ?? DefaultMaxTotalDeliveries
  const result = classify(exit)
  switch (result._tag) {
    case "Success": {
      if (result.outcome._tag === "Done") return Disposition.Ack()
      return attempt.deliveryCount >= cap
        ? Disposition.DeadLetter({
          reason: `still not ready after ${attempt.deliveryCount} deliveries: ${result.outcome.reason}`
        })
        : Disposition.Retry({ delay: result.outcome.delay })
    }
    case "Permanent":
      return Disposition.DeadLetter({ reason: result.reason })
    case "Transient": {
      const failure = (attempt.previousFailures ?? attempt.deliveryCount - 1) + 1
      return failure >= policy.maxDeliveries || attempt.deliveryCount >= cap
        ? Disposition.DeadLetter({ reason: `gave up after ${failure} failed deliveries: ${result.reason}` })
        : Disposition.Retry({ delay: backoff(failure, policy, attempt.random) })
    }
    case "Interrupted":
      return Disposition.Retry({ delay: Duration.decode(policy.baseDelay) })
  }
}
