import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { Health } from "../../../services/Health.ts"
import * as Metrics from "../../../services/Metrics.ts"
import { Plans, toPlanView } from "../../../services/Plans.ts"
import { Unavailable } from "../../domain/Errors.ts"
import { Api } from "../Api.ts"
import { MetricsAccessLive } from "../MetricsAccess.ts"

export const PublicLive = HttpApiBuilder.group(Api, "public", (handlers) =>
  Effect.gen(function*() {
    const plans = yield* Plans
    const health = yield* Health
    return handlers
      .handle("plans", () => Effect.map(plans.listActive, (items) => ({ items: items.map(toPlanView) })))
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
      .handle("metrics", () => Metrics.render)
      // From the background snapshot only: no SQL, NATS or RPC work per request.
      .handle("readyz", () =>
        Effect.flatMap(health.readiness, ({ assessment, snapshot }) =>
          assessment.status === "not_ready"
            ? Effect.fail(new Unavailable({ error: "not_ready", message: assessment.reason }))
            : Effect.succeed({
              status: assessment.status,
              checked_at: new Date(snapshot.checkedAt).toISOString(),
              age_ms: assessment.ageMillis,
              checks: snapshot.checks
            })))
  })).pipe(Layer.provide([Plans.Default, MetricsAccessLive]))
