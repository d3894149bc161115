import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { Unavailable } from "../../domain/Errors.ts"
import { PlanView } from "../../domain/Plan.ts"
import { MetricsAccess } from "../MetricsAccess.ts"

export const Health = Schema.Struct({ status: Schema.Literal("ok") })
export const Readiness = Schema.Struct({
  status: Schema.Literal("ok", "degraded"),
  /** When the background probes behind this answer ran; /readyz itself probes nothing. */
  checked_at: Schema.String,
  age_ms: Schema.Int.pipe(Schema.nonNegative()),
  checks: Schema.Record({ key: Schema.String, value: Schema.Struct({ ok: Schema.Boolean, detail: Schema.optional(Schema.String) }) })
})

export class PublicApi extends HttpApiGroup.make("public")
  .add(HttpApiEndpoint.get("plans", "/v1/billing/plans").addSuccess(Schema.Struct({ items: Schema.Array(PlanView) })))
  .add(HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Health))
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .addSuccess(Readiness)
      .addError(Unavailable)
      .annotate(OpenApi.Description, "PostgreSQL, NATS and RPC per network, from the last background check (BILLING_HEALTH_INTERVAL).")
  )
  .add(
    // A bearer token (BILLING_METRICS_TOKEN), or explicitly public (BILLING_METRICS_PUBLIC=true); else 403.
    HttpApiEndpoint.get("metrics", "/v1/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .middleware(MetricsAccess)
      .annotate(OpenApi.Description, "Prometheus text format; `Authorization: Bearer <BILLING_METRICS_TOKEN>`.")
  )
{}
