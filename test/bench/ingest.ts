/**
 * Webhook ingest as the floor measures it: autocannon in this process, `conns` connections for `secs` seconds (after a
 * 2 s warm-up), every request a fresh signed webhook (new id, new transaction hash) for the devnet's demo contract.
 */
import autocannon from "autocannon"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { DEMO_CONTRACT } from "../../src/Demo.ts"
import { WEBHOOK_SECRET } from "../smoke/harness.ts"
import { cpuTicks } from "./process.ts"

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
