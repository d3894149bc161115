/**
 * RPC failover under load, end to end: network `anvil` has two endpoints, a proxy to the devnet (primary) and
 * the devnet itself (secondary). While payments flow (some with webhooks, the rest found by the listener) the
 * primary dies (connections refused) or answers HTTP 500. Every payment is still confirmed exactly once, the
 * failover shows in `GET /v1/metrics`, the dead primary is probed a bounded number of times, and once it is
 * back it leads again.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Clock, Duration, Effect, Ref, Schedule } from "effect"
import { Nats } from "../../services/Nats.ts"
import { App, appHarness, eventually, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"
import { scrape, type Sample, total } from "../support/metrics.ts"
import { checkoutOf, mine, mintedEvent, sendPayload, unbalancedLedgerTransactions, waitForStatus } from "../support/payments.ts"
import { rpcProxy } from "../support/rpcProxy.ts"

const PRICES = { native: 10n ** 16n, token: 1_000_000n }
const POLL_MS = 200
const COOLDOWN_MS = 300
const PRIMARY = { network: "anvil", endpoint: "0" }
const SECONDARY = { network: "anvil", endpoint: "1" }

/** Checks out and pays from dev account `account`; a webhook only when asked, otherwise the listener must find it. */
const pay = (app: Harness, plan: string, user: string, account: number, webhook: boolean) =>
  Effect.gen(function*() {
    const res = yield* app.request("POST", "/v1/billing/checkout", {
      token: app.token(user),
      body: { plan_slug: plan, wallet_address: devAccount(account).address, token: "native" }
    })
    assert.strictEqual(res.status, 201, JSON.stringify(res.body))
    const checkout = checkoutOf(res)
    const [receipt] = yield* sendPayload(app, checkout, account)
    assert.strictEqual(receipt!.status, "success")
    if (webhook) assert.strictEqual((yield* app.webhook(mintedEvent(PASS, receipt!, checkout.order_id))).status, 202)
    return checkout.transaction_id
  })

/** One payment per account, each in its own block, every other one announced by webhook; one more block confirms the last. */
const payBatch = (app: Harness, plan: string, tag: string, accounts: ReadonlyArray<number>) =>
  Effect.forEach(accounts, (account, i) => pay(app, plan, `${tag}-${i}`, account, i % 2 === 0)).pipe(Effect.tap(() => mine(app, 1)))

/** Confirmed, one ledger transaction each, ledger balanced, nothing dead-lettered. */
const settledOnce = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const nats = yield* Nats
    yield* Effect.forEach(ids, (id) => waitForStatus(id, "confirmed"), { discard: true })
    const rows = yield* sql<{ payment_id: string; n: number }>`SELECT payment_id, count(*)::int AS n FROM ledger_transactions
      WHERE payment_id IN ${sql.in(ids)} GROUP BY payment_id`
    assert.strictEqual(rows.length, ids.length, "every payment has a ledger transaction")
    assert.isTrue(rows.every((r) => r.n === 1), `one ledger transaction per payment: ${JSON.stringify(rows)}`)
    assert.strictEqual((yield* unbalancedLedgerTransactions).length, 0)
    const dlq = yield* nats.use("dlq info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.dlq))
    assert.strictEqual(dlq.state.messages, 0, "no message dead-lettered")
  })

/** Polls the metrics endpoint finely (the measurement's resolution) until `check` holds. */
const metricsUntil = (app: Harness, check: (m: ReadonlyArray<Sample>) => boolean, what: string) =>
  scrape(app.baseUrl).pipe(
    Effect.filterOrFail(check, () => new Error(`timed out waiting for ${what}`)),
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo(Duration.seconds(20))))
  )

const failovers = (m: ReadonlyArray<Sample>) => total(m, "billing_rpc_failovers_total", { network: "anvil", from: "0", to: "1" })
const primaryErrors = (m: ReadonlyArray<Sample>) => total(m, "billing_rpc_errors_total", { ...PRIMARY, retryable: "true" })
const successes = (m: ReadonlyArray<Sample>, endpoint: typeof PRIMARY) =>
  total(m, "billing_rpc_requests_total", { ...endpoint, outcome: "success" })

interface Point {
  /** Millis since the timeline started. */
  readonly at: number
  readonly failovers: number
  readonly errors: number
}

/** Scrapes the metrics every 10 ms (the measurements' resolution) until `done` holds for the points so far. */
const timeline = (app: Harness, done: (points: ReadonlyArray<Point>) => boolean) =>
  Effect.gen(function*() {
    const points = yield* Ref.make<ReadonlyArray<Point>>([])
    const start = yield* Clock.currentTimeMillis
    const step = Effect.gen(function*() {
      const m = yield* scrape(app.baseUrl)
      const point = { at: (yield* Clock.currentTimeMillis) - start, failovers: failovers(m), errors: primaryErrors(m) }
      return yield* Ref.updateAndGet(points, (ps) => [...ps, point])
    })
    return yield* step.pipe(
      Effect.filterOrFail(done, () => new Error("timeline: condition never held")),
      Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo(Duration.seconds(20))))
    )
  })

/** When the dead primary was tried: increases of its error count, those closer than 100 ms taken as one burst. */
const probeBursts = (points: ReadonlyArray<Point>) =>
  points.flatMap((p, i) => (i > 0 && p.errors > points[i - 1]!.errors ? [p.at] : []))
    .filter((at, i, all) => i === 0 || at - all[i - 1]! > 100)

const scenario = (breakWith: "down" | "fail") =>
  Effect.gen(function*() {
    const app = yield* App
    const plan = `plan-${breakWith}`
    yield* registerContractAndPlan(app, plan, PRICES)
    const proxy = yield* rpcProxy(app.devnet.info.rpc_url)
    const switched = yield* app.request("POST", "/v1/billing/overview/crypto-config", {
      token: app.token("fin", ["finance_ops"]),
      body: { rpc_endpoints: { anvil: [proxy.url, app.devnet.info.rpc_url] } }
    })
    assert.strictEqual(switched.status, 200)
    yield* eventually(proxy.requests, (n) => n > 0, "the new primary to take traffic")
    const early = yield* payBatch(app, plan, `${breakWith}-a`, [1, 2])

    // Break the primary while payments are in flight; keep it broken for three probes (two benches).
    const m0 = yield* scrape(app.baseUrl)
    const received0 = yield* proxy.requests
    yield* proxy.setMode(breakWith)
    const [points, during] = yield* Effect.all([
      timeline(app, (ps) => probeBursts([{ at: 0, failovers: 0, errors: primaryErrors(m0) }, ...ps]).length >= 3),
      payBatch(app, plan, `${breakWith}-b`, [3, 4, 5]).pipe(Effect.tap((ids) => settledOnce([...early, ...ids])))
    ], { concurrency: "unbounded" })
    const m1 = yield* scrape(app.baseUrl)
    const failoverAt = points.find((p) => p.failovers > failovers(m0))?.at
    const bursts = probeBursts([{ at: 0, failovers: 0, errors: primaryErrors(m0) }, ...points])
    const outageMs = points[points.length - 1]!.at
    const failedRequests = primaryErrors(m1) - primaryErrors(m0)
    const receivedWhileBroken = (yield* proxy.requests) - received0
    const viaSecondary = successes(m1, SECONDARY) - successes(m0, SECONDARY)
    assert.isDefined(failoverAt, "billing_rpc_failovers_total{from=0,to=1} grew")
    assert.isBelow(failoverAt!, 3 * POLL_MS, "failover within three listener polls")
    assert.strictEqual(total(m1, "billing_rpc_endpoint_healthy", PRIMARY), 0, "the primary is reported unhealthy")
    // Not hammered: after each failed probe the primary rests a bench, twice as long as the one before. A burst
    // is seen up to one scrape late (tens of ms, more on a loaded machine): hence the tolerance.
    const TOLERANCE = 100
    const [gap1, gap2] = [bursts[1]! - bursts[0]!, bursts[2]! - bursts[1]!]
    assert.isAtLeast(gap1, COOLDOWN_MS - TOLERANCE, `bursts at ${bursts}`)
    assert.isAtLeast(gap2, 2 * COOLDOWN_MS - TOLERANCE, `bursts at ${bursts}`)
    assert.isAbove(gap2, gap1, `the bench doubled: bursts at ${bursts}`)
    // Each probe is one request, or a few when calls were already in flight as a bench ended.
    const concurrentCallers = 3
    const bound = concurrentCallers * bursts.length
    assert.isAtMost(failedRequests, bound, `requests the dead primary got (${failedRequests})`)
    assert.isAbove(viaSecondary, failedRequests * 3, "the secondary carried the traffic")
    if (breakWith === "fail") {
      // The proxy counts on arrival, the service on the answer: one request may be in flight between them. Under heavy
      // load the scrape windows of the two counts drift apart (seen: 3 arrivals against 6 errors), so only the upper
      // bound is asserted: the broken primary is never sent more than the service saw fail.
      assert.isAbove(receivedWhileBroken, 0)
      assert.isAtMost(receivedWhileBroken, failedRequests + 1)
    } else assert.strictEqual(receivedWhileBroken, 0, "a closed port receives nothing")

    // Repair: once its bench ends the primary is probed, recovers and leads again.
    const [backTime] = yield* Effect.timed(Effect.gen(function*() {
      yield* proxy.setMode("proxy")
      yield* metricsUntil(app, (m) => total(m, "billing_rpc_endpoint_healthy", PRIMARY) === 1, "the primary to recover")
    }))
    const m2 = yield* scrape(app.baseUrl)
    const receivedAtRepair = yield* proxy.requests
    const late = yield* payBatch(app, plan, `${breakWith}-c`, [6, 7])
    yield* settledOnce([...early, ...during, ...late])
    const m3 = yield* scrape(app.baseUrl)
    const primaryAfter = successes(m3, PRIMARY) - successes(m2, PRIMARY)
    const secondaryAfter = successes(m3, SECONDARY) - successes(m2, SECONDARY)
    assert.isAbove((yield* proxy.requests) - receivedAtRepair, 0)
    assert.isAbove(primaryAfter, 0)
    // Back on the primary: the secondary idles (a call or two may have been in flight when the bench ended).
    assert.isAtMost(secondaryAfter, 2)
    assert.isBelow(secondaryAfter * 5, primaryAfter)

    yield* Effect.logWarning(`rpc failover (${breakWith}) measured`).pipe(Effect.annotateLogs({
      failover_ms: failoverAt,
      failover_polls: Math.ceil(failoverAt! / POLL_MS),
      outage_ms: outageMs,
      probe_bursts_ms: bursts.join(","),
      requests_to_dead_primary: failedRequests,
      bound,
      calls_via_secondary: viaSecondary,
      back_to_primary_ms: Duration.toMillis(backTime),
      primary_calls_after_repair: primaryAfter,
      secondary_calls_after_repair: secondaryAfter
    }))
  })

layer(
  appHarness({ env: { BILLING_RPC_COOLDOWN: `${COOLDOWN_MS} millis`, BILLING_LISTENER_POLL: `${POLL_MS} millis` } }),
  { timeout: 60_000, excludeTestServices: true }
)("RPC failover while payments flow", (it) => {
  it.scoped("the primary refuses connections: all confirmed once, failover bounded, primary preferred after it returns", () =>
    scenario("down"))

  it.scoped("the primary answers HTTP 500: same", () => scenario("fail"))
})
