/**
 * Payments streaming in at a steady rate while faults are injected: checkouts over HTTP made ahead (Idempotency-Key,
 * so a retry after a kill gets the same order), the mint signed and sent on anvil from one of several dev accounts at
 * the pace set, and for most a signed webhook delivered in the background (retried like a relayer would); the rest
 * only the chain listener can find.
 */
import { Data, Deferred, Effect, Fiber, FiberSet, Option, Queue, Ref, Schedule, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { type Hex, keccak256, type TransactionReceipt } from "viem"
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
/** Checkouts each payer holds ahead: enough to keep paying through a service restart. */
const AHEAD = 40

interface Ticket {
  readonly index: number
  readonly user: string
  readonly view: CheckoutView
}

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
    // A relayer that gives up is no fault of the service: the listener must find those payments; counted, not failed.
    const undelivered = yield* Ref.make(0)
    const nextCheckout = yield* Ref.make(0)
    const webhooks = yield* FiberSet.make()
    const stop = yield* Deferred.make<void>()
    const go = yield* Deferred.make<number>()
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

    const deliver = (order: Order, receipt: TransactionReceipt) =>
      Effect.gen(function*() {
        const log = receipt.logs.find((l) => l.address.toLowerCase() === chain.info.contract_address.toLowerCase())
        if (log === undefined) return yield* new WorkloadProblem({ message: `mint ${order.hash} emitted no event` })
        yield* webhook({
          type: "payment.minted",
          contract: PASS,
          network: "anvil",
          tx_hash: order.hash,
          log_index: log.logIndex,
          block_number: Number(receipt.blockNumber),
          order_id: order.orderId
        })
      })

    const problem = (what: string) => (e: { readonly _tag: string }) => Ref.update(problems, (all) => [...all, `${what}: ${explain(e)}`])

    /** Pays one checkout on chain; the webhook (most orders) is delivered in the background, retried like a relayer. */
    const pay = (ticket: Ticket, account: number) =>
      Effect.gen(function*() {
        const { index, user, view } = ticket
        const tx = view.payload.transactions[0]
        if (tx === undefined) return yield* new WorkloadProblem({ message: `checkout for ${user} has no transaction` })
        const raw = yield* chain.signMint(account, tx)
        const hash = keccak256(raw)
        // A send refused during a reorg (nonce moved under us) leaves the order unpaid; the chain decides at the end.
        yield* chain.sendRaw(raw).pipe(Effect.catchAll((e) => Effect.logDebug("send refused", e)))
        const receipt = yield* chain.receipt(hash, 10_000)
        const order: Order = {
          index,
          user,
          transactionId: view.transaction_id,
          orderId: view.order_id,
          amount: BigInt(view.amount),
          account,
          raw,
          hash,
          block: receipt?.blockNumber,
          webhook: seeded(options.seed * 7919 + index).chance(WEBHOOK_SHARE)
        }
        yield* Ref.update(orders, (all) => [...all, order])
        if (receipt === undefined || receipt.status !== "success" || !order.webhook) return
        yield* FiberSet.run(webhooks, deliver(order, receipt).pipe(Effect.catchTags({
          Unreachable: () => Ref.update(undelivered, (n) => n + 1),
          Refused: () => Ref.update(undelivered, (n) => n + 1),
          WorkloadProblem: problem(`webhook of payment ${index}`)
        })))
      }).pipe(Effect.catchAll(problem(`payment ${ticket.index}`)))

    // Checkouts are made ahead (a user holds a quote before paying), so payments go on while the service is down.
    const checkouts = (account: number, queue: Queue.Queue<Ticket>) =>
      Effect.gen(function*() {
        const index = yield* Ref.getAndUpdate(nextCheckout, (n) => n + 1)
        const user = `${options.users}-${index}`
        const view = yield* checkout(user, account)
        yield* Queue.offer(queue, { index, user, view })
      }).pipe(Effect.catchAll(problem("checkout")), Effect.forever)

    // Payment i is sent no earlier than i / rate seconds in: a steady stream whatever the faults do to latency.
    const payer = (account: number, queue: Queue.Queue<Ticket>) =>
      Effect.gen(function*() {
        const started = yield* Deferred.await(go)
        while (!(yield* Deferred.isDone(stop))) {
          const ticket = yield* Queue.take(queue).pipe(Effect.timeoutOption("500 millis"))
          if (Option.isNone(ticket)) continue
          const due = started + (ticket.value.index * 1000) / options.rate - performance.now()
          if (due > 0) yield* Effect.sleep(`${Math.round(due)} millis`)
          if (yield* Deferred.isDone(stop)) return
          yield* pay(ticket.value, account)
        }
      })
    const lanes = yield* Effect.forEach(PAYERS, (account) =>
      Effect.gen(function*() {
        const queue = yield* Queue.bounded<Ticket>(AHEAD)
        return { queue, producer: yield* Effect.fork(checkouts(account, queue)), payer: yield* Effect.fork(payer(account, queue)) }
      }))

    const queued = Effect.map(Effect.forEach(lanes, (l) => Queue.size(l.queue)), (sizes) => sizes.reduce((a, b) => a + b, 0))

    return {
      /**
       * Waits until `seconds` of payments are checked out ahead (at most 30 s), then starts paying: payments keep
       * reaching the chain while the service is down, as they would.
       */
      begin: (seconds: number) =>
        queued.pipe(
          Effect.repeat({
            schedule: Schedule.spaced("200 millis").pipe(Schedule.upTo("30 seconds")),
            until: (n) => n >= Math.min(AHEAD * PAYERS.length, seconds * options.rate)
          }),
          Effect.zipRight(Effect.suspend(() => Deferred.succeed(go, performance.now())))
        ),
      /** Stops starting payments and waits for the ones under way. */
      finish: Effect.gen(function*() {
        yield* Deferred.succeed(stop, undefined)
        yield* Deferred.succeed(go, performance.now())
        yield* Effect.forEach(lanes, (l) => Fiber.interrupt(l.producer), { discard: true })
        yield* Effect.forEach(lanes, (l) => Fiber.await(l.payer), { discard: true })
        yield* FiberSet.awaitEmpty(webhooks)
      }),
      orders: Ref.get(orders),
      undelivered: Ref.get(undelivered),
      problems: Ref.get(problems)
    }
  })

export type Workload = Effect.Effect.Success<ReturnType<typeof startWorkload>>
