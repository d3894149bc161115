/** The bench's sections besides ingest (ingest.ts): start-up, the payment pipeline and latency, chain backfill. */
import { Effect } from "effect"
import { isolatedEnv } from "../smoke/harness.ts"
import { backfillEffect } from "./backfill.ts"
import { othersText, runPipeline } from "./pipeline.ts"
import { fmt, ratio, type Row, type Section } from "./report.ts"
import { Runners, startup } from "./startup.ts"

export const startupSection = Effect.gen(function*() {
  const rows: Array<Row> = []
  for (const [name, nodeArgs] of Object.entries(Runners)) {
    const f = yield* Effect.scoped(Effect.flatMap(isolatedEnv, (env) => startup(env, nodeArgs)))
    rows.push({
      scenario: `start-up, ${name === "compiled" ? "compiled build (npm start)" : "TypeScript through tsx (development)"}`,
      service: `ready ${fmt(f.readyMs)} ms after spawn (devnet included), RSS ${f.idleRssMiB} MiB after 2 s idle`,
      floor: "",
      ratio: ""
    })
  }
  return {
    title: "Start-up and idle memory",
    method: "`serve` with the embedded devnet (anvil, contracts deployed) on a fresh database: ms from spawn to the " +
      "first 200 from /readyz, then VmRSS after 2 s idle; the compiled build (`node dist/src/main.js serve`) and tsx.",
    rows
  } satisfies Section
})

export const pipelineSection = (n: number, rate: number, secs: number, steadyRate: number) =>
  Effect.map(runPipeline({ n, rate, secs, steadyRate }), (f): Section => ({
    title: "Payment pipeline and latency",
    method: "The compiled service as its own process (`node --max-old-space-size=256 dist/src/main.js serve`, api and " +
      "workers, production configuration) on the bench's fresh database, stream prefix and anvil. " +
      `${n} ` +
      "checkouts paid ahead on anvil (many payments per block) and mined deep; (a) throughput: their webhooks " +
      "published at once straight to JetStream, timed until every payment reads confirmed; (b) latency: a steady " +
      `${rate}/s for ${secs} s of webhooks for deep transactions, received → confirmed per payment, and the same at ` +
      `${steadyRate}/s (below what the pipeline sustains: latency without a queue). Floor: ` +
      "bench/floors/g_pipeline.mjs, the same receipt and head reads (JSON-RPC batch) and the same rows written, " +
      "multi-row, one transaction per batch. CPU is each process's own from /proc (the driver: the bench process " +
      "publishing and polling); RSS is the service process's VmHWM.",
    rows: [
      {
        scenario: `${f.n} webhooks at once → confirmed`,
        service: `${fmt(f.paymentsPerSec)} payments/s; CPU per payment: service ${f.cpuMsPerPayment.toFixed(2)} ms, driver ${f.driverCpuMsPerPayment.toFixed(2)} ms, ${othersText(f)}; outbox rows unsent at the end: ${f.outboxBacklog}; rows per payment: ${f.rowsPerPayment}`,
        floor: `${fmt(f.floorPaymentsPerSec)} payments/s`,
        ratio: `${ratio(f.paymentsPerSec, f.floorPaymentsPerSec, "≥ 0.5")}; target ≥ 2,000 payments/s`
      },
      ...[f.latency, ...(f.steadyLatency === undefined ? [] : [f.steadyLatency])].map((l) => ({
        scenario: `steady ${l.rate}/s, webhook received → confirmed (${l.n} payments)`,
        service: `p50 ${fmt(l.p50, 1)} ms, p99 ${fmt(l.p99, 1)} ms, max ${fmt(l.max, 1)} ms`,
        floor: "",
        ratio: "p99 target < 100 ms at 500/s"
      })),
      { scenario: "peak RSS of the service process through (a) and (b)", service: `${f.peakRssMiB} MiB`, floor: "", ratio: "target < 250 MiB" }
    ]
  }))

export const backfillSection = (events: number) =>
  Effect.map(backfillEffect({ events }), (r): Section => ({
    title: "Chain backfill",
    method: `${fmt(events)} Minted events already on an anvil chain (100 a block); the chain listener as its own process ` +
      "from a cursor at block 0 until its cursor reaches the head (reorg checks and range splitting on; every log " +
      "published to JetStream and recorded). Floors in the same run: viem getLogs + decode; + INSERT; + JetStream " +
      "publish (256 in flight) + INSERT.",
    rows: [{
      scenario: `backfill of ${fmt(r.events)} events (${fmt(r.published)} published)`,
      service: `${fmt(r.eventsPerSecond)} events/s (${r.seconds} s), peak RSS ${r.peakRssMiB} MiB`,
      floor: `getLogs + decode ${fmt(r.floorGetLogsDecode)}/s; + INSERT ${fmt(r.floorGetLogsDecodeInsert)}/s; ` +
        `+ publish + INSERT ${fmt(r.floorFull)}/s`,
      ratio: `${ratio(r.eventsPerSecond, r.floorGetLogsDecode)} of getLogs + decode; ` +
        `${ratio(r.eventsPerSecond, r.floorFull)} of the full floor; target 20,000 events/s`
    }]
  }))
