import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import { NodeHttpServer } from "@effect/platform-node"
import { Duration, Effect, Layer } from "effect"
import { AccessLogConfig, RequestTimeoutConfig } from "../Config.ts"
import { BadRequest, Internal, NotFound, PayloadTooLarge } from "../domain/Errors.ts"
import { AdminContractsLive, AdminGatewaysLive, AdminPlansLive } from "./Admin/Http.ts"
import { Api } from "./Api.ts"
import { AdminAuditLive, FinanceAuditLive } from "./Audit/Http.ts"
import { AdminDeadLettersLive } from "./DeadLetters/Http.ts"
import { AdminRetryPoliciesLive } from "./RetryPolicies/Http.ts"
import { AuthLive } from "./Auth.ts"
import { BodyLimit, isBodyTooLarge, MaxBody, tooLarge } from "./BodyLimit.ts"
import { CheckoutLive } from "./Checkout/Http.ts"
import { DocsLive } from "./Docs.ts"
import { MeLive } from "./Me/Http.ts"
import { OverviewLive } from "./Overview/Http.ts"
import { PublicLive } from "./Public/Http.ts"
import { RequestIds } from "./RequestId.ts"
import { WebhooksLive } from "./Webhooks/Http.ts"
import { serverWithWebhookRoute, webhookHandler } from "./WebhookRoute.ts"
import { WebhookIntake } from "../../services/WebhookIntake.ts"
import { AdminWebhookSecretsLive } from "./WebhookSecrets/Http.ts"

const describeDefect = (defect: unknown) =>
  defect instanceof Error ? `${defect.name}: ${defect.message}\n${defect.stack ?? ""}` : `defect of type ${typeof defect}`

/** The first schema issue with its path; values are never echoed (the field may be a secret). */
const describeIssue = (e: HttpApiDecodeError) => {
  const first = e.issues[0]
  if (first === undefined) return "the request does not match the schema"
  const where = first.path.length > 0 ? `${first.path.join(".")}: ` : ""
  const secret = first.path.some((p) => /secret|key|token|password/i.test(String(p)))
  const text = secret ? "invalid value" : first.message.replace(/,?\s*actual[\s\S]*$/i, "").replace(/\s+/g, " ").trim()
  return `${where}${text}`
}

const tagOf = (e: unknown) => (typeof e === "object" && e !== null && "_tag" in e ? e._tag : undefined)

/**
 * Inside the API, before errors are encoded: schema failures name the offending field, unknown routes and
 * unreadable bodies keep the `{error, message}` shape, and a defect is logged and answered without details.
 */
const ErrorShape = HttpApiBuilder.middleware(Api, Effect.map(MaxBody, (maxBody) => (app) =>
  (app as HttpApp.Default<unknown>).pipe(
    Effect.catchAll((e) => {
      if (isBodyTooLarge(e)) return Effect.fail(tooLarge(maxBody))
      if (e instanceof HttpApiDecodeError) return Effect.fail(new BadRequest({ error: "invalid_request", message: describeIssue(e) }))
      switch (tagOf(e)) {
        case "RouteNotFound":
          return Effect.fail(new NotFound({ error: "not_found", message: "no such route" }))
        case "RequestError":
          return Effect.fail(new BadRequest({ error: "invalid_request", message: "the request body is not valid JSON" }))
        default:
          return Effect.fail(e)
      }
    }),
    // Log only the defect's name and message: platform errors carry the request, bearer token included.
    Effect.catchAllDefect((defect): Effect.Effect<never, BadRequest | PayloadTooLarge | Internal> =>
      isBodyTooLarge(defect)
        ? Effect.fail(tooLarge(maxBody))
        : tagOf(defect) === "RequestError"
        ? Effect.fail(new BadRequest({ error: "invalid_request", message: "the request body could not be read as JSON" }))
        : Effect.logError("request failed", describeDefect(defect)).pipe(
          Effect.zipRight(Effect.fail(new Internal({ error: "internal_error", message: "internal error" })))
        ))
  ) as HttpApp.Default<BadRequest | NotFound | PayloadTooLarge | Internal>))

export const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([PublicLive, CheckoutLive, MeLive, WebhooksLive, AdminContractsLive, AdminWebhookSecretsLive, AdminPlansLive, AdminGatewaysLive, AdminAuditLive, AdminDeadLettersLive, AdminRetryPoliciesLive, OverviewLive, FinanceAuditLive]),
  Layer.provide(AuthLive)
)

/** The access log only when asked for: a log write per request is a visible share of the webhook path's cost. */
const serveWithAccessLog = Layer.unwrapEffect(Effect.map(AccessLogConfig, (on) =>
  on ? HttpApiBuilder.serve(HttpMiddleware.logger) : HttpApiBuilder.serve()))

export const serveApi = (port: number) =>
  serveWithAccessLog.pipe(
    Layer.provide(DocsLive),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(ErrorShape),
    Layer.provide(RequestIds),
    Layer.provide(BodyLimit),
    Layer.provide(ApiLive),
    HttpServer.withLogAddress,
    Layer.provide(nodeServer(port))
  )

/** node:http with the webhook route ahead of the router (WebhookRoute.ts), and every request bounded in time. */
const nodeServer = (port: number) =>
  Layer.unwrapEffect(Effect.map(Effect.all([webhookHandler, RequestTimeoutConfig]), ([webhook, timeout]) =>
    NodeHttpServer.layer(() => serverWithWebhookRoute(webhook, Duration.toMillis(timeout)), { port, host: "0.0.0.0" }))).pipe(
      Layer.provide(WebhookIntake.Default)
    )
