/**
 * Payment pipeline bench (issue 9, items 3, 4 and 6): the compiled service as its own process (as `npm start` runs it)
 * on the test harness's database, stream prefix and anvil; the harness in this process serves only the API the driver
 * prepares with. N checkouts paid ahead of time by MultiPayer (many payments per block) and mined deep.
 * (a) throughput: N webhooks published at once straight to JetStream, timed until all are confirmed (SQL count);
 * (b) latency: a steady `rate`/s of webhooks for deep transactions, received → confirmed per payment (SQL poll);
 * (c) the floor in the same run: bench/floors/g_pipeline.mjs, the same receipts + head reads (JSON-RPC batch) and
 * the same rows written, multi-row, one transaction per batch.
 * `npm run build` first. BENCH_SERVICE_FLAGS adds node flags to the service (`--cpu-prof --cpu-prof-dir=/tmp/pprof`).
 *   npx tsx test/bench/pipeline.ts [--n=3000] [--rate=500] [--secs=10] [--steady=100]
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Effect, Fiber, Layer, Logger, LogLevel } from "effect"
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { decodeEventLog, type TransactionReceipt } from "viem"
import { Nats } from "../../services/Nats.ts"
import { WebhookStream } from "../../services/StreamCodecs.ts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { CheckoutView } from "../../src/domain/Checkout.ts"
import type { QueuedWebhook } from "../../src/domain/Events.ts"
import { App, appHarness, CONFIRMATIONS, decode, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { deployMultiPayer } from "../support/multiPayer.ts"
import { num, runFloor } from "./floors.ts"
import { cpuSnapshot, cpuTicks, cpuTicksBetween, memoryMiB } from "./process.ts"
import { COMPILED_ENTRY, spawnService, START_FLAGS } from "./startup.ts"

/** The other processes the pipeline keeps busy, by command name. */
const OTHERS = ["postgres", "nats-server", "anvil"] as const

export interface PipelineOptions {
  /** Payments of the throughput run (and of the floor). */
  readonly n: number
  /** Webhooks per second of the latency run. */
  readonly rate: number
  readonly secs: number
  /** A second latency run at a rate below what the pipeline sustains (latency without a queue); 0: none. */
  readonly steadyRate: number
}

export interface Latency {
  readonly rate: number
  readonly n: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export interface PipelineFigures {
  readonly n: number
  readonly paymentsPerSec: number
  readonly floorPaymentsPerSec: number
  readonly ratio: number
  readonly latency: Latency
  readonly steadyLatency: Latency | undefined
  /** Peak RSS (VmHWM) of the service process through (a) and (b). */
  readonly peakRssMiB: number
  /** CPU time of the service process per payment during (a): robust when other work shares the machine. */
  readonly cpuMsPerPayment: number
  /** CPU time of this process (the driver: publishing and polling) per payment during (a). */
  readonly driverCpuMsPerPayment: number
  /** CPU per payment of the machine's PostgreSQL, nats-server and anvil processes during (a). */
  readonly othersCpuMsPerPayment: Readonly<Record<string, number>>
  /** Outbox rows not yet published when (a) ended. */
  readonly outboxBacklog: number
  /** Rows one confirmation wrote, per table (the floor writes the same). */
  readonly rowsPerPayment: string
}

interface Paid {
  readonly txHash: `0x${string}`
  readonly logIndex: number
  readonly orderId: string
  readonly transactionId: string
}

const PER_TX = 50
// not ../support/payments.ts: it imports @effect/vitest, which needs a vitest worker
const checkoutOf = decode(CheckoutView)
const mine = (app: Harness, blocks: number) => Effect.promise(() => app.devnet.testClient.mine({ blocks }))
const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN

const mintedLogs = (receipt: TransactionReceipt) =>
  receipt.logs.flatMap((log) => {
    const event = decodeEventLog({ abi: SubscriptionPassAbi, data: log.data, topics: log.topics })
    return event.eventName === "Minted" ? [{ orderId: event.args.orderId.toLowerCase(), logIndex: log.logIndex }] : []
  })

/** `count` checkouts paid on chain, PER_TX orders per transaction, then mined deep. */
const prepare = (app: Harness, payer: Effect.Effect.Success<ReturnType<typeof deployMultiPayer>>, tag: string, count: number) =>
  Effect.gen(function*() {
    const checkouts = yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
      Effect.map(app.request("POST", "/v1/billing/checkout", {
        token: app.token(`${tag}-${i}`),
        body: { plan_slug: "bench", wallet_address: payer.address, network: "anvil", token: "native" }
      }), checkoutOf), { concurrency: 16 })
    const paid: Array<Paid> = []
    for (let i = 0; i < checkouts.length; i += PER_TX) {
      const chunk: ReadonlyArray<CheckoutView> = checkouts.slice(i, i + PER_TX)
      const receipt = yield* payer.payAll(chunk).pipe(Effect.orDie)
      const byOrder = new Map(chunk.map((c) => [c.order_id.toLowerCase(), c.transaction_id]))
      for (const log of mintedLogs(receipt)) {
        paid.push({ txHash: receipt.transactionHash, logIndex: log.logIndex, orderId: log.orderId, transactionId: byOrder.get(log.orderId)! })
      }
    }
    yield* mine(app, CONFIRMATIONS)
    return paid
  })

const hookOf = (p: Paid, run: string): QueuedWebhook => ({
  source: "webhook",
  webhook_id: `msg_${run}_${p.transactionId}`,
  received_at: new Date().toISOString(),
  event: { type: "payment.minted", contract: PASS, network: "anvil", tx_hash: p.txHash, log_index: p.logIndex, order_id: p.orderId }
})

/** The service as `npm start` runs it, on the harness's database, streams and anvil, with a production configuration. */
const serviceProcess = (app: Harness) =>
  spawnService({
    ...app.env,
    BILLING_ROLES: "api,workers",
    BILLING_RPC_CONFIG: JSON.stringify({ anvil: { chain_id: app.devnet.info.chain_id, rpc: [app.devnet.info.rpc_url], confirmations: CONFIRMATIONS } }),
    // the devnet's signer is refused outside the devnet; these workers sign no quotes
    BILLING_SIGNER_PRIVATE_KEY: `0x${randomBytes(32).toString("hex")}`
  }, [...START_FLAGS, ...(process.env["BENCH_SERVICE_FLAGS"]?.split(" ").filter((f) => f !== "") ?? []), COMPILED_ENTRY, "serve"])

export const pipelineBench = (options: PipelineOptions) =>
  Effect.gen(function*() {
    const app = yield* App
    const nats = yield* Nats
    const sql = yield* SqlClient.SqlClient
    const run = randomBytes(4).toString("hex")
    // started first, as the harness's own workers were: its listener's first tick finds an empty chain
    const service = yield* serviceProcess(app).pipe(Effect.orDie)
    yield* registerContractAndPlan(app, "bench", { native: 10n ** 12n, token: 1_000_000n })
    const payer = yield* deployMultiPayer(app.devnet, 5)
    const latencyCount = options.rate * options.secs
    const forThroughput = yield* prepare(app, payer, `t${run}`, options.n)
    const forLatency = yield* prepare(app, payer, `l${run}`, latencyCount)
    const forSteady = yield* prepare(app, payer, `s${run}`, options.steadyRate * options.secs)
    yield* Effect.logWarning(`prepared ${forThroughput.length} + ${forLatency.length} payments`)

    const confirmedAmong = (ids: ReadonlyArray<string>) =>
      sql<{ id: string }>`SELECT id::text AS id FROM payment_transactions WHERE status = 'confirmed' AND id IN ${sql.in(ids)}`.pipe(
        Effect.orDie,
        Effect.map((rows) => rows.map((r) => r.id))
      )
    // every confirmed payment, cheap to poll (an id list of thousands would cost PostgreSQL more than the work measured)
    const confirmedTotal = sql<{ n: number }>`SELECT count(*)::int AS n FROM payment_transactions WHERE status = 'confirmed'`.pipe(
      Effect.orDie,
      Effect.map((rows) => rows[0]?.n ?? 0)
    )
    const publish = (p: Paid) => nats.publishMessage(WebhookStream, hookOf(p, run)).pipe(Effect.orDie)

    const TABLES = ["processed_events", "ledger_transactions", "ledger_postings", "subscriptions", "subscription_grants", "audit_log", "notifications", "outbox"] as const
    const rowCounts = Effect.forEach(TABLES, (t) =>
      sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(t)}`.pipe(Effect.orDie, Effect.map((rows) => [t, rows[0]?.n ?? 0] as const)))
    const before = yield* rowCounts

    // (a) throughput
    const throughput = yield* Effect.gen(function*() {
      const ids = forThroughput.map((p) => p.transactionId)
      const confirmedBefore = yield* confirmedTotal
      const started = performance.now()
      const window0 = process.hrtime.bigint() / 1000n
      const cpu0 = process.cpuUsage()
      const service0 = cpuTicks(service.pid)
      const others0 = cpuSnapshot(OTHERS)
      yield* Effect.forEach(forThroughput, publish, { concurrency: 256, discard: true })
      const published = performance.now() - started
      // nothing else is published during (a): every payment confirmed since it began is one of these
      while ((yield* confirmedTotal) - confirmedBefore < ids.length) yield* Effect.sleep("20 millis")
      const seconds = (performance.now() - started) / 1000
      const cpu = process.cpuUsage(cpu0)
      const driverMsPerPayment = (cpu.user + cpu.system) / 1000 / ids.length
      // ticks are 1/100 s
      const serviceMsPerPayment = ((cpuTicks(service.pid) - service0) * 10) / ids.length
      const others1 = cpuTicksBetween(OTHERS, others0, cpuSnapshot(OTHERS))
      const othersMsPerPayment = Object.fromEntries(OTHERS.map((c) => [c, (others1[c]! * 10) / ids.length]))
      // the phase's window on the monotonic clock, to cut a --cpu-prof profile to it
      if (process.env["PIPELINE_PROFILE_WINDOW"] !== undefined) console.log(`profile window ${window0} ${process.hrtime.bigint() / 1000n}`)
      // events still to publish when the last payment confirmed: work the window did not pay for
      const [unsent] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL AND dead_lettered_at IS NULL`.pipe(Effect.orDie)
      return { seconds, publishedMs: published, serviceMsPerPayment, driverMsPerPayment, othersMsPerPayment, outboxBacklog: unsent?.n ?? 0 }
    })
    const after = yield* rowCounts
    // rows one confirmation writes, for the floor to write the same
    const rows = after.map(([t, n], i) => `${t}:${((n - before[i]![1]) / options.n).toFixed(2)}`).join(",")
    yield* Effect.logWarning(`throughput: ${options.n} in ${throughput.seconds.toFixed(2)} s (published in ${throughput.publishedMs.toFixed(0)} ms)`)

    // (b) latency at a steady rate: every 10 ms publish the next slice; poll the unconfirmed ones every 5 ms
    const latencyAt = (rate: number, paid: ReadonlyArray<Paid>) => Effect.gen(function*() {
      const sentAt = new Map<string, number>()
      const samples: Array<number> = []
      const perTick = rate / 100
      const start = performance.now()
      const publisher = yield* Effect.fork(Effect.gen(function*() {
        let sent = 0
        while (sent < paid.length) {
          const due = Math.min(paid.length, Math.floor(((performance.now() - start) / 10 + 1) * perTick))
          const slice = paid.slice(sent, due)
          sent = due
          yield* Effect.forEach(slice, (p) => Effect.zipRight(Effect.sync(() => sentAt.set(p.transactionId, performance.now())), publish(p)), {
            concurrency: "unbounded",
            discard: true
          })
          yield* Effect.sleep("10 millis")
        }
      }))
      while (samples.length < paid.length) {
        const waiting = [...sentAt.keys()]
        if (waiting.length > 0) {
          const done = yield* confirmedAmong(waiting)
          const now = performance.now()
          for (const id of done) {
            samples.push(now - sentAt.get(id)!)
            sentAt.delete(id)
          }
        }
        yield* Effect.sleep("5 millis")
      }
      yield* Fiber.interrupt(publisher)
      const sorted = samples.sort((a, b) => a - b)
      return { rate, n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN } satisfies Latency
    })
    const latency = yield* latencyAt(options.rate, forLatency)
    const peakRssMiB = memoryMiB(service.pid, "VmHWM")
    const steadyLatency = forSteady.length === 0 ? undefined : yield* latencyAt(options.steadyRate, forSteady)

    // (c) the floor: the same receipts and writes for the same N
    const file = join(tmpdir(), `g_pipeline_${run}.json`)
    writeFileSync(file, JSON.stringify({ rpc: app.devnet.info.rpc_url, payments: forThroughput }))
    const floor = yield* runFloor("g_pipeline.mjs", [`--input=${file}`, `--rows=${rows}`]).pipe(Effect.orDie)

    const paymentsPerSec = options.n / throughput.seconds
    const floorPaymentsPerSec = num(floor, "payments_per_sec")
    return {
      n: options.n,
      paymentsPerSec,
      floorPaymentsPerSec,
      ratio: paymentsPerSec / floorPaymentsPerSec,
      latency,
      steadyLatency,
      peakRssMiB,
      cpuMsPerPayment: throughput.serviceMsPerPayment,
      driverCpuMsPerPayment: throughput.driverMsPerPayment,
      othersCpuMsPerPayment: throughput.othersMsPerPayment,
      outboxBacklog: throughput.outboxBacklog,
      rowsPerPayment: rows
    } satisfies PipelineFigures
  })

const arg = (name: string, fallback: number) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found === undefined ? fallback : Number(found.slice(name.length + 3))
}

/** The bench on a harness of its own (fresh database, stream prefix and anvil). */
export const runPipeline = (options: PipelineOptions) =>
  pipelineBench(options).pipe(
    Effect.provide(Layer.fresh(appHarness({ roles: ["api"], env: { BILLING_LISTENER_POLL: "1 hour", APP_BILLING_FINANCE_OPS_USER_ID: "finance-ops", ...pipelineEnv() } }))),
    Effect.scoped
  )

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = { n: arg("n", 3000), rate: arg("rate", 500), secs: arg("secs", 10), steadyRate: arg("steady", 100) }
  runPipeline(options).pipe(
    Effect.tap((f) =>
      Effect.sync(() => {
        console.log("| scenario | service | floor | ratio |")
        console.log("| --- | --- | --- | --- |")
        console.log(`| ${f.n} webhooks at once → confirmed | ${f.paymentsPerSec.toFixed(0)} payments/s | ${f.floorPaymentsPerSec.toFixed(0)} payments/s | ${f.ratio.toFixed(2)} |`)
        for (const l of [f.latency, f.steadyLatency]) {
          if (l !== undefined) console.log(`| steady ${l.rate}/s, received → confirmed (${l.n}) | p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, max ${l.max.toFixed(1)} ms | | |`)
        }
        console.log(`\nCPU per payment during (a): service ${f.cpuMsPerPayment.toFixed(2)} ms, driver ${f.driverCpuMsPerPayment.toFixed(2)} ms, ${othersText(f)}; outbox rows unsent at its end: ${f.outboxBacklog}; machine load average ${loadavg()[0]!.toFixed(1)}`)
        console.log(`peak RSS of the service through (a) and (b): ${f.peakRssMiB} MiB`)
        console.log(JSON.stringify(f))
      })
    ),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    NodeRuntime.runMain
  )
}

/** The other processes' CPU per payment, as text. */
export const othersText = (f: PipelineFigures) =>
  Object.entries(f.othersCpuMsPerPayment).map(([c, ms]) => `${c} ${ms.toFixed(2)} ms`).join(", ")

/** Service settings for the run, from this process's BILLING_* environment (to compare settings without editing). */
function pipelineEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith("BILLING_") && e[1] !== undefined))
}
