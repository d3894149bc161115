/**
 * Who may scrape /v1/metrics. Metrics describe traffic, payments and providers: outside the embedded devnet they need
 * BILLING_METRICS_TOKEN, or an explicit BILLING_METRICS_PUBLIC=true for a scraper on a private network.
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import { Config, Effect, Layer, Option, Redacted, Schema } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { Forbidden, Unauthorized } from "../domain/Errors.ts"

export const MetricsAccessConfig = Config.all({
  token: Config.option(Config.redacted("BILLING_METRICS_TOKEN").pipe(
    Config.validate({
      message: "BILLING_METRICS_TOKEN must be at least 32 characters",
      validation: (s) => Redacted.value(s).length >= 32
    })
  )),
  public: Config.boolean("BILLING_METRICS_PUBLIC").pipe(Config.withDefault(false))
})

export class MetricsAccess extends HttpApiMiddleware.Tag<MetricsAccess>()("billing/MetricsAccess", {
  failure: Schema.Union(Unauthorized, Forbidden),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** Equal in constant time: both sides are hashed first, so neither the content nor the length leaks through timing. */
export const sameSecret = (given: string, expected: string) =>
  timingSafeEqual(createHash("sha256").update(given).digest(), createHash("sha256").update(expected).digest())

/** A token, when set, is always required (BILLING_METRICS_PUBLIC does not loosen it); without one, public or 403. */
export const MetricsAccessLive = Layer.effect(MetricsAccess, Effect.map(MetricsAccessConfig, ({ token, public: open }) => ({
  bearer: (given: Redacted.Redacted) => {
    if (Option.isSome(token)) {
      return sameSecret(Redacted.value(given), Redacted.value(token.value))
        ? Effect.void
        : Effect.fail(new Unauthorized({ error: "unauthorized", message: "a valid metrics bearer token is required" }))
    }
    return open ? Effect.void : Effect.fail(new Forbidden({
      error: "forbidden",
      message: "metrics are disabled: set BILLING_METRICS_TOKEN (or BILLING_METRICS_PUBLIC=true on a private network)"
    }))
  }
})))
