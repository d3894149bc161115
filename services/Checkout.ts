import { SqlClient } from "@effect/sql"
import { Clock, Config, Data, Effect, Metric, Option, Schema } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { type Abi, encodeFunctionData, erc20Abi } from "viem"
import { type CheckoutPayload, CheckoutRejected, type CheckoutRequest, type CheckoutView, type WalletTransaction } from "../src/domain/Checkout.ts"
import { NATIVE, tokenAddress } from "../src/domain/Ids.ts"
import { PlanNotFound, type Price } from "../src/domain/Plan.ts"
import { Audit } from "./Audit.ts"
import { Contracts } from "./Contracts.ts"
import { Gateways } from "./Gateways.ts"
import { labelled, transactionsTotal } from "./Metrics.ts"
import { type PaymentRow, Payments, toCheckoutView } from "./Payments.ts"
import { Plans } from "./Plans.ts"
import { QuoteSigner } from "./QuoteSigner.ts"
import { assetOf } from "./Ledger.ts"
import { decodeIds, decodeRows, uniqueAs } from "./Rows.ts"
import { Rpc } from "./Rpc.ts"

export const CheckoutTtl = Config.integer("BILLING_CHECKOUT_TTL_SECONDS").pipe(
  Config.validate({ message: "BILLING_CHECKOUT_TTL_SECONDS must be between 60 and 86400", validation: (n) => n >= 60 && n <= 86_400 }),
  Config.withDefault(1800)
)

/** Lost a race on a unique index to a concurrent twin request. */
class Raced extends Data.TaggedError("Raced") {}

const GAS_HEADROOM_PERCENT = 120n
const decodeTotal = decodeRows(Schema.Struct({ total: Schema.BigInt }))

export class Checkout extends Effect.Service<Checkout>()("billing/Checkout", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const plans = yield* Plans
    const contracts = yield* Contracts
    const gateways = yield* Gateways
    const rpc = yield* Rpc
    const signer = yield* QuoteSigner
    const payments = yield* Payments
    const audit = yield* Audit
    const ttlSeconds = yield* CheckoutTtl

    const select = payments.findOne

    const byIdempotencyKey = (userId: string, key: string) =>
      select(sql.and([sql`t.user_id = ${userId}`, sql`t.idempotency_key = ${key}`]))
    const openFor = (userId: string, planId: number) =>
      select(sql.and([sql`t.user_id = ${userId}`, sql`t.plan_id = ${planId}`, sql`t.status = 'pending'`, sql`t.expires_at > now()`]))

    const reject = (reason: CheckoutRejected["reason"], message: string) => Effect.fail(new CheckoutRejected({ reason, message }))

    /** The user's credit in one asset less what their open checkouts have reserved. */
    const creditAvailable = (userId: string, network: string, token: string) =>
      sql`SELECT (coalesce((SELECT -sum(amount) FROM ledger_postings
            WHERE account = ${`customer_credit:${userId}`} AND asset = ${assetOf(network, token)}), 0)
          - coalesce((SELECT sum(credit_applied) FROM payment_transactions
            WHERE user_id = ${userId} AND network = ${network} AND token = ${token} AND status IN ('pending', 'seen')), 0))::text AS total`.pipe(
        Effect.flatMap(decodeTotal),
        Effect.map((rows) => rows[0]?.total ?? 0n)
      )

    /** Gas from the node with headroom, never above the network's cap; the cap when it cannot be estimated. */
    const gasFor = (network: string, cap: bigint, tx: { account: `0x${string}`; to: `0x${string}`; data: `0x${string}`; value: bigint }) =>
      rpc.estimateGas(network, tx).pipe(
        Effect.map((gas) => {
          const padded = (gas * GAS_HEADROOM_PERCENT) / 100n
          return padded < cap ? padded : cap
        }),
        Effect.catchAll((e) =>
          Effect.as(Effect.logDebug("gas estimate unavailable, using the cap").pipe(Effect.annotateLogs({ network, error: e.message })), cap)
        )
      )

    const choosePrice = (prices: ReadonlyArray<Price>, req: CheckoutRequest) => {
      const price = prices.find((p) =>
        (req.network === undefined || p.network === req.network) && (req.token === undefined || p.token === req.token))
      return price
        ? Effect.succeed(price)
        : reject("network_not_offered", `the plan has no price on ${req.network ?? "any network"} in ${req.token ?? "any token"}`)
    }

    const issue = Effect.fn("Checkout.issue")(function*(userId: string, req: CheckoutRequest, idempotencyKey: string | undefined) {
      const plan = yield* plans.get(req.plan_slug)
      if (!plan.is_active) return yield* new PlanNotFound({ slug: req.plan_slug })
      const price = yield* choosePrice(plan.prices, req)
      if (!(yield* gateways.networkEnabled(price.network))) {
        return yield* reject("gateway_disabled", `no enabled gateway serves network ${price.network}`)
      }
      const contract = yield* contracts.get(plan.contract_slug).pipe(
        Effect.catchTag("ContractNotFound", () => reject("contract_disabled", `contract ${plan.contract_slug} is not registered`))
      )
      if (!contract.enabled) return yield* reject("contract_disabled", `contract ${contract.slug} is disabled`)
      if (contract.network !== price.network) {
        return yield* reject("network_not_offered", `contract ${contract.slug} is not on network ${price.network}`)
      }
      const net = yield* rpc.networkConfig(price.network).pipe(
        Effect.catchTag("UnknownNetwork", () => reject("network_unavailable", `network ${price.network} has no RPC configuration`))
      )

      // Credit lowers what the chain is asked for, never to nothing: a checkout is always a payment on chain.
      const available = req.apply_credit === true ? yield* creditAvailable(userId, price.network, price.token).pipe(Effect.orDie) : 0n
      const applied = available <= 0n ? 0n : available < price.amount ? available : price.amount - 1n
      const quoted = price.amount - applied

      const now = yield* Clock.currentTimeMillis
      const deadline = BigInt(Math.floor(now / 1000) + ttlSeconds)
      const orderId = `0x${randomBytes(32).toString("hex")}` as const
      const wallet = req.wallet_address as `0x${string}`
      const token = tokenAddress(price.token)
      const signature = yield* signer.sign({
        chainId: net.chain_id,
        contract: contract.address,
        orderId,
        payer: wallet,
        token,
        amount: quoted,
        deadline
      })
      const native = price.token === NATIVE
      const mintData = encodeFunctionData({
        abi: contract.abi as Abi,
        functionName: contract.mintMethod,
        args: [orderId, token, quoted, deadline, signature]
      })
      const steps: Array<{ to: `0x${string}`; data: `0x${string}`; value: bigint; estimate: boolean }> = native
        ? [{ to: contract.address, data: mintData, value: quoted, estimate: true }]
        : [
          { to: token, data: encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [contract.address, quoted] }), value: 0n, estimate: true },
          // mint cannot be estimated before the approval exists on chain.
          { to: contract.address, data: mintData, value: 0n, estimate: false }
        ]
      const transactions: Array<WalletTransaction> = yield* Effect.forEach(steps, (s) =>
        Effect.map(
          s.estimate ? gasFor(price.network, net.gas_cap, { account: wallet, to: s.to, data: s.data, value: s.value }) : Effect.succeed(net.gas_cap),
          (gas) => ({ chain_id: net.chain_id, to: s.to, data: s.data, value: s.value.toString(), gas: gas.toString() })
        ))
      const payload: CheckoutPayload = { deadline: deadline.toString(), transactions }

      // A pending checkout for another wallet, network or token, or past its deadline, is superseded by this one;
      // an identical twin is not (it makes this insert lose on the one-pending index and return the twin).
      // Both moves are audited with the user as actor, in the same transaction.
      const id = randomUUID()
      const write = Effect.gen(function*() {
        if (applied > 0n) {
          // One reservation of a user's credit at a time: a concurrent checkout cannot spend the same credit.
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`credit:${userId}`}))`
          const still = yield* creditAvailable(userId, price.network, price.token)
          if (still < applied) return yield* reject("credit_changed", "the credit changed while the checkout was issued; try again")
        }
        const superseded = yield* sql`SELECT id::text AS id FROM payment_transactions
          WHERE user_id = ${userId} AND plan_id = ${plan.id} AND status = 'pending'
            AND (wallet_address <> ${req.wallet_address} OR network <> ${price.network} OR token <> ${price.token}
              OR expires_at <= now())
          FOR UPDATE`.pipe(Effect.flatMap(decodeIds))
        for (const old of superseded) {
          yield* payments.transition({ paymentId: old.id, from: "pending", to: "expired", actor: userId, details: { superseded_by: id } }).pipe(
            Effect.orDie
          )
        }
        yield* sql`INSERT INTO payment_transactions (id, order_id, user_id, plan_id, interval, contract_slug, network, chain_id,
            contract_address, token, amount, credit_applied, wallet_address, idempotency_key, quote_signature, payload, expires_at)
          VALUES (${id}, ${orderId}, ${userId}, ${plan.id}, ${plan.interval}, ${contract.slug}, ${price.network}, ${net.chain_id},
            ${contract.address}, ${price.token}, ${quoted.toString()}, ${applied.toString()}, ${req.wallet_address}, ${idempotencyKey ?? null},
            ${signature}, ${JSON.stringify(payload)}::jsonb, to_timestamp(${Number(deadline)}))`
        yield* audit.paymentTransition({
          paymentId: id,
          from: null,
          to: "pending",
          actor: userId,
          details: { order_id: orderId, plan_slug: plan.slug, network: price.network, token: price.token, amount: quoted, credit_applied: applied }
        })
      })
      return yield* sql.withTransaction(write).pipe(
        uniqueAs(() => new Raced()),
        Effect.as(Option.some(orderId)),
        Effect.catchTag("Raced", () => Effect.succeed(Option.none<string>()))
      )
    })

    const sameRequest = (p: PaymentRow, req: CheckoutRequest) =>
      p.plan_slug === req.plan_slug && p.wallet_address === req.wallet_address &&
      (req.network === undefined || req.network === p.network) && (req.token === undefined || req.token === p.token)

    const existing = (userId: string, req: CheckoutRequest, key: string | undefined) =>
      Effect.gen(function*() {
        if (key !== undefined) {
          const found = yield* byIdempotencyKey(userId, key)
          if (Option.isSome(found)) {
            return sameRequest(found.value, req)
              ? found
              : yield* reject("idempotency_key_reused", "this Idempotency-Key was used for a different checkout")
          }
        }
        const plan = yield* plans.find(req.plan_slug)
        if (Option.isNone(plan)) return Option.none()
        const open = yield* openFor(userId, plan.value.id)
        return Option.filter(open, (p) => sameRequest(p, req))
      })

    /**
     * Idempotent: the same key, or the same user and plan while a checkout is pending, returns that checkout.
     * A concurrent twin loses on a unique index and reads the winner's row.
     */
    const create = Effect.fn("Checkout.create")(function*(userId: string, req: CheckoutRequest, idempotencyKey?: string) {
      const found = yield* existing(userId, req, idempotencyKey)
      if (Option.isSome(found)) {
        // a replay hands out the quote again: not once its network's gateway is off (a payment already made stays)
        if (found.value.status === "pending" && !(yield* gateways.networkEnabled(found.value.network))) {
          return yield* reject("gateway_disabled", `no enabled gateway serves network ${found.value.network}: this pending checkout can no longer be paid`)
        }
        return { created: false, checkout: toCheckoutView(found.value) } as const
      }
      const orderId = yield* issue(userId, req, idempotencyKey)
      if (Option.isNone(orderId)) {
        const raced = yield* existing(userId, req, idempotencyKey)
        if (Option.isSome(raced)) return { created: false, checkout: toCheckoutView(raced.value) } as const
        return yield* reject("idempotency_key_reused", "a different checkout for this plan is already pending")
      }
      const row = yield* select(sql.and([sql`t.order_id = ${orderId.value}`])).pipe(Effect.map(Option.getOrThrow))
      yield* Metric.increment(labelled(transactionsTotal, { status: "pending", network: row.network, token: row.token }))
      return { created: true, checkout: toCheckoutView(row) as CheckoutView } as const
    })

    return { create } as const
  }),
  dependencies: [
    Payments.Default,
    Plans.Default,
    Contracts.Default,
    Gateways.Default,
    Rpc.Default,
    QuoteSigner.Default,
    Audit.Default
  ]
}) {}
