import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { App, appHarness, eventually, PASS, registerContractAndPlan } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"
import { checkoutOf, mine, mintedEvent, sendPayload, waitForStatus } from "../support/payments.ts"

// A stand-in OTLP/HTTP collector: it records what the service exports.
const received: Array<string> = []
const collector = createServer((req, res) => {
  let body = ""
  req.on("data", (chunk) => (body += chunk))
  req.on("end", () => {
    received.push(`${req.method} ${req.url} ${body}`)
    res.writeHead(200, { "content-type": "application/json" }).end("{}")
  })
})
/** Trace ids of exported spans by name (OTLP JSON: resourceSpans[].scopeSpans[].spans[]). */
const traceIdsOf = (name: string) =>
  received.flatMap((r) => {
    const json = r.slice(r.indexOf("{"))
    if (!r.startsWith("POST /v1/traces")) return []
    const doc = JSON.parse(json) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<{ name: string; traceId: string }> }> }> }
    return (doc.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).filter((sp) => sp.name === name).map((sp) => sp.traceId)))
  })

await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
const port = (collector.address() as AddressInfo).port

layer(appHarness({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } }), { timeout: 120_000, excludeTestServices: true })(
  "tracing",
  (it) => {
    it.effect("with OTEL_EXPORTER_OTLP_ENDPOINT set, a checkout's spans are exported over OTLP/HTTP", () =>
      Effect.gen(function*() {
        const app = yield* App
        yield* registerContractAndPlan(app, "traced", { native: 10n ** 15n, token: 1_000_000n })
        const token = app.token("traced-user")
        const res = yield* app.request("POST", "/v1/billing/checkout", {
          token,
          body: { plan_slug: "traced", wallet_address: devAccount(1).address, token: "native" }
        })
        assert.strictEqual(res.status, 201)
        const exported = Effect.sync(() => received.filter((r) => r.startsWith("POST /v1/traces")).join("\n"))
        const spans = yield* eventually(exported, (all) => all.includes("Checkout.create") && all.includes("QuoteSigner.sign"), "exported spans")
        assert.include(spans, "evm-billing")
        assert.notInclude(spans, token, "the bearer token is redacted from span attributes")

        // One trace from the webhook request through JetStream to the processor that settles the payment.
        const checkout = checkoutOf(res)
        const [receipt] = yield* sendPayload(app, checkout, 1)
        yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))
        yield* mine(app, 2)
        yield* waitForStatus(checkout.transaction_id, "confirmed")
        const linked = Effect.sync(() => {
          const intake = new Set(traceIdsOf("WebhookIntake.accept"))
          return traceIdsOf("Settlement.settleMint").filter((id) => intake.has(id))
        })
        yield* eventually(linked, (ids) => ids.length > 0, "the settlement span in the webhook's trace")
      }).pipe(Effect.ensuring(Effect.sync(() => collector.close()))))
  }
)
