/**
 * `billing_dead_letters{consumer}`: dead letters waiting in the DLQ per consumer, read from the stream's per-subject
 * counts every `BILLING_DEAD_LETTER_GAUGE_INTERVAL` (default 15 s) by every instance (each one's scrape shows it),
 * every known consumer from 0.
 */
import { Effect, Layer, Metric, Schedule } from "effect"
import { DeadLetters } from "../services/DeadLetters.ts"
import { durationBetween } from "../services/Settings.ts"

export const deadLettersWaiting = Metric.gauge("billing_dead_letters", {
  description: "Dead letters waiting in the DLQ per consumer (replay or discard them at /v1/billing/admin/dead-letters)"
})

export const DeadLetterGaugeInterval = durationBetween("BILLING_DEAD_LETTER_GAUGE_INTERVAL", "15 seconds", "1 second", "1 hour")

export const DeadLetterGaugeLive = Layer.scopedDiscard(Effect.gen(function*() {
  const deadLetters = yield* DeadLetters
  const interval = yield* DeadLetterGaugeInterval
  const refresh = deadLetters.counts.pipe(
    Effect.flatMap((counts) =>
      Effect.forEach(Object.entries(counts), ([consumer, n]) => Metric.set(Metric.tagged(deadLettersWaiting, "consumer", consumer), n), { discard: true })),
    // NATS away: the gauge keeps its last value and the next tick tries again
    Effect.catchAll((e) => Effect.logDebug("dead-letter gauge not refreshed", e.message))
  )
  yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(interval)))
})).pipe(Layer.provide(DeadLetters.Default))
