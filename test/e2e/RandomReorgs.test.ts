/**
 * Reorg completeness: payments stream in (some announced by webhook, all seen by the listener) while the chain is
 * reorganised at random depths from 1 to confirmations + 3, sometimes with the dropped payment mined again in the
 * new blocks; afterwards every dropped transaction that can still be mined is sent again. In the end every order
 * agrees with the chain: confirmed exactly when the contract has used its order id, its ledger net equal to what
 * the chain says was paid, and every ledger transaction balanced. The seed is printed; `REORG_SEED` replays one.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { Hex } from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import { chainCall } from "../support/anvil.ts"
import { App, appHarness, CONFIRMATIONS, eventually, type Harness, PASS, registerContractAndPlan } from "../support/app.ts"
import { listenerCaughtUp } from "../support/chain.ts"
import { mine, mintedEvent, nativeCheckout, signMint, unbalancedLedgerTransactions } from "../support/payments.ts"

const PRICES = { native: 10n ** 15n, token: 1_000_000n }
const PAYMENTS = 30
const PAYERS = 7

/** mulberry32: a small seeded generator, so a failing sequence can be replayed. */
const generator = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const sendRaw = (app: Harness, raw: Hex) =>
  chainCall(() => app.devnet.publicClient.sendRawTransaction({ serializedTransaction: raw }))

const reorgWith = (app: Harness, depth: number, raws: ReadonlyArray<Hex>) =>
  chainCall(() =>
    app.devnet.testClient.request<{ Parameters: [number, Array<readonly [Hex, number]>]; ReturnType: null }>({
      method: "anvil_reorg",
      params: [depth, raws.map((raw) => [raw, 0] as const)]
    })
  ).pipe(Effect.orDie)

const orderUsed = (app: Harness, orderId: string) =>
  chainCall(() =>
    app.devnet.publicClient.readContract({
      address: app.devnet.info.contract_address,
      abi: SubscriptionPassAbi,
      functionName: "usedOrders",
      args: [orderId as Hex]
    })
  ).pipe(Effect.orDie)

interface Order {
  readonly checkout: CheckoutView
  readonly raw: Hex
}

/** Per payment: its status and the net of its postings on revenue and treasury. */
const ledgerView = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ id: string; status: string; revenue: string; treasury: string }>`SELECT t.id::text AS id, t.status,
      coalesce(sum(p.amount) FILTER (WHERE p.account = 'revenue:anvil'), 0)::text AS revenue,
      coalesce(sum(p.amount) FILTER (WHERE p.account = 'treasury:anvil'), 0)::text AS treasury
    FROM payment_transactions t
      LEFT JOIN ledger_transactions l ON l.payment_id = t.id
      LEFT JOIN ledger_postings p ON p.ledger_transaction_id = l.id
    GROUP BY t.id, t.status`).pipe(Effect.orDie)

/** Every order where the service and the chain disagree; empty when they agree. */
const disagreements = (app: Harness, orders: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const rows = new Map((yield* ledgerView).map((r) => [r.id, r]))
    const out: Array<string> = []
    for (const { checkout } of orders) {
      const used = yield* orderUsed(app, checkout.order_id)
      const row = rows.get(checkout.transaction_id)
      const paid = used ? BigInt(checkout.amount) : 0n
      const agrees = row !== undefined && (used ? row.status === "confirmed" : ["pending", "expired", "reversed"].includes(row.status)) &&
        BigInt(row.revenue) === -paid && BigInt(row.treasury) === paid
      if (!agrees) out.push(`${checkout.order_id}: chain used=${used}, service ${JSON.stringify(row)}`)
    }
    return out
  })

const seed = Number(process.env["REORG_SEED"] ?? Date.now() % 1_000_000)

layer(appHarness(), { timeout: 300_000, excludeTestServices: true })("random reorgs while payments stream", (it) => {
  it.effect(`every order agrees with the chain afterwards (seed ${seed})`, () =>
    Effect.gen(function*() {
      console.info(`RandomReorgs seed ${seed} (replay with REORG_SEED=${seed})`)
      const app = yield* App
      const random = generator(seed)
      yield* registerContractAndPlan(app, "reorgs", PRICES)
      // Reorgs must never reach the contracts' deployment.
      yield* mine(app, CONFIRMATIONS + 5)
      const orders: Array<Order> = []
      let reorgs = 0
      for (let i = 0; i < PAYMENTS; i++) {
        const account = 1 + (i % PAYERS)
        const { checkout } = yield* nativeCheckout(app, "reorgs", `reorg-user-${i}`, account)
        const raw = yield* signMint(app, checkout, account)
        const hash = yield* sendRaw(app, raw).pipe(Effect.orDie)
        const receipt = yield* chainCall(() => app.devnet.publicClient.waitForTransactionReceipt({ hash })).pipe(Effect.orDie)
        orders.push({ checkout, raw })
        if (random() < 0.5) yield* app.webhook(mintedEvent(PASS, receipt, checkout.order_id))
        if (random() < 0.5) yield* mine(app, 1 + Math.floor(random() * CONFIRMATIONS))
        if (random() < 0.35) {
          const depth = 1 + Math.floor(random() * (CONFIRMATIONS + 3))
          const head = yield* chainCall(() => app.devnet.publicClient.getBlockNumber()).pipe(Effect.orDie)
          const dropsIt = head - receipt.blockNumber < BigInt(depth)
          yield* reorgWith(app, depth, dropsIt && random() < 0.5 ? [raw] : [])
          reorgs++
        }
        yield* Effect.sleep(`${Math.floor(random() * 300)} millis`)
      }
      // What was dropped for good is sent again where its nonce still allows: mined again after any reversal.
      let resent = 0
      for (const order of orders) {
        if (yield* orderUsed(app, order.checkout.order_id)) continue
        if (Either.isRight(yield* Effect.either(sendRaw(app, order.raw)))) resent++
      }
      yield* mine(app, CONFIRMATIONS + 3)
      yield* listenerCaughtUp(app)
      const used = (yield* Effect.forEach(orders, (o) => orderUsed(app, o.checkout.order_id))).filter(Boolean).length
      console.info(`RandomReorgs seed ${seed}: ${PAYMENTS} payments, ${reorgs} reorgs, ${resent} sent again, ${used} on chain`)

      const remaining = yield* eventually(disagreements(app, orders), (d) => d.length === 0, "every order to agree with the chain").pipe(
        Effect.catchAll(() => disagreements(app, orders))
      )
      if (remaining.length > 0) {
        const sql = yield* SqlClient.SqlClient
        for (const line of remaining) {
          const order = line.slice(0, 66)
          const [p] = yield* sql<{ id: string; tx_hash: string; block_number: string; block_hash: string }>`SELECT id::text AS id, tx_hash, block_number::text AS block_number, block_hash FROM payment_transactions WHERE order_id = ${order}`.pipe(Effect.orDie)
          console.info("DEBUG payment", JSON.stringify(p))
          console.info("DEBUG events", JSON.stringify(yield* sql`SELECT dedupe_key, source, outcome, processed_at FROM processed_events WHERE payment_id = ${p!.id} ORDER BY processed_at`.pipe(Effect.orDie)))
          console.info("DEBUG audit", JSON.stringify(yield* sql`SELECT actor, action, after, created_at FROM audit_log WHERE resource = ${"payment:" + p!.id} ORDER BY id`.pipe(Effect.orDie)))
          console.info("DEBUG chain_logs", JSON.stringify(yield* sql`SELECT * FROM chain_logs WHERE tx_hash = ${p!.tx_hash}`.pipe(Effect.orDie)))
          console.info("DEBUG notif", JSON.stringify(yield* sql`SELECT kind, payload FROM notifications WHERE kind = 'dead_letter'`.pipe(Effect.orDie)))
          const b = yield* chainCall(() => app.devnet.publicClient.getBlock({ blockNumber: BigInt(p!.block_number) })).pipe(Effect.orDie)
          console.info("DEBUG canonical block", b.hash, "head", yield* chainCall(() => app.devnet.publicClient.getBlockNumber()).pipe(Effect.orDie))
        }
      }
      assert.deepStrictEqual(remaining, [])
      assert.deepStrictEqual(yield* unbalancedLedgerTransactions, [])
    }))
})
