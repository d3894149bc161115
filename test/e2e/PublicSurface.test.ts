/**
 * What anyone can reach without a user token, over HTTP against the running service: /readyz answers from the
 * background health snapshot (no RPC request per call, counted at a proxy in front of a node), and /v1/metrics
 * needs BILLING_METRICS_TOKEN, or is 403 unless BILLING_METRICS_PUBLIC=true.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { Anvil } from "../../src/devnet/Anvil.ts"
import { Readiness } from "../../src/http/Public/Api.ts"
import { MetricsAccessConfig } from "../../src/http/MetricsAccess.ts"
import { App, appHarness, decode, errorOf, eventually } from "../support/app.ts"
import { METRICS_TOKEN } from "../support/metrics.ts"
import { rpcProxy, type RpcProxy } from "../support/rpcProxy.ts"

const NETWORK = "probed"

class Probe extends Context.Tag("test/Probe")<Probe, RpcProxy>() {}

/** The app with network `probed` reached only through a counting proxy; listeners and health refreshes are hourly or rarer. */
const harness = Layer.unwrapScoped(Effect.gen(function*() {
  const node = yield* Effect.flatMap(Anvil.freePort, (port) => Anvil.start({ port, chainId: 31_339 })).pipe(
    Effect.retry({ times: 3, while: (e) => e.reason === "Exited" }),
    Effect.orDie
  )
  const proxy = yield* rpcProxy(node.rpcUrl)
  return Layer.merge(
    appHarness({
      env: { BILLING_HEALTH_INTERVAL: "10 minutes", BILLING_LISTENER_POLL: "1 hour" },
      extraNetworks: Effect.succeed({ [NETWORK]: { chain_id: node.chainId, rpc: [proxy.url] } })
    }),
    Layer.succeed(Probe, proxy)
  )
}))

const metrics = (baseUrl: string, authorization?: string) =>
  Effect.promise(async () => {
    const res = await fetch(`${baseUrl}/v1/metrics`, authorization === undefined ? {} : { headers: { authorization } })
    const text = await res.text()
    return { status: res.status, text, contentType: res.headers.get("content-type") ?? "" }
  })

const errorBody = (res: { readonly status: number; readonly text: string }) =>
  errorOf({ status: res.status, body: JSON.parse(res.text) })

describe("BILLING_METRICS_TOKEN", () => {
  const read = (env: Record<string, string>) =>
    Effect.withConfigProvider(MetricsAccessConfig, ConfigProvider.fromMap(new Map(Object.entries(env))))

  it.effect("shorter than 32 characters stops start-up, naming the variable and not the value", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(read({ BILLING_METRICS_TOKEN: "too-short-metrics-secret" }))
      assert.include(String(error), "BILLING_METRICS_TOKEN")
      assert.notInclude(String(error), "too-short-metrics-secret")
      const none = yield* read({})
      assert.deepStrictEqual([none.token._tag, none.public], ["None", false], "unset: no token, not public")
    }))
})

layer(harness, { timeout: 120_000, excludeTestServices: true })("the public surface", (it) => {
  it.effect("GET /readyz answers from the background snapshot: a burst of requests sends no RPC request to the node", () =>
    Effect.gen(function*() {
      const app = yield* App
      const proxy = yield* Probe
      const sql = yield* SqlClient.SqlClient
      // The listener's first ticks (it ticks again at once while behind, then sleeps an hour) are the only other
      // traffic the node gets: wait for its cursor, then until the count holds still for a second.
      yield* eventually(sql`SELECT 1 FROM chain_cursors WHERE network = ${NETWORK}`, (rows) => rows.length === 1, "the listener's first tick")
      const settled = Effect.gen(function*() {
        const a = yield* proxy.requests
        yield* Effect.sleep("1 second")
        return [a, yield* proxy.requests] as const
      })
      yield* eventually(settled, ([a, b]) => a === b, "the listener to go quiet")
      const before = yield* proxy.requests
      assert.isAbove(before, 0)
      const answers = yield* Effect.forEach(Array.from({ length: 50 }), () => app.request("GET", "/readyz"), { concurrency: 10 })
      assert.strictEqual(yield* proxy.requests, before, "50 readiness requests, no RPC request")
      for (const res of answers) {
        const ready = decode(Readiness)(res)
        assert.strictEqual(ready.status, "ok")
        assert.deepStrictEqual(ready.checks[`rpc:${NETWORK}`], { ok: true })
        assert.isTrue(ready.checks["postgres"]?.ok && ready.checks["nats"]?.ok)
        assert.isAtLeast(ready.age_ms, 0)
        assert.isFalse(Number.isNaN(Date.parse(ready.checked_at)))
      }
    }))

  it.effect("GET /v1/metrics with BILLING_METRICS_TOKEN set: 401 without the token or with a wrong one, 200 with it", () =>
    Effect.gen(function*() {
      const app = yield* App
      const refused = [
        yield* metrics(app.baseUrl),
        yield* metrics(app.baseUrl, "Bearer "),
        yield* metrics(app.baseUrl, `Bearer ${METRICS_TOKEN.slice(0, -1)}x`),
        yield* metrics(app.baseUrl, `Bearer ${METRICS_TOKEN}0`),
        yield* metrics(app.baseUrl, `Bearer ${app.admin}`),
        yield* metrics(app.baseUrl, `Basic ${Buffer.from(`prometheus:${METRICS_TOKEN}`).toString("base64")}`)
      ]
      for (const res of refused) {
        assert.strictEqual(res.status, 401, res.text)
        assert.strictEqual(errorBody(res).error, "unauthorized")
        assert.notInclude(res.text, METRICS_TOKEN)
      }
      const ok = yield* metrics(app.baseUrl, `Bearer ${METRICS_TOKEN}`)
      assert.strictEqual(ok.status, 200)
      assert.include(ok.contentType, "text/plain")
      assert.include(ok.text, "billing_subscriptions_active")
    }))

  it.scoped("without a token /v1/metrics is 403 naming BILLING_METRICS_TOKEN, unless BILLING_METRICS_PUBLIC=true", () =>
    Effect.gen(function*() {
      const app = yield* App
      const closed = yield* app.startInstanceWith({ BILLING_METRICS_TOKEN: undefined })
      for (const auth of [undefined, `Bearer ${METRICS_TOKEN}`]) {
        const res = yield* metrics(closed, auth)
        assert.strictEqual(res.status, 403, res.text)
        assert.strictEqual(errorBody(res).error, "forbidden")
        assert.include(errorBody(res).message, "BILLING_METRICS_TOKEN")
      }
      const open = yield* app.startInstanceWith({ BILLING_METRICS_TOKEN: undefined, BILLING_METRICS_PUBLIC: "true" })
      const res = yield* metrics(open)
      assert.strictEqual(res.status, 200)
      assert.include(res.text, "billing_subscriptions_active")
      // The opt-in does not loosen a configured token.
      const both = yield* app.startInstanceWith({ BILLING_METRICS_PUBLIC: "true" })
      assert.strictEqual((yield* metrics(both)).status, 401)
      assert.strictEqual((yield* metrics(both, `Bearer ${METRICS_TOKEN}`)).status, 200)
    }))
})
