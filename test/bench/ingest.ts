/**
 * Webhook ingest as the floor measures it: autocannon in this process, `conns` connections for `secs` seconds (after a
 * 2 s warm-up), every request a fresh signed webhook (new id, new transaction hash) for the devnet's demo contract.
 */
import autocannon from "autocannon"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { DEMO_CONTRACT } from "../../src/Demo.ts"
import { isolatedEnv, serve, WEBHOOK_SECRET } from "../smoke/harness.ts"
import { num, runFloor } from "./floors.ts"
import { cpuTicks, memoryMiB } from "./process.ts"
import { fmt, ratio, type Row, type Section } from "./report.ts"
import { START_FLAGS } from "./startup.ts"

export interface IngestFigures {
  readonly reqPerSec: number
  readonly p50: number
  readonly p99: number
  readonly accepted: number
  readonly non2xx: number
  readonly errors: number
  readonly serviceCpuPct: number
}

const signedRequest = (run: string, n: number) => {
  const body = JSON.stringify({
    type: "payment.minted",
    contract: DEMO_CONTRACT,
    network: "anvil",
    tx_hash: `0x${randomBytes(32).toString("hex")}`,
    log_index: 0
  })
  const id = `msg_${run}_${n}`
  const timestamp = Math.floor(Date.now() / 1000)
  return {
    body,
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signWebhook(WEBHOOK_SECRET, id, timestamp, body)
    }
  }
}

const cannon = (url: string, conns: number, secs: number, run: string) => {
  let n = 0
  return Effect.promise(() =>
    autocannon({
      url,
      method: "POST",
      connections: conns,
      duration: secs,
      requests: [{ setupRequest: (req) => ({ ...req, ...signedRequest(run, n++) }) }]
    })
  )
}

export const ingest = (baseUrl: string, pid: number, conns = 50, secs = 15) =>
  Effect.gen(function*() {
    const url = `${baseUrl}/v1/billing/contracts/webhook`
    const run = randomBytes(4).toString("hex")
    yield* cannon(url, conns, 2, `${run}w`)
    const ticks0 = cpuTicks(pid)
    const started = performance.now()
    const r = yield* cannon(url, conns, secs, run)
    const elapsed = (performance.now() - started) / 1000
    return {
      reqPerSec: r.requests.average,
      p50: r.latency.p50,
      p99: r.latency.p99,
      accepted: r["2xx"],
      non2xx: r.non2xx,
      errors: r.errors,
      serviceCpuPct: Math.round(((cpuTicks(pid) - ticks0) / 100 / elapsed) * 100)
    } satisfies IngestFigures
  })

const floorFigures = (figures: Record<string, unknown>) =>
  `${fmt(num(figures, "req_s_mean"))} req/s, p99 ${fmt(num(figures, "lat_ms_p99"))} ms, server CPU ${fmt(num(figures, "server_pct"))}%`

/**
 * Ingest beside its floors: the bare node:http publish floor and the minimal Effect HttpApi floor, then the service
 * (the `evm-billing` bin: compiled when built) as an HTTP-only tier and with its workers, each a fresh process.
 */
export const ingestSection = (conns: number, secs: number) =>
  Effect.gen(function*() {
    const args = [`--conns=${conns}`, `--secs=${secs}`]
    const bare = yield* runFloor("e_http_bench.mjs", ["--mode=publish", ...args])
    const effect = yield* runFloor("e_http_bench.mjs", ["--mode=effect", ...args])
    const rows: Array<Row> = []
    for (const roles of ["api", "api,workers"]) {
      const f = yield* Effect.scoped(Effect.gen(function*() {
        const env = yield* isolatedEnv
        const started = performance.now()
        const service = yield* serve({ ...env, BILLING_ROLES: roles }, START_FLAGS)
        const readyMs = performance.now() - started
        yield* Effect.sleep("2 seconds")
        const idleMiB = memoryMiB(service.pid)
        const figures = yield* ingest(service.baseUrl, service.pid, conns, secs)
        return { ...figures, readyMs, idleMiB, peakMiB: memoryMiB(service.pid, "VmHWM") }
      }))
      const tier = roles === "api" ? "HTTP tier only (BILLING_ROLES=api)" : "whole service (api,workers)"
      rows.push({
        scenario: `webhook ingest, ${tier}, ${conns} connections, ${secs} s`,
        service: `${fmt(f.reqPerSec)} req/s, p50 ${fmt(f.p50)} ms, p99 ${fmt(f.p99)} ms, CPU ${f.serviceCpuPct}%; ` +
          `${fmt(f.accepted)} accepted, ${f.non2xx} non-2xx, ${f.errors} errors`,
        floor: `bare: ${floorFigures(bare)}; Effect HttpApi: ${floorFigures(effect)}`,
        ratio: `${ratio(f.reqPerSec, num(bare, "req_s_mean"), "≥ 0.6")} of bare; ` +
          `${ratio(f.reqPerSec, num(effect, "req_s_mean"), "≥ 1.0")} of Effect; p99 target < 50 ms`
      }, {
        scenario: `process, ${tier}`,
        service: `healthy ${fmt(f.readyMs)} ms after spawn (devnet included); RSS ${f.idleMiB} MiB idle, ` +
          `${f.peakMiB} MiB peak through ingest`,
        floor: "",
        ratio: "peak target < 250 MiB"
      })
    }
    return {
      title: "Webhook ingest",
      method: `autocannon in the bench process, ${conns} connections for ${secs} s after a 2 s warm-up, every request a ` +
        "fresh Standard Webhooks signed event (new id and transaction hash) for the devnet's demo contract: HMAC over " +
        "the raw body, schema, JetStream publish with Nats-Msg-Id awaited, 202. The floors do the same work " +
        "(bench/floors/e_http_bench.mjs: HMAC, JSON.parse, awaited publish) with their own autocannon. CPU is the " +
        "server process's own from /proc; RSS is VmRSS / VmHWM.",
      rows
    } satisfies Section
  })
