/**
 * `npm run bench`: the whole service in this process against the real PostgreSQL, NATS and an anvil devnet
 * (the test harness), measured from the outside over HTTP. Prints a Markdown table; docs/benchmarks.md keeps a run.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Layer, Logger, LogLevel } from "effect"
import { randomBytes } from "node:crypto"
import { App, appHarness, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"
import { checkoutOf, mine, mintedEvent, paymentStatus, sendPayload } from "../support/payments.ts"

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
const summary = (name: string, samples: Array<number>, wallMs: number) => {
  const s = [...samples].sort((a, b) => a - b)
  return `| ${name} | ${samples.length} | ${(samples.length / (wallMs / 1000)).toFixed(1)} | ${percentile(s, 50).toFixed(1)} | ${percentile(s, 95).toFixed(1)} | ${percentile(s, 99).toFixed(1)} |`
}
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([d, a]) => [Duration.toMillis(d), a] as const)

/** Runs `n` effects with the given concurrency, returning per-call latencies (ms) and the wall time. */
const load = <E, R>(n: number, concurrency: number, f: (i: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    const samples = yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => Effect.map(timed(f(i)), ([ms]) => ms), { concurrency })
    return { samples, wall: performance.now() - started }
  })

const bench = Effect.gen(function*() {
  const app: Harness = yield* App
  yield* registerContractAndPlan(app, "bench", { native: 10n ** 15n, token: 1_000_000n })
  const rows: Array<string> = []
  const rssBefore = process.memoryUsage().rss

  const checkout = (user: string, account: number) =>
    Effect.map(app.request("POST", "/v1/billing/checkout", {
      token: app.token(user),
      body: { plan_slug: "bench", wallet_address: devAccount(account).address, token: "native" }
    }), checkoutOf)

  const checkouts = yield* load(300, 16, (i) => checkout(`bench-checkout-${i}`, 1))
  rows.push(summary("checkout (new, gas estimated on anvil)", checkouts.samples, checkouts.wall))

  const replays = yield* load(300, 16, (i) => checkout(`bench-checkout-${i}`, 1))
  rows.push(summary("checkout (idempotent replay)", replays.samples, replays.wall))

  const plans = yield* load(1000, 32, () => app.request("GET", "/v1/billing/plans"))
  rows.push(summary("GET /v1/billing/plans", plans.samples, plans.wall))

  // Settlement: pay 40 checkouts on chain, one webhook each, then mine; time from webhook to confirmed.
  const paid = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
    Effect.gen(function*() {
      const c = yield* checkout(`bench-pay-${i}`, 2 + (i % 6))
      const [receipt] = yield* sendPayload(app, c, 2 + (i % 6))
      return { c, receipt: receipt! }
    }))
  const started = performance.now()
  yield* Effect.forEach(paid, ({ c, receipt }) => app.webhook(mintedEvent(PASS, receipt, c.order_id)), { concurrency: 8 })
  yield* mine(app, 2)
  const confirmedAt = yield* Effect.forEach(paid, ({ c }) =>
    Effect.gen(function*() {
      while ((yield* paymentStatus(c.transaction_id)).status !== "confirmed") yield* Effect.sleep("20 millis")
      return performance.now() - started
    }), { concurrency: "unbounded" })
  rows.push(summary("webhook → confirmed (2 confirmations, one SQL transaction each)", confirmedAt, Math.max(...confirmedAt)))

  // Last: these point at transactions that do not exist, so the processor retries and dead-letters them afterwards.
  const event = { type: "payment.minted", contract: PASS, network: "anvil", log_index: 0 }
  const hooks = yield* load(1000, 32, () => app.webhook({ ...event, tx_hash: `0x${randomBytes(32).toString("hex")}` }))
  rows.push(summary("webhook intake (verify + JetStream publish)", hooks.samples, hooks.wall))

  const rssAfter = process.memoryUsage().rss
  yield* Effect.sync(() => {
    console.log("| operation | n | per second | p50 ms | p95 ms | p99 ms |")
    console.log("| --- | --- | --- | --- | --- | --- |")
    for (const row of rows) console.log(row)
    console.log(`\nRSS of the whole process (service + load generator): ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, ${(rssAfter / 2 ** 20).toFixed(0)} MiB after`)
  })
})

bench.pipe(Effect.provide(Layer.fresh(appHarness())), Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None), NodeRuntime.runMain)
