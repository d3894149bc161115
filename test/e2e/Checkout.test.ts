/**
 * Invariants 6 and 8 over HTTP: checkout is idempotent (Idempotency-Key, or the same user and plan while
 * pending), bad input is a 4xx `{error, message}` that writes nothing, and the quote it signs is one the
 * contract accepts, from the payer it names only.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { decodeFunctionData } from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { App, appHarness, errorOf, type Harness, registerContractAndPlan, type Response } from "../support/app.ts"
import { chainCall, devAccount, revertName } from "../support/anvil.ts"
import { checkoutOf, sendPayload } from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 5_000_000n }
const wallet = (i: number) => devAccount(i).address

const checkout = (app: Harness, user: string, body: unknown, key?: string) =>
  app.request("POST", "/v1/billing/checkout", {
    token: app.token(user),
    body,
    ...(key === undefined ? {} : { headers: { "idempotency-key": key } })
  })

const rowsOf = (user: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: string; status: string }>`SELECT id::text AS id, status FROM payment_transactions WHERE user_id = ${user}`).pipe(Effect.orDie)

const totalRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: string }>`SELECT count(*)::text AS n FROM payment_transactions`).pipe(Effect.map((r) => r[0]!.n), Effect.orDie)

/** The status and the code of an error body that is exactly `{error, message}`. */
const rejection = (res: Response) => {
  const body = errorOf(res)
  assert.deepStrictEqual(Object.keys(res.body as object).sort(), ["error", "message"])
  return [res.status, body.error] as const
}

layer(appHarness(), { timeout: 120_000, excludeTestServices: true })("checkout (invariants 6 and 8)", (it) => {
  it.effect("the same Idempotency-Key returns the same checkout; reused for another plan is a conflict", () =>
    Effect.gen(function*() {
      const app = yield* App
      yield* registerContractAndPlan(app, "basic", PRICES)
      yield* registerContractAndPlan(app, "other", PRICES)
      const body = { plan_slug: "basic", wallet_address: wallet(1), token: "native" }

      const first = yield* checkout(app, "co-alice", body, "key-1")
      const second = yield* checkout(app, "co-alice", body, "key-1")
      assert.deepStrictEqual([first.status, second.status], [201, 200])
      const a = checkoutOf(first)
      const b = checkoutOf(second)
      assert.deepStrictEqual(b, a, "same transaction_id, order_id, quote and payload")

      // Same user and plan while pending, no key: the pending checkout again.
      const noKey = yield* checkout(app, "co-alice", body)
      assert.strictEqual(noKey.status, 200)
      assert.deepStrictEqual(checkoutOf(noKey), a)

      const reused = yield* checkout(app, "co-alice", { ...body, plan_slug: "other" }, "key-1")
      assert.deepStrictEqual(rejection(reused), [409, "idempotency_key_reused"])

      const bob = yield* checkout(app, "co-bob", body, "key-1")
      assert.strictEqual(bob.status, 201)
      assert.notStrictEqual(checkoutOf(bob).transaction_id, a.transaction_id)
      assert.notStrictEqual(checkoutOf(bob).order_id, a.order_id)

      assert.deepStrictEqual((yield* rowsOf("co-alice")).map((r) => [r.id, r.status]), [[a.transaction_id, "pending"]])
      assert.strictEqual((yield* rowsOf("co-bob")).length, 1)
    }))

  /** Ten identical requests at once, three rounds (a fresh user each): one row, one 201, nine replays of it. */
  const race = (user: string, key: string | undefined) =>
    Effect.gen(function*() {
      const app = yield* App
      const body = { plan_slug: "basic", wallet_address: wallet(2), token: "native" }
      for (const round of [1, 2, 3]) {
        const who = `${user}-${round}`
        const results = yield* Effect.all(Array.from({ length: 10 }, () => checkout(app, who, body, key)), { concurrency: "unbounded" })
        const rows = yield* rowsOf(who)
        assert.deepStrictEqual(rows.map((r) => r.status), ["pending"], `round ${round}: one row, got ${JSON.stringify(rows)}`)
        assert.deepStrictEqual(results.map((r) => r.status).sort(), [...Array.from({ length: 9 }, () => 200), 201])
        assert.deepStrictEqual([...new Set(results.map((r) => checkoutOf(r).transaction_id))], [rows[0]!.id])
      }
    })

  it.effect("concurrent identical requests with one Idempotency-Key produce one row", () => race("co-race-key", "race-key"))

  it.effect("concurrent identical requests without a key (same user and plan) produce one row", () => race("co-race-nokey", undefined))

  it.effect("bad input is a 400/404/401 {error, message} and writes no row", () =>
    Effect.gen(function*() {
      const app = yield* App
      const before = yield* totalRows
      const ok = { plan_slug: "basic", wallet_address: wallet(3) }
      const cases: ReadonlyArray<readonly [string, Effect.Effect<Response>, number, string]> = [
        ["missing plan_slug", checkout(app, "co-bad", { wallet_address: wallet(3) }), 400, "invalid_request"],
        ["missing wallet", checkout(app, "co-bad", { plan_slug: "basic" }), 400, "invalid_request"],
        ["bad wallet address", checkout(app, "co-bad", { ...ok, wallet_address: "0x1234" }), 400, "invalid_request"],
        ["plan slug is a number", checkout(app, "co-bad", { ...ok, plan_slug: 1e18 }), 400, "invalid_request"],
        ["amount-like token", checkout(app, "co-bad", { ...ok, token: "1000000000000000000" }), 400, "invalid_request"],
        ["negative-looking network", checkout(app, "co-bad", { ...ok, network: "-1" }), 400, "invalid_request"],
        ["unknown network", checkout(app, "co-bad", { ...ok, network: "polygon" }), 400, "network_not_offered"],
        ["token not priced", checkout(app, "co-bad", { ...ok, token: wallet(5) }), 400, "network_not_offered"],
        [
          "non-JSON body",
          app.request("POST", "/v1/billing/checkout", {
            token: app.token("co-bad"),
            raw: "plan_slug=basic",
            headers: { "content-type": "application/json" }
          }),
          400,
          "invalid_request"
        ],
        ["unknown plan", checkout(app, "co-bad", { ...ok, plan_slug: "no-such-plan" }), 404, "plan_not_found"],
        ["no token", app.request("POST", "/v1/billing/checkout", { body: ok }), 401, "unauthorized"],
        ["garbage token", app.request("POST", "/v1/billing/checkout", { body: ok, token: "not.a.jwt" }), 401, "unauthorized"]
      ]
      for (const [what, send, status, code] of cases) {
        assert.deepStrictEqual(rejection(yield* send), [status, code], what)
      }
      assert.strictEqual(yield* totalRows, before, "no rejected checkout wrote a row")
    }))

  it.effect("a disabled gateway or contract refuses new checkouts with 409", () =>
    Effect.gen(function*() {
      const app = yield* App
      const body = { plan_slug: "basic", wallet_address: wallet(4) }
      const toggle = (path: string, enabled: boolean) =>
        app.request("PATCH", path, { token: app.admin, body: { enabled } }).pipe(
          Effect.tap((res) => assert.strictEqual(res.status, 200, `${path} enabled=${enabled}`))
        )
      const before = yield* totalRows

      yield* toggle("/v1/billing/admin/gateways/evm", false)
      const gatewayOff = yield* checkout(app, "co-toggle", body).pipe(Effect.ensuring(toggle("/v1/billing/admin/gateways/evm", true)))
      assert.deepStrictEqual(rejection(gatewayOff), [409, "gateway_disabled"])

      yield* toggle("/v1/billing/admin/contracts/pass", false)
      const contractOff = yield* checkout(app, "co-toggle", body).pipe(Effect.ensuring(toggle("/v1/billing/admin/contracts/pass", true)))
      assert.deepStrictEqual(rejection(contractOff), [409, "contract_disabled"])
      assert.strictEqual(yield* totalRows, before)

      const issued = yield* checkout(app, "co-toggle", body, "toggle-key")
      assert.strictEqual(issued.status, 201, "re-enabled: checkout works again")

      // a replay of the pending checkout (its key, or the same user and plan) while the gateway is off: refused too
      yield* toggle("/v1/billing/admin/gateways/evm", false)
      const replays = yield* Effect.all([checkout(app, "co-toggle", body, "toggle-key"), checkout(app, "co-toggle", body)]).pipe(
        Effect.ensuring(toggle("/v1/billing/admin/gateways/evm", true))
      )
      assert.deepStrictEqual(replays.map(rejection), [[409, "gateway_disabled"], [409, "gateway_disabled"]])
      const again = yield* checkout(app, "co-toggle", body, "toggle-key")
      assert.deepStrictEqual([again.status, checkoutOf(again).transaction_id], [200, checkoutOf(issued).transaction_id])
    }))

  it.effect("the quote is accepted by the contract from the payer's wallet only", () =>
    Effect.gen(function*() {
      const app = yield* App
      const payer = 6
      const res = yield* checkout(app, "co-chain", { plan_slug: "basic", wallet_address: wallet(payer), token: "native" })
      assert.strictEqual(res.status, 201)
      const quote = checkoutOf(res)
      const tx = quote.payload.transactions[0]!
      const call = decodeFunctionData({ abi: SubscriptionPassAbi, data: tx.data as `0x${string}` })
      assert.strictEqual(call.functionName, "mint")
      if (call.functionName !== "mint") return
      assert.strictEqual(call.args[4], quote.quote_signature)

      // Another wallet with the same calldata: the signature binds the payer.
      const stranger = devAccount(7)
      const reason = yield* revertName(chainCall(() =>
        app.devnet.publicClient.simulateContract({
          address: tx.to as `0x${string}`,
          abi: SubscriptionPassAbi,
          functionName: "mint",
          args: call.args,
          value: BigInt(tx.value),
          account: stranger
        })
      ))
      assert.strictEqual(reason, "BadSignature")
      const [reverted] = yield* sendPayload(app, quote, 7)
      assert.strictEqual(reverted!.status, "reverted")

      const [paid] = yield* sendPayload(app, quote, payer)
      assert.strictEqual(paid!.status, "success")
      assert.strictEqual(paid!.from.toLowerCase(), wallet(payer).toLowerCase())
    }))
})
