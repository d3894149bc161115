import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { Leases } from "../services/Leases.ts"
import { subscriptionsActive } from "../services/Metrics.ts"
import { PaymentConfirmation } from "../services/PaymentConfirmation.ts"
import { Payments } from "../services/Payments.ts"
import { countOf, decodeIds } from "../services/Rows.ts"
import { durationBetween } from "../services/Settings.ts"

export const JanitorConfig = Config.all({
  every: Config.duration("BILLING_JANITOR_EVERY").pipe(Config.withDefault(Duration.seconds(30))),
  staleAfter: Config.duration("BILLING_JANITOR_STALE_AFTER").pipe(Config.withDefault(Duration.minutes(1))),
  outboxRetention: durationBetween("BILLING_OUTBOX_RETENTION", "7 days", "1 hour", "3650 days")
})

export const outboxPurgedTotal = Metric.counter("billing_outbox_purged_total", {
  description: "Sent outbox rows deleted after BILLING_OUTBOX_RETENTION (dead-lettered and unsent rows are never purged)",
  incremental: true
})

/** Rows deleted per statement: a long backlog is purged over several sweeps without one long lock. */
const PURGE_BATCH = 5_000

/**
 * Deletes up to PURGE_BATCH outbox rows sent more than `retention` ago, oldest first; how many. Rows not sent (pending
 * or dead-lettered, kept for a replay) stay whatever their age.
 */
export const purgeSentOutbox = (retention: Duration.Duration) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`WITH gone AS (DELETE FROM outbox WHERE id IN (
        SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => ${Duration.toSeconds(retention)})
        ORDER BY id LIMIT ${PURGE_BATCH}) RETURNING 1)
      SELECT count(*)::int AS n FROM gone`.pipe(Effect.flatMap(countOf)))

/**
 * Re-checks payments stuck in `pending` or `seen` although their transaction is known (a lost redelivery, a crash
 * between polls) through PaymentConfirmation, as the processor does, refreshes the active-subscriptions gauge, and
 * purges outbox rows sent longer ago than BILLING_OUTBOX_RETENTION (their events are on the EVENTS stream).
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
    const purged = yield* purgeSentOutbox(config.outboxRetention).pipe(Effect.orDie)
    if (purged > 0) {
      yield* Metric.incrementBy(outboxPurgedTotal, purged)
      yield* Effect.logInfo(`purged ${purged} outbox row(s) sent more than ${Duration.format(config.outboxRetention)} ago`)
    }
  }).pipe(Effect.withSpan("Janitor.sweep"))

  const forever = sweep.pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("janitor sweep failed", cause)),
    Effect.repeat(Schedule.spaced(config.every)),
    Effect.zipRight(Effect.never)
  )
  yield* Effect.forkScoped(leases.whileLeader("janitor", forever))
})).pipe(Layer.provide([Leases.Default, Payments.Default, PaymentConfirmation.Default]))
