import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import {
  escapeLabelValue,
  labelled,
  render,
  rpcFailoversTotal,
  rpcRequestsTotal,
  subscriptionsActive,
  webhookToConfirmationSeconds
} from "../../services/Metrics.ts"

/** The lines of one metric family (HELP, TYPE and samples), in rendered order. */
const family = (text: string, name: string) =>
  text.split("\n").filter((line) =>
    line.startsWith(`# HELP ${name} `) || line.startsWith(`# TYPE ${name} `) ||
    line.startsWith(`${name}{`) || line.startsWith(`${name} `) ||
    line.startsWith(`${name}_bucket`) || line.startsWith(`${name}_sum`) || line.startsWith(`${name}_count`)
  )

describe("Metrics.render (Prometheus text format 0.0.4)", () => {
  it.effect("counters with labels: HELP, TYPE, one sample per label set, labels in a stable order", () =>
    Effect.gen(function*() {
      const labels = { network: "m_counter", endpoint: "0", method: "eth_chainId" }
      yield* Metric.incrementBy(labelled(rpcRequestsTotal, { ...labels, outcome: "success" }), 3)
      // Same labels written in another order: the same series.
      yield* Metric.increment(labelled(rpcRequestsTotal, { outcome: "success", method: "eth_chainId", endpoint: "0", network: "m_counter" }))
      yield* Metric.increment(labelled(rpcRequestsTotal, { ...labels, outcome: "error" }))
      yield* Metric.increment(labelled(rpcFailoversTotal, { network: "m_counter", from: "0", to: "1" }))
      const text = yield* render
      const lines = family(text, "billing_rpc_requests_total")
      assert.strictEqual(lines[0], "# HELP billing_rpc_requests_total RPC requests per endpoint and outcome (success or error)")
      assert.strictEqual(lines[1], "# TYPE billing_rpc_requests_total counter")
      assert.include(lines, `billing_rpc_requests_total{endpoint="0",method="eth_chainId",network="m_counter",outcome="success"} 4`)
      assert.include(lines, `billing_rpc_requests_total{endpoint="0",method="eth_chainId",network="m_counter",outcome="error"} 1`)
      assert.include(text, `billing_rpc_failovers_total{from="0",network="m_counter",to="1"} 1\n`)
      // One HELP/TYPE block per family, and the text ends with a newline.
      assert.strictEqual(text.split("\n").filter((l) => l === "# TYPE billing_rpc_requests_total counter").length, 1)
      assert.isTrue(text.endsWith("\n"))
    }))

  it.effect("histograms: cumulative _bucket{le} ending in +Inf, _sum and _count; unlabelled metrics show before use", () =>
    Effect.gen(function*() {
      const before = family(yield* render, "billing_webhook_to_confirmation_seconds")
      assert.include(before, "# TYPE billing_webhook_to_confirmation_seconds histogram")
      assert.include(before, `billing_webhook_to_confirmation_seconds_bucket{le="+Inf"} 0`)
      assert.include(family(yield* render, "billing_subscriptions_active"), "billing_subscriptions_active 0")

      const h = Metric.histogram("test_latency_seconds", MetricBoundaries.fromIterable([0.5, 1, 5]), "test latency")
      yield* Effect.forEach([0.2, 0.7, 0.9, 3, 10], (v) => Metric.update(Metric.tagged(h, "route", "/x"), v))
      yield* Metric.update(webhookToConfirmationSeconds, 42)
      yield* Metric.set(subscriptionsActive, 7)
      const text = yield* render
      assert.deepStrictEqual(family(text, "test_latency_seconds"), [
        "# HELP test_latency_seconds test latency",
        "# TYPE test_latency_seconds histogram",
        `test_latency_seconds_bucket{route="/x",le="0.5"} 1`,
        `test_latency_seconds_bucket{route="/x",le="1"} 3`,
        `test_latency_seconds_bucket{route="/x",le="5"} 4`,
        `test_latency_seconds_bucket{route="/x",le="+Inf"} 5`,
        `test_latency_seconds_sum{route="/x"} 14.8`,
        `test_latency_seconds_count{route="/x"} 5`
      ])
      const webhook = family(text, "billing_webhook_to_confirmation_seconds")
      assert.include(webhook, `billing_webhook_to_confirmation_seconds_bucket{le="30"} 0`)
      assert.include(webhook, `billing_webhook_to_confirmation_seconds_bucket{le="60"} 1`)
      assert.include(webhook, "billing_webhook_to_confirmation_seconds_count 1")
      assert.include(family(text, "billing_subscriptions_active"), "billing_subscriptions_active 7")
      assert.include(text, "# TYPE billing_subscriptions_active gauge\n")
    }))

  it.effect("label values and help text are escaped", () =>
    Effect.gen(function*() {
      assert.strictEqual(escapeLabelValue(`a\\b"c\nd`), `a\\\\b\\"c\\nd`)
      const c = Metric.counter("test_escaping_total", { description: "line one\nline two \\ end" })
      yield* Metric.increment(labelled(c, { path: `C:\\dir "quoted"\nnext`, "bad-name": "x" }))
      const text = yield* render
      assert.include(text, "# HELP test_escaping_total line one\\nline two \\\\ end\n")
      assert.include(text, `test_escaping_total{bad_name="x",path="C:\\\\dir \\"quoted\\"\\nnext"} 1\n`)
    }))

  it.effect("metrics declared elsewhere appear, and one series declared twice is summed, not duplicated", () =>
    Effect.gen(function*() {
      // As streams/Consumer.ts declares it; any module's Effect metric is in the registry.
      const consumer = Metric.counter("billing_consumer_messages_total", { description: "consumer messages" })
      yield* Metric.incrementBy(Metric.tagged(Metric.tagged(consumer, "consumer", "m_test"), "disposition", "Ack"), 2)
      // The same name and labels with another description is another Effect key.
      const again = Metric.counter("billing_chain_reorgs_total", { description: "declared a second time" })
      yield* Metric.increment(labelled(again, { network: "m_dup" }))
      yield* Metric.incrementBy(Metric.tagged(Metric.counter("billing_chain_reorgs_total"), "network", "m_dup"), 2)
      const text = yield* render
      assert.include(text, `billing_consumer_messages_total{consumer="m_test",disposition="Ack"} 2\n`)
      assert.deepStrictEqual(family(text, "billing_chain_reorgs_total").filter((l) => l.includes("m_dup")), [
        `billing_chain_reorgs_total{network="m_dup"} 3`
      ])
    }))
})
