/**
 * Fault suite item 6: a flood of malformed, mis-signed, replayed, oversized and stale webhooks with the valid ones of
 * real payments mixed in, against the whole service (test/support/app.ts). Every request must get its answer (no
 * 5xx), every paid order be confirmed exactly once, and nothing be written or queued for a bad one.
 *
 *   npx tsx test/chaos/hostile.ts --total=100000 --seed=7
 */
import { Duration, Effect, Schedule } from "effect"
import { pathToFileURL } from "node:url"
import { Nats } from "../../services/Nats.ts"
import { App, appHarness, CONFIRMATIONS, eventually, type Harness, PASS, registerContractAndPlan, WEBHOOK_SECRET } from "../support/app.ts"
import { mine, waitForStatus } from "../support/payments.ts"
import { flood, type FloodResult } from "./hostileFlood.ts"
import { exactlyOnce, ledgerBalanced, outboxDrained, subscriptionsConsistent } from "./invariants.ts"
import { payOrders, type RealPayment } from "./realPayments.ts"
import { type Counts, diffCounts, rowCounts, times } from "./rowCounts.ts"
import { passed, type ScenarioResult, scenarioLine } from "./Scenario.ts"

export interface HostileOptions {
  readonly total: number
  readonly seed: number
  /** Concurrent connections of the flood. */
  readonly sockets?: number
  readonly onProgress?: (line: string) => void
}

export interface HostileResult extends ScenarioResult {
  readonly flood: FloodResult
  /** What the reference payment wrote, per table: the unit the other payments' rows are compared in. */
  readonly rowsPerPayment: Counts
  /** Peak RSS of this process (the service, the flood and the harness share it), in MiB. */
  readonly peakRssMiB: number
}

const PLAN = "hostile"
/** A few dozen real payments in a short run, a few hundred in a long one. */
export const paymentsFor = (total: number) => Math.max(10, Math.min(300, Math.round(total / 150)))
/** How long the service may take to settle everything once the flood is over. */
const SETTLE = Duration.seconds(90)

/** Heap after a full collection when node runs with --expose-gc (a leak shows as growth here, not in RSS). */
const memory = () => {
  const collect: unknown = Reflect.get(globalThis, "gc")
  if (typeof collect === "function") collect()
  const m = process.memoryUsage()
  return `rss ${Math.round(m.rss / 2 ** 20)} MiB, heap ${Math.round(m.heapUsed / 2 ** 20)} MiB${typeof collect === "function" ? " after GC" : ""}`
}

/** Waits (bounded) until `done` holds; a timeout is recorded as a violation, so the checks after it still run. */
const settled = (violations: Array<string>) =>
<A, R>(what: string, effect: Effect.Effect<A, never, R>, done: (a: A) => boolean) =>
  effect.pipe(
    Effect.filterOrFail(done, () => `not settled within ${Duration.format(SETTLE)}: ${what}`),
    Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo(SETTLE))),
    Effect.catchAll((why) => Effect.sync(() => violations.push(why))),
    Effect.asVoid
  )

const webhooksStream = Effect.gen(function*() {
  const nats = yield* Nats
  const stream = yield* nats.use("streams.info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.webhooks))
  const consumer = yield* nats.use("consumers.info", ({ jsm }) =>
    jsm.consumers.info(nats.subjects.streams.webhooks, nats.subjects.durables.paymentProcessorWebhooks))
  return { messages: stream.state.messages, unacked: consumer.num_pending + consumer.num_ack_pending }
}).pipe(Effect.orDie)

/** The reference payment: what one valid webhook of a paid order writes, row by row, table by table. */
const calibrate = (app: Harness) =>
  Effect.gen(function*() {
    const before = yield* rowCounts
    const [reference] = yield* payOrders(app, PLAN, "hostile-ref", 1)
    yield* mine(app, CONFIRMATIONS + 1)
    const sent = yield* app.webhook(reference!.event)
    if (sent.status !== 202) return yield* Effect.dieMessage(`reference webhook answered ${sent.status}`)
    yield* waitForStatus(reference!.transactionId, "confirmed")
    yield* eventually(outboxDrained, (o) => o.pending === 0, "the reference's outbox rows published").pipe(Effect.orDie)
    return { reference: reference!, perPayment: diffCounts(yield* rowCounts, before) }
  })

export const hostileScenario = (options: HostileOptions) =>
  Effect.gen(function*() {
    const app = yield* App
    const say = options.onProgress ?? (() => {})
    yield* registerContractAndPlan(app, PLAN, { native: 10n ** 15n, token: 1_000n })
    const { reference, perPayment } = yield* calibrate(app)
    const start = yield* rowCounts
    const count = paymentsFor(options.total)
    const paid: ReadonlyArray<RealPayment> = yield* payOrders(app, PLAN, "hostile", count - 1)
    yield* mine(app, CONFIRMATIONS + 1)
    say(`${count} payments on chain; flooding ${options.total} requests`)

    const result = yield* flood({
      baseUrl: app.baseUrl,
      total: options.total,
      seed: options.seed,
      sockets: options.sockets ?? 32,
      secret: WEBHOOK_SECRET,
      contract: PASS,
      valid: paid.map((p) => p.event),
      onProgress: (n) => say(`${n} requests answered, ${memory()}`)
    })
    const violations: Array<string> = []
    if (result.serverErrors > 0) violations.push(`${result.serverErrors} answers were 5xx`)
    for (const [kind, tally] of Object.entries(result.byKind)) {
      if (tally.wrong > 0) violations.push(`${kind}: ${tally.wrong} of ${tally.sent} answered wrongly, e.g. ${tally.examples.join("; ")}`)
    }

    // Settle: every paid order confirmed, the queue consumed, the outbox published (each bounded).
    const ids = [reference, ...paid].map((p) => p.transactionId)
    yield* mine(app, CONFIRMATIONS)
    const settle = settled(violations)
    yield* settle("paid orders confirmed", exactlyOnce(ids).pipe(Effect.orDie), (r) => r.lost.length === 0)
    yield* settle("webhooks consumed", webhooksStream, (s) => s.unacked === 0)
    yield* settle("outbox drained", outboxDrained.pipe(Effect.orDie), (o) => o.pending === 0)

    // Nothing for a bad one: the stream holds the valid ids only, and the tables hold what the payments explain.
    const stream = yield* webhooksStream
    const validIds = result.validIds + 1 // the reference's
    if (stream.messages !== validIds) violations.push(`webhooks stream holds ${stream.messages} messages for ${validIds} valid webhook ids`)
    const explained = times(perPayment, paid.length)
    const written = diffCounts(yield* rowCounts, start)
    for (const table of Object.keys(explained)) {
      if (written[table] !== explained[table]) {
        violations.push(`${table}: ${written[table]} rows written, ${explained[table]} explained by ${paid.length} payments`)
      }
    }
    const once = yield* Effect.orDie(exactlyOnce(ids))
    const unbalanced = yield* Effect.orDie(ledgerBalanced)
    const outbox = yield* Effect.orDie(outboxDrained)
    if (outbox.dead.length > 0) violations.push(`outbox dead letters: ${outbox.dead.join(", ")}`)
    violations.push(...(yield* Effect.orDie(subscriptionsConsistent())))
    const faults = Object.entries(result.byKind).reduce((n, [kind, t]) => (kind === "valid" ? n : n + t.sent), 0)
    return {
      name: "hostile webhooks",
      payments: ids.length,
      faults,
      lost: once.lost.length,
      duplicated: once.duplicated.length,
      balanced: unbalanced.length === 0,
      violations,
      flood: result,
      rowsPerPayment: perPayment,
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024)
    } satisfies HostileResult
  })

/** The whole scenario with its own database, stream prefix and devnet, all removed afterwards. */
export const hostileWebhooks = (options: HostileOptions): Promise<HostileResult> =>
  Effect.runPromise(hostileScenario(options).pipe(
    Effect.provide(appHarness({ env: HOSTILE_ENV })),
    Effect.scoped
  ))

/**
 * The chain listener polls once at start and then not for an hour: every payment here must be confirmed by its
 * webhook, sent somewhere in the flood. One finance_ops user takes the notifications the confirmations raise.
 */
export const HOSTILE_ENV = {
  BILLING_LISTENER_POLL: "1 hour",
  APP_BILLING_FINANCE_OPS_USER_ID: "finance-ops"
}

const flag = (name: string, fallback: number) => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  return arg === undefined ? fallback : Number(arg.slice(name.length + 3))
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const total = flag("total", 100_000)
  const seed = flag("seed", 1)
  const started = performance.now()
  hostileWebhooks({ total, seed, onProgress: (line) => console.error(`[hostile] ${line}`) }).then((r) => {
    const wall = (performance.now() - started) / 1000
    console.log(scenarioLine(r))
    for (const [kind, t] of Object.entries(r.flood.byKind).sort()) console.error(`  ${kind}: ${t.sent} sent, ${t.wrong} wrong, slowest ${t.slowestMs} ms`)
    console.error(
      `  flood: ${total} requests in ${r.flood.seconds.toFixed(1)} s (${Math.round(total / r.flood.seconds)} req/s), ` +
        `${r.flood.retried} resent on a closed keep-alive socket, scenario wall ${wall.toFixed(1)} s, peak RSS ${r.peakRssMiB} MiB (service and flood in one process)`
    )
    console.error(`  rows per payment: ${JSON.stringify(r.rowsPerPayment)}`)
    for (const v of r.violations ?? []) console.error(`  VIOLATION ${v}`)
    process.exit(passed(r) ? 0 : 1)
  }, (e) => {
    console.error(e)
    process.exit(2)
  })
}
