import { NodeSdk } from "@effect/opentelemetry"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, Effect, Layer, Option } from "effect"

export const OtlpEndpoint = Config.option(Config.url("OTEL_EXPORTER_OTLP_ENDPOINT"))

/** OTLP/HTTP traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (the spans of every Effect.fn and withSpan); else nothing. */
export const TracingLive = Layer.unwrapEffect(Effect.gen(function*() {
  const endpoint = yield* OtlpEndpoint
  if (Option.isNone(endpoint)) return Layer.empty
  const url = new URL("v1/traces", endpoint.value.href.endsWith("/") ? endpoint.value.href : `${endpoint.value.href}/`).href
  yield* Effect.logInfo("tracing on: OTLP/HTTP").pipe(Effect.annotateLogs("otlp_host", endpoint.value.host))
  return NodeSdk.layer(() => ({
    resource: { serviceName: "evm-billing" },
    spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 500 })
  }))
}))
