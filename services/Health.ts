/**
 * Readiness from a snapshot that a background fiber refreshes every BILLING_HEALTH_INTERVAL: a /readyz request costs
 * PostgreSQL, NATS and the RPC providers nothing, so an anonymous caller cannot burn provider quota with it.
 */
import { SqlClient } from "@effect/sql"
import { Cause, Clock, Config, Duration, Effect, Schedule, SubscriptionRef } from "effect"
import { Nats } from "./Nats.ts"
import { Rpc } from "./Rpc.ts"

export const HealthConfig = Config.all({
  interval: Config.duration("BILLING_HEALTH_INTERVAL").pipe(
    Config.withDefault(Duration.seconds(10)),
    Config.validate({
      message: "BILLING_HEALTH_INTERVAL must be between 1 second and 10 minutes",
      validation: (d) => Duration.between(d, { minimum: Duration.seconds(1), maximum: Duration.minutes(10) })
    })
  )
})

/** Each probe's bound: a hung dependency shows as failed instead of stalling the refresh. */
export const PROBE_TIMEOUT = Duration.seconds(3)
/** Refreshes that may be missed before the snapshot no longer says anything about now. */
export const STALE_AFTER_INTERVALS = 3

export interface Check {
  readonly ok: boolean
  readonly detail?: string
}

export interface Snapshot {
  /** When the probes of this snapshot started (epoch millis). */
  readonly checkedAt: number
  /** `postgres`, `nats`, `rpc:<network>`. */
  readonly checks: Readonly<Record<string, Check>>
}

export type Assessment =
  | { readonly status: "ok" | "degraded"; readonly ageMillis: number }
  | { readonly status: "not_ready"; readonly ageMillis: number; readonly reason: string }

/** Critical checks: without them nothing works. An RPC outage only degrades (checkout and settlement wait). */
const CRITICAL = ["postgres", "nats"] as const

/** What /readyz answers for `snapshot` at `now`: a snapshot older than a few intervals is not evidence of readiness. */
export const assess = (snapshot: Snapshot, now: number, interval: Duration.Duration): Assessment => {
  const ageMillis = Math.max(0, now - snapshot.checkedAt)
  const staleAfter = STALE_AFTER_INTERVALS * Duration.toMillis(interval) + Duration.toMillis(PROBE_TIMEOUT)
  if (ageMillis > staleAfter) return { status: "not_ready", ageMillis, reason: `health snapshot is stale (${ageMillis} ms old)` }
  const down = CRITICAL.filter((name) => snapshot.checks[name]?.ok !== true)
  if (down.length > 0) return { status: "not_ready", ageMillis, reason: `${down.join(", ")} unavailable` }
  return { status: Object.values(snapshot.checks).every((c) => c.ok) ? "ok" : "degraded", ageMillis }
}

const up: Check = { ok: true }

/** The failure becomes the check's result; only its tag is logged (a cause may carry connection details). */
const probe = (name: string, effect: Effect.Effect<unknown, unknown>): Effect.Effect<Check> =>
  effect.pipe(
    Effect.timeoutTo({ duration: PROBE_TIMEOUT, onSuccess: (): Check => up, onTimeout: (): Check => ({ ok: false, detail: "timeout" }) }),
    Effect.catchAllCause((cause) => {
      const failure = Cause.squash(cause)
      const tag = typeof failure === "object" && failure !== null && "_tag" in failure ? String(failure._tag) : "defect"
      return Effect.logDebug("readiness probe failed").pipe(
        Effect.annotateLogs({ check: name, error: tag }),
        Effect.as<Check>({ ok: false, detail: "unreachable" })
      )
    })
  )

/** Logs a check only when it changes: one line per outage and one per recovery, not one per refresh. */
const logChanges = (before: Snapshot["checks"], after: Snapshot["checks"]) =>
  Effect.forEach(Object.entries(after), ([name, check]) => {
    const was = before[name]
    if (was !== undefined && was.ok === check.ok) return Effect.void
    if (check.ok) return was === undefined ? Effect.void : Effect.logInfo("readiness check recovered").pipe(Effect.annotateLogs("check", name))
    return Effect.logWarning("readiness check failing").pipe(Effect.annotateLogs({ check: name, detail: check.detail ?? "" }))
  }, { discard: true })

export class Health extends Effect.Service<Health>()("billing/Health", {
  scoped: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const nats = yield* Nats
    const rpc = yield* Rpc
    const { interval } = yield* HealthConfig

    const probeAll = Effect.gen(function*() {
      const checkedAt = yield* Clock.currentTimeMillis
      const networks = yield* rpc.networks
      const checks = yield* Effect.all({
        postgres: probe("postgres", sql`SELECT 1`),
        nats: probe("nats", nats.ping),
        ...Object.fromEntries(networks.map((n) => [`rpc:${n.network}`, probe(`rpc:${n.network}`, rpc.blockNumber(n.network))]))
      }, { concurrency: "unbounded" })
      return { checkedAt, checks } satisfies Snapshot
    }).pipe(Effect.withSpan("Health.refresh"))

    // The first snapshot is taken before the server listens, so /readyz never answers from nothing.
    const first = yield* probeAll
    yield* logChanges({}, first.checks)
    const latest = yield* SubscriptionRef.make<Snapshot>(first)

    const refresh = Effect.flatMap(probeAll, (next) =>
      Effect.flatMap(SubscriptionRef.get(latest), (previous) => logChanges(previous.checks, next.checks)).pipe(
        Effect.zipRight(SubscriptionRef.set(latest, next))
      ))
    // A failed refresh leaves the last snapshot in place; it goes stale, and /readyz says so.
    yield* Effect.forkScoped(refresh.pipe(
      Effect.catchAllCause((cause) => Effect.logError("readiness refresh failed", cause)),
      Effect.schedule(Schedule.spaced(interval))
    ))

    return {
      interval,
      /** The last snapshot and its verdict now. No I/O. */
      readiness: Effect.map(Effect.zip(SubscriptionRef.get(latest), Clock.currentTimeMillis), ([snapshot, now]) => ({
        snapshot,
        assessment: assess(snapshot, now, interval)
      })),
      /** The current snapshot, then each new one. */
      snapshots: latest.changes
    } as const
  })
}) {}
