import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { Leases } from "../services/Leases.ts"
import { subscriptionsActive } from "../services/Metrics.ts"
import { PaymentConfirmation } from "../services/PaymentConfirmation.ts"
import { Payments } from "../services/Payments.ts"
import { countOf, decodeIds } from "../services/Rows.ts"

export const JanitorConfig = Config.all({
  every: Config.duration("BILLING_JANITOR_EVERY").pipe(Config.withDefault(Duration.seconds(30))),
  staleAfter: Config.duration("BILLING_JANITOR_STALE_AFTER").pipe(Config.withDefault(Duration.minutes(1)))
})

/**
 * Re-checks payments stuck in `pending` or `seen` although their transaction is known (a lost redelivery, a crash
 * between polls) through PaymentConfirmation, as the processor does, and refreshes the active-subscriptions gauge.
 * One leader.
 */
export const JanitorLive = Layer.scopedDiscard(Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const payments = yield* Payments
  const leases = yield* Leases
  const confirmation = yield* PaymentConfirmation
  const config = yield* JanitorConfig
  const staleSeconds = Duration.toSeconds(config.staleAfter)

  const sweep = Effect.gen(function*() {
    const stuck = yield* sql`SELECT id::text AS id FROM payment_transactions
      WHERE status IN ('pending', 'seen') AND tx_hash IS NOT NULL
        AND updated_at < now() - make_interval(secs => ${staleSeconds}) ORDER BY updated_at LIMIT 100`.pipe(Effect.orDie, Effect.flatMap(decodeIds))
    for (const { id } of stuck) {
      const payment = yield* payments.byId(id)
      if (payment._tag === "None") continue
      yield* confirmation.recheck(payment.value, `janitor:${id}`).pipe(
        Effect.catchAllCause((cause) => Effect.logWarning("janitor re-check failed", cause).pipe(Effect.annotateLogs("transaction_id", id)))
      )
    }
    const active = yield* sql`SELECT count(*)::int AS n FROM subscriptions WHERE status = 'active'`.pipe(Effect.orDie, Effect.flatMap(countOf))
    yield* Metric.set(subscriptionsActive, active)
  }).pipe(Effect.withSpan("Janitor.sweep"))

  const forever = sweep.pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("janitor sweep failed", cause)),
    Effect.repeat(Schedule.spaced(config.every)),
    Effect.zipRight(Effect.never)
  )
  yield* Effect.forkScoped(leases.whileLeader("janitor", forever))
})).pipe(Layer.provide([Leases.Default, Payments.Default, PaymentConfirmation.Default]))
