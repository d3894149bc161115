import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { Unavailable } from "../../domain/Errors.ts"
import { PlanView } from "../../domain/Plan.ts"

export const Health = Schema.Struct({ status: Schema.Literal("ok") })
export const Readiness = Schema.Struct({
  status: Schema.Literal("ok", "degraded"),
  checks: Schema.Record({ key: Schema.String, value: Schema.Struct({ ok: Schema.Boolean, detail: Schema.optional(Schema.String) }) })
})

export class PublicApi extends HttpApiGroup.make("public")
  .add(HttpApiEndpoint.get("plans", "/v1/billing/plans").addSuccess(Schema.Struct({ items: Schema.Array(PlanView) })))
  .add(HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Health))
  .add(HttpApiEndpoint.get("readyz", "/readyz").addSuccess(Readiness).addError(Unavailable))
  .add(HttpApiEndpoint.get("metrics", "/v1/metrics").addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" })))
{}
