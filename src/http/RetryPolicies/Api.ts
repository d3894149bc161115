import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { BadRequest, Unavailable } from "../../domain/Errors.ts"
import { RetryPolicyName, RetryPolicySettings, RetryPolicyView } from "../../domain/RetryPolicy.ts"
import { AdminOnly } from "../Auth.ts"

const PATH = "/v1/billing/admin/retry-policies"
const ByName = Schema.Struct({ name: RetryPolicyName })

/** Retry schedules of the consumers, the outbox relay and RPC calls, tuned live on every instance. */
export class AdminRetryPoliciesApi extends HttpApiGroup.make("adminRetryPolicies")
  .add(
    HttpApiEndpoint.get("list", PATH)
      .addSuccess(Schema.Struct({ items: Schema.Array(RetryPolicyView) }))
      .addError(Unavailable)
      .annotate(OpenApi.Description, "Every retry policy in force: stored by an operator, or the environment's default.")
  )
  .add(
    HttpApiEndpoint.get("get", `${PATH}/:name`).setPath(ByName)
      .addSuccess(RetryPolicyView)
      .addError(BadRequest).addError(Unavailable)
      .annotate(OpenApi.Description, "One retry policy: webhooks, chain-events, outbox or rpc.")
  )
  .add(
    HttpApiEndpoint.put("set", `${PATH}/:name`).setPath(ByName).setPayload(RetryPolicySettings)
      .addSuccess(RetryPolicyView)
      .addError(BadRequest).addError(Unavailable)
      .annotate(
        OpenApi.Description,
        "Replaces a retry policy (every field; delays in ms, max_delay_ms not below initial_delay_ms), audited; every instance applies it within seconds, no restart."
      )
  )
  .middleware(AdminOnly)
{}
