import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { freePort } from "../../src/devnet/Anvil.ts"
import { CryptoConfigView } from "../../src/domain/CryptoConfig.ts"
import { Readiness } from "../../src/http/Public/Api.ts"
import { App, appHarness, decode, errorOf, eventually, type Harness } from "../support/app.ts"
import { rpcProxy } from "../support/rpcProxy.ts"

const FINANCE_OPS = "fin-ops-1"
const PATH = "/v1/billing/overview/crypto-config"

const rpcReady = (request: Harness["request"]) =>
  Effect.map(request("GET", "/readyz"), (res) => decode(Readiness)(res).checks["rpc:anvil"]?.ok === true)

layer(
  appHarness({
    env: {
      APP_BILLING_FINANCE_OPS_USER_ID: FINANCE_OPS,
      BILLING_CONFIG_RELOAD: "1 hour",
      BILLING_HEALTH_INTERVAL: "1 second",
      BILLING_LISTENER_POLL: "200 millis",
      BILLING_LISTENER_NETWORK_CHECK: "200 millis"
    }
  }),
  { timeout: 120_000, excludeTestServices: true }
)("crypto-config, live", (it) => {
  it.effect("only finance_ops reads and changes it (admin does not imply it)", () =>
    Effect.gen(function*() {
      const app = yield* App
      assert.strictEqual((yield* app.request("GET", PATH)).status, 401)
      assert.strictEqual((yield* app.request("GET", PATH, { token: app.token("u") })).status, 403)
      assert.strictEqual((yield* app.request("GET", PATH, { token: app.admin })).status, 403)
      const body = { rpc_endpoints: { anvil: app.devnet.info.rpc_url } }
      assert.strictEqual((yield* app.request("POST", PATH, { token: app.admin, body })).status, 403)
      const ok = yield* app.request("GET", PATH, { token: app.token(FINANCE_OPS, ["finance_ops"]) })
      assert.strictEqual(ok.status, 200)
      assert.deepStrictEqual(decode(CryptoConfigView)(ok).networks.map((n) => n.network), ["anvil"])
    }))

  it.effect("a switch reaches every running instance within seconds, masked, audited and notified", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const fin = app.token(FINANCE_OPS, ["finance_ops"])
      const other = app.on(yield* app.startInstance)
      yield* eventually(rpcReady(other), (ok) => ok, "the second instance to reach the devnet")

      // An endpoint is accepted only while it answers the network's chain id: a proxy to the devnet, broken afterwards.
      const proxy = yield* rpcProxy(app.devnet.info.rpc_url)
      const keyed = `${proxy.url}/?apikey=topsecret123`
      const res = yield* app.request("POST", PATH, { token: fin, body: { rpc_endpoints: { anvil: keyed }, confirmations: { anvil: 3 } } })
      assert.strictEqual(res.status, 200)
      const view = decode(CryptoConfigView)(res)
      assert.deepStrictEqual(view.networks[0]!.rpc_endpoints, [keyed.replace("topsecret123", "***")])
      assert.strictEqual(view.networks[0]!.confirmations, 3)
      assert.notInclude(JSON.stringify(res.body), "topsecret123")

      // No restart: both instances now use the proxy (the devnet itself is still up), then both come back.
      yield* proxy.setMode("down")
      yield* eventually(rpcReady(app.request), (ok) => !ok, "this instance to switch")
      yield* eventually(rpcReady(other), (ok) => !ok, "the other instance to switch (NATS signal)")
      const back = yield* app.request("POST", PATH, { token: fin, body: { rpc_endpoints: { anvil: [app.devnet.info.rpc_url] } } })
      assert.strictEqual(back.status, 200)
      yield* eventually(rpcReady(other), (ok) => ok, "the other instance to switch back")
      yield* eventually(rpcReady(app.request), (ok) => ok, "this instance to switch back")

      const audit = yield* sql<{ actor: string; before: unknown; after: unknown }>`SELECT actor, before, after FROM audit_log
        WHERE action = 'crypto_config.update' AND resource = 'crypto_config:anvil' ORDER BY id`
      assert.strictEqual(audit.length, 2)
      assert.deepStrictEqual(audit.map((a) => a.actor), [FINANCE_OPS, FINANCE_OPS])
      assert.notInclude(JSON.stringify(audit), "topsecret123")
      const notes = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM notifications
        WHERE user_id = ${FINANCE_OPS} AND kind = 'crypto_config.changed'`
      assert.strictEqual(notes[0]!.n, 2)
    }).pipe(Effect.scoped))

  it.effect("merges per network; bad input is a 400 that changes nothing", () =>
    Effect.gen(function*() {
      const app = yield* App
      const fin = app.token(FINANCE_OPS, ["finance_ops"])
      const added = yield* app.request("POST", PATH, {
        token: fin,
        body: { rpc_endpoints: { other: [app.devnet.info.rpc_url] }, chain_id: { other: app.devnet.info.chain_id } }
      })
      assert.strictEqual(added.status, 200)
      const before = decode(CryptoConfigView)(yield* app.request("GET", PATH, { token: fin }))
      yield* app.request("POST", PATH, { token: fin, body: { gas_cap: { anvil: "700000" } } })
      const after = decode(CryptoConfigView)(yield* app.request("GET", PATH, { token: fin }))
      const byName = (v: typeof after, n: string) => v.networks.find((x) => x.network === n)
      assert.deepStrictEqual(byName(after, "other"), byName(before, "other"))
      assert.strictEqual(byName(after, "anvil")!.gas_cap, "700000")

      const bad = [
        { rpc_endpoints: { fresh: "http://127.0.0.1:1/" } },
        { rpc_endpoints: { anvil: "ftp://example.com" } },
        { rpc_endpoints: { anvil: [] } },
        { confirmations: { anvil: -1 } },
        { gas_cap: { anvil: "12.5" } },
        {}
      ]
      for (const body of bad) {
        const res = yield* app.request("POST", PATH, { token: fin, body })
        assert.strictEqual(res.status, 400, JSON.stringify(body))
        assert.strictEqual(errorOf(res).error, "invalid_request")
      }
      const unchanged = decode(CryptoConfigView)(yield* app.request("GET", PATH, { token: fin }))
      assert.deepStrictEqual(unchanged, after)
      assert.isTrue(Schema.is(CryptoConfigView)(unchanged))
    }))

  it.effect("an endpoint outside the policy, unreachable or on another chain is a 400 naming network and index, never the URL; nothing written or audited", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const fin = app.token(FINANCE_OPS, ["finance_ops"])
      const devnet = app.devnet.info.rpc_url
      const audits = sql<{ n: number }>`SELECT count(*)::int AS n FROM audit_log WHERE action = 'crypto_config.update'`
      const before = decode(CryptoConfigView)(yield* app.request("GET", PATH, { token: fin }))
      const auditedBefore = (yield* audits)[0]!.n
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ rpc_endpoints: { anvil: "http://169.254.169.254/latest/meta-data?apikey=topsecret123" } }, "network anvil, rpc endpoint 0: its host resolves to a link-local address"],
        [{ rpc_endpoints: { anvil: [devnet, "http://10.0.0.1:8545/topsecret123"] } }, "network anvil, rpc endpoint 1: its host resolves to a private address"],
        [{ rpc_endpoints: { anvil: [devnet, devnet.replace("http://", "http://admin:topsecret123@")] } }, "network anvil, rpc endpoint 1: credentials"],
        [{ rpc_endpoints: { anvil: `http://127.0.0.1:${yield* freePort}/?apikey=topsecret123` } }, "network anvil, rpc endpoint 0: it did not answer eth_chainId"],
        [{ rpc_endpoints: { fresh: devnet }, chain_id: { fresh: 10 } }, "network fresh, rpc endpoint 0: it answered chain id 31337, expected 10"]
      ]
      for (const [body, message] of cases) {
        const res = yield* app.request("POST", PATH, { token: fin, body })
        assert.strictEqual(res.status, 400, JSON.stringify(body))
        assert.strictEqual(errorOf(res).error, "invalid_rpc_endpoint")
        assert.include(errorOf(res).message, message)
        assert.notInclude(errorOf(res).message, "topsecret123")
        assert.notInclude(errorOf(res).message, "127.0.0.1")
      }
      assert.deepStrictEqual(decode(CryptoConfigView)(yield* app.request("GET", PATH, { token: fin })), before)
      assert.strictEqual((yield* audits)[0]!.n, auditedBefore)
    }))

  it.effect("a network added live gets its chain listener without a restart", () =>
    Effect.gen(function*() {
      const app = yield* App
      const sql = yield* SqlClient.SqlClient
      const added = yield* app.request("POST", PATH, {
        token: app.token(FINANCE_OPS, ["finance_ops"]),
        body: { rpc_endpoints: { late: app.devnet.info.rpc_url }, chain_id: { late: app.devnet.info.chain_id } }
      })
      assert.strictEqual(added.status, 200)
      const cursor = sql<{ n: number }>`SELECT count(*)::int AS n FROM chain_cursors WHERE network = 'late'`
      yield* eventually(cursor, (rows) => rows[0]?.n === 1, "a cursor for the new network")
    }))
})
