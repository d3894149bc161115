/**
 * Payments streaming in at a steady rate while faults are injected: a checkout over HTTP (Idempotency-Key, so a retry
 * after a kill gets the same order), the mint signed and sent on anvil from one of several dev accounts, and for most
 * a signed webhook (retried like a relayer would); the rest only the chain listener can find.
 */
import { Data, Deferred, Effect, Ref, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { type Hex, keccak256 } from "viem"
import { CheckoutView } from "../../src/domain/Checkout.ts"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { testToken } from "../support/jwt.ts"
import { type Deployment, PASS, PLAN } from "./Deployment.ts"
import { persistently, request } from "./Http.ts"
import { seeded } from "./Random.ts"
import type { Stack } from "./Stack.ts"

/** Anvil dev accounts that pay: 0 deploys, 8 and 9 are the dev signer and the treasury. */
export const PAYERS = [1, 2, 3, 4, 5, 6, 7] as const
const WEBHOOK_SHARE = 0.8

export interface Order {
  readonly index: number
  readonly user: string
  readonly transactionId: string
  readonly orderId: string
  readonly amount: bigint
  readonly account: number
  readonly raw: Hex
  readonly hash: Hex
  /** Block of the receipt when the payer saw it mined; a reorg may move or drop it later. */
  readonly block: bigint | undefined
  readonly webhook: boolean
}

export class WorkloadProblem extends Data.TaggedError("WorkloadProblem")<{ readonly message: string }> {}

export interface WorkloadOptions {
  /** Users are `<users>-<n>`, one order each. */
  readonly users: string
  readonly seed: number
  /** Payments started per second, across all payers. */
  readonly rate: number
}

const explain = (e: { readonly _tag: string }) =>
  e._tag === "Refused" && "answer" in e ? `${e._tag} ${JSON.stringify(e.answer)}` : "message" in e ? `${e._tag}: ${String(e.message)}` : e._tag

const decodeCheckout = Schema.decodeUnknown(Schema.parseJson(CheckoutView))

export const startWorkload = (stack: Stack, deployment: Deployment, options: WorkloadOptions) =>
  Effect.gen(function*() {
    const orders = yield* Ref.make<ReadonlyArray<Order>>([])
    const problems = yield* Ref.make<ReadonlyArray<string>>([])
    const next = yield* Ref.make(0)
    const stop = yield* Deferred.make<void>()
    const started = performance.now()
    const baseUrl = deployment.service.baseUrl
    const chain = stack.chain

    const checkout = (user: string, account: number) =>
      persistently(
        request(baseUrl, "POST", "/v1/billing/checkout", {
          token: testToken(user, [], stack.secrets.jwt),
          headers: { "idempotency-key": `chaos-${user}` },
          body: { plan_slug: PLAN, wallet_address: chain.wallet(account).account.address, network: "anvil", token: "native" }
        }),
        `checkout for ${user}`
      ).pipe(
        Effect.filterOrFail((a) => a.status === 201 || a.status === 200, (a) => new WorkloadProblem({ message: `checkout answered ${a.status}: ${a.text}` })),
        Effect.flatMap((a) => decodeCheckout(a.text))
      )

    const webhook = (event: Record<string, unknown>) => {
      const raw = JSON.stringify(event)
      const id = `msg_${randomBytes(8).toString("hex")}`
      // Re-signed on every attempt (fresh timestamp), same id: a relayer's retry, deduplicated by the service.
      const send = Effect.suspend(() => {
        const timestamp = Math.floor(Date.now() / 1000)
        return request(baseUrl, "POST", "/v1/billing/contracts/webhook", {
          raw,
          headers: {
            "content-type": "application/json",
            "webhook-id": id,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": signWebhook(stack.secrets.webhook, id, timestamp, raw)
          }
        })
      })
      return persistently(send, "webhook", "30 seconds").pipe(
        Effect.filterOrFail((a) => a.status === 202 || a.status === 200, (a) => new WorkloadProblem({ message: `a valid webhook answered ${a.status}: ${a.text}` }))
      )
    }

    const pay = (index: number, account: number) =>
      Effect.gen(function*() {
        const user = `${options.users}-${index}`
        const view = yield* checkout(user, account)
        const tx = view.payload.transactions[0]
        if (tx === undefined) return yield* new WorkloadProblem({ message: `checkout for ${user} has no transaction` })
        const raw = yield* chain.signMint(account, tx)
        const hash = keccak256(raw)
        // A send refused during a reorg (nonce moved under us) leaves the order unpaid; the chain decides at the end.
        yield* chain.sendRaw(raw).pipe(Effect.catchAll((e) => Effect.logDebug("send refused", e)))
        const receipt = yield* chain.receipt(hash, 10_000)
        const withWebhook = seeded(options.seed * 7919 + index).chance(WEBHOOK_SHARE)
        yield* Ref.update(orders, (all) => [...all, {
          index,
          user,
          transactionId: view.transaction_id,
          orderId: view.order_id,
          amount: BigInt(view.amount),
          account,
          raw,
          hash,
          block: receipt?.blockNumber,
          webhook: withWebhook
        }])
        if (receipt === undefined || receipt.status !== "success" || !withWebhook) return
        const log = receipt.logs.find((l) => l.address.toLowerCase() === chain.info.contract_address.toLowerCase())
        if (log === undefined) return yield* new WorkloadProblem({ message: `mint ${hash} emitted no event` })
        yield* webhook({
          type: "payment.minted",
          contract: PASS,
          network: "anvil",
          tx_hash: hash,
          log_index: log.logIndex,
          block_number: Number(receipt.blockNumber),
          order_id: view.order_id
        })
      }).pipe(Effect.catchAll((e) => Ref.update(problems, (all) => [...all, `payment ${index}: ${explain(e)}`])))

    // Payment i starts no earlier than i / rate seconds in: a steady stream whatever the faults do to latency.
    const payer = (account: number) =>
      Effect.gen(function*() {
        while (!(yield* Deferred.isDone(stop))) {
          const index = yield* Ref.getAndUpdate(next, (n) => n + 1)
          const due = started + (index * 1000) / options.rate - performance.now()
          if (due > 0) yield* Effect.sleep(`${Math.round(due)} millis`)
          if (yield* Deferred.isDone(stop)) return
          yield* pay(index, account)
        }
      })
    const fibers = yield* Effect.forEach(PAYERS, (account) => Effect.fork(payer(account)))

    return {
      /** Stops starting payments and waits for the ones under way. */
      finish: Effect.zipRight(Deferred.succeed(stop, undefined), Effect.forEach(fibers, (f) => f.await, { discard: true })),
      orders: Ref.get(orders),
      problems: Ref.get(problems)
    }
  })

export type Workload = Effect.Effect.Success<ReturnType<typeof startWorkload>>
