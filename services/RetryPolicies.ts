/**
 * The retry policies in force in this process. Defaults come from the environment (the BILLING_* variables below,
 * checked against the same bounds as an operator's change); `replace` swaps them for what PostgreSQL holds
 * (services/RetryPolicyStore.ts, on every instance within seconds of a change). Callers read `current` each time they
 * decide, so a change applies to the next retry without a restart.
 */
import { Config, Duration, Effect, Metric, Ref, Schedule } from "effect"
import { delayAfter, type RetryPolicyName, RetryPolicyNames, type RetryPolicySettings } from "../src/domain/RetryPolicy.ts"
import { durationBetween, intBetween } from "./Settings.ts"

export type RetryPolicies = Readonly<Record<RetryPolicyName, RetryPolicySettings>>

/** A delay variable in whole milliseconds, refused at start outside [min, max] as an operator's change would be. */
const ms = (name: string, fallback: Duration.DurationInput, max: Duration.DurationInput) =>
  durationBetween(name, fallback, "1 millis", max).pipe(Config.map((d) => Math.round(Duration.toMillis(d))))

const settings = (
  fields: {
    readonly initial: readonly [string, Duration.DurationInput]
    readonly max: readonly [string, Duration.DurationInput]
    readonly attempts: readonly [string, number]
    readonly factor: number
    readonly jitter: number
  }
): Config.Config<RetryPolicySettings> =>
  Config.all({
    initial_delay_ms: ms(fields.initial[0], fields.initial[1], "1 hour"),
    max_delay_ms: ms(fields.max[0], fields.max[1], "1 day"),
    max_attempts: intBetween(fields.attempts[0], fields.attempts[1], 1, 1000)
  }).pipe(
    Config.validate({
      message: `${fields.max[0]} must not be below ${fields.initial[0]}`,
      validation: (p) => p.max_delay_ms >= p.initial_delay_ms
    }),
    Config.map((p) => ({ ...p, factor: fields.factor, jitter: fields.jitter }))
  )

const processor = settings({
  initial: ["BILLING_PROCESSOR_RETRY_BASE_DELAY", "1 second"],
  max: ["BILLING_PROCESSOR_RETRY_MAX_DELAY", "1 minute"],
  attempts: ["BILLING_PROCESSOR_MAX_DELIVERIES", 8],
  factor: 2,
  jitter: 0
})

/** The environment's policies: what runs until an operator stores another. */
export const RetryPolicyDefaults: Config.Config<RetryPolicies> = Config.all({
  webhooks: processor,
  "chain-events": processor,
  outbox: settings({
    initial: ["BILLING_OUTBOX_RETRY_BASE_DELAY", "200 millis"],
    max: ["BILLING_OUTBOX_RETRY_MAX_DELAY", "10 seconds"],
    attempts: ["BILLING_OUTBOX_MAX_ATTEMPTS", 5],
    factor: 2,
    jitter: 0.2
  }),
  rpc: settings({
    initial: ["BILLING_RPC_RETRY_BASE_DELAY", "200 millis"],
    max: ["BILLING_RPC_RETRY_MAX_DELAY", "10 seconds"],
    attempts: ["BILLING_RPC_RETRY_ATTEMPTS", 3],
    factor: 2,
    jitter: 0.2
  })
})

// One gauge per setting, labelled by policy: what every instance runs with, visible on its scrape.
const gauges = {
  initial_delay_ms: Metric.gauge("billing_retry_policy_initial_delay_seconds", { description: "Delay after a first failure, per retry policy" }),
  factor: Metric.gauge("billing_retry_policy_factor", { description: "Growth of the delay per failure, per retry policy" }),
  max_delay_ms: Metric.gauge("billing_retry_policy_max_delay_seconds", { description: "Longest delay between tries, per retry policy" }),
  max_attempts: Metric.gauge("billing_retry_policy_max_attempts", { description: "Deliveries or tries before giving up, per retry policy" }),
  jitter: Metric.gauge("billing_retry_policy_jitter", { description: "Spread of each delay (fraction of it), per retry policy" })
} as const

const show = (all: RetryPolicies) =>
  Effect.forEach(RetryPolicyNames, (name) => {
    const p = all[name]
    const tagged = <K extends keyof typeof gauges>(k: K) => Metric.tagged(gauges[k], "policy", name)
    return Effect.all([
      Metric.set(tagged("initial_delay_ms"), p.initial_delay_ms / 1000),
      Metric.set(tagged("factor"), p.factor),
      Metric.set(tagged("max_delay_ms"), p.max_delay_ms / 1000),
      Metric.set(tagged("max_attempts"), p.max_attempts),
      Metric.set(tagged("jitter"), p.jitter)
    ])
  }, { discard: true })

/** The delay after the `failure`th failure under `p` (jittered with a fresh draw). */
const delayOf = (p: RetryPolicySettings, failure: number) =>
  Duration.millis(delayAfter({ initial: p.initial_delay_ms, factor: p.factor, max: p.max_delay_ms, jitter: p.jitter }, failure, Math.random()))

/**
 * A Schedule that reads the policy at every step, so a change applies to the next retry: forever, or (`limited`) at
 * most `max_attempts` tries in all.
 */
export const liveSchedule = (policy: Effect.Effect<RetryPolicySettings>, limited: boolean) => {
  const spaced = Schedule.forever.pipe(Schedule.addDelayEffect((n) => Effect.map(policy, (p) => delayOf(p, n + 1))))
  return limited ? spaced.pipe(Schedule.checkEffect((_, n) => Effect.map(policy, (p) => n + 1 < p.max_attempts))) : spaced
}

export class RetryPolicyState extends Effect.Service<RetryPolicyState>()("billing/RetryPolicyState", {
  effect: Effect.gen(function*() {
    const defaults = yield* RetryPolicyDefaults
    const ref = yield* Ref.make<RetryPolicies>(defaults)
    yield* show(defaults)
    /** The policy in force now. */
    const current = (name: RetryPolicyName) => Effect.map(Ref.get(ref), (all) => all[name])
    /** Stored policies over the defaults (a name not stored keeps its default). */
    const replace = (stored: Partial<RetryPolicies>) => {
      const next = { ...defaults, ...stored }
      return Effect.zipRight(Ref.set(ref, next), show(next))
    }
    return { defaults, current, replace, all: Ref.get(ref) } as const
  })
}) {}
