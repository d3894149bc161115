/**
 * The payment half of the e2e run: the demo plan, checkout, the on-chain payment, the signed webhook and the wait
 * for confirmation. Each function is one step: it asserts what it saw and returns a summary and the data to print.
 */
import { Clock, Data, Duration, Effect, Option, Redacted, Schedule, Schema } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import type { PrivateKeyAccount, TransactionReceipt } from "viem"
import { SubscriptionPassAbi } from "../../contracts/abi.ts"
import { DEMO_CONTRACT, DEMO_NATIVE_PRICE, DEMO_TOKEN_PRICE } from "../../Demo.ts"
import { CheckoutView, HistoryItem } from "../../domain/Checkout.ts"
import { ContractView } from "../../domain/Contract.ts"
import { PlanView } from "../../domain/Plan.ts"
import { signWebhook } from "../../domain/WebhookSignature.ts"
import { HistoryPage } from "../../http/Me/Api.ts"
import { WebhookAccepted } from "../../http/Webhooks/Api.ts"
import type { ChainClients } from "./Chain.ts"
import type { Environment } from "./Environment.ts"
import { type Client, expect } from "./Http.ts"
import { check, CheckFailed } from "./Report.ts"

export interface Run {
  readonly env: Environment
  readonly http: Client
  readonly chain: ChainClients
  readonly network: string
  readonly planSlug: string
  readonly userId: string
  readonly payer: PrivateKeyAccount
  readonly tokens: { readonly user: string; readonly admin: string; readonly financeOps: string }
  readonly timeout: Duration.Duration
}

const PlanList = Schema.Struct({ items: Schema.Array(PlanView) })

/** Points the demo contract at the contracts this run deployed (creating it if needed). */
const ensureContract = (run: Run, deployed: { readonly contract: string }) =>
  Effect.gen(function*() {
    const body = { network: run.network, address: deployed.contract, abi: SubscriptionPassAbi }
    const created = yield* run.http("POST", "/v1/billing/admin/contracts", { token: run.tokens.admin, body: { slug: DEMO_CONTRACT, ...body } })
    if (created.status !== 409) return yield* expect("create contract", created, [201], ContractView)
    const updated = yield* run.http("PATCH", `/v1/billing/admin/contracts/${DEMO_CONTRACT}`, { token: run.tokens.admin, body: { ...body, enabled: true } })
    return yield* expect("update contract", updated, [200], ContractView)
  })

export const ensurePlan = (run: Run) =>
  Effect.gen(function*() {
    const { http, network, planSlug, tokens } = run
    const contract = Option.isSome(run.env.deployment) ? yield* ensureContract(run, run.env.deployment.value) : undefined
    const existing = yield* http("GET", `/v1/billing/admin/plans/${planSlug}`, { token: tokens.admin })
    const created = existing.status === 404
    const plan = created
      ? yield* Effect.gen(function*() {
        const contractSlug = contract?.slug ??
          (yield* expect(`contract ${DEMO_CONTRACT}`, yield* http("GET", `/v1/billing/admin/contracts/${DEMO_CONTRACT}`, { token: tokens.admin }), [200], ContractView)).slug
        const tokenPrice = Option.match(run.env.deployment, {
          onNone: () => [],
          onSome: (d) => [{ network, token: d.token.toLowerCase(), amount: DEMO_TOKEN_PRICE.toString() }]
        })
        const res = yield* http("POST", "/v1/billing/admin/plans", {
          token: tokens.admin,
          body: {
            slug: planSlug,
            title: "Demo monthly (e2e)",
            interval: "month",
            contract_slug: contractSlug,
            prices: [{ network, token: "native", amount: DEMO_NATIVE_PRICE.toString() }, ...tokenPrice],
            monthly_limits: { requests: 10000 },
            features: ["demo"]
          }
        })
        return yield* expect("create plan", res, [201], PlanView)
      })
      : yield* expect(`plan ${planSlug}`, existing, [200], PlanView)
    const price = plan.prices.find((p) => p.network === network && p.token === "native")
    yield* check(price !== undefined, `plan ${planSlug} has no native price on ${network}`)
    yield* check(plan.is_active, `plan ${planSlug} is not active`)
    const listed = yield* expect("public plans", yield* http("GET", "/v1/billing/plans"), [200], PlanList)
    yield* check(listed.items.some((p) => p.slug === planSlug), `plan ${planSlug} is not in GET /v1/billing/plans`)
    return {
      summary: `${planSlug} ${created ? "created" : "already there"}: ${price!.amount} native on ${network}, contract ${plan.contract_slug}`,
      data: { created, plan, ...(contract === undefined ? {} : { contract: { slug: contract.slug, network: contract.network, address: contract.address } }) },
      plan,
      created,
      price: price!
    }
  })

export const checkout = (run: Run, price: { readonly amount: bigint }) =>
  Effect.gen(function*() {
    const res = yield* run.http("POST", "/v1/billing/checkout", {
      token: run.tokens.user,
      headers: { "idempotency-key": `e2e-${randomUUID()}` },
      body: { plan_slug: run.planSlug, wallet_address: run.payer.address, network: run.network, token: "native" }
    })
    const view = yield* expect("checkout", res, [200, 201], CheckoutView)
    yield* check(view.status === "pending", `checkout is ${view.status}, not pending`)
    yield* check(view.chain_id === run.env.chainId, `checkout is for chain ${view.chain_id}, the RPC serves ${run.env.chainId}`)
    yield* check(view.token === "native" && view.amount === price.amount.toString(), `checkout asks ${view.amount} ${view.token}, the plan costs ${price.amount} native`)
    yield* check(view.payload.transactions.length > 0, "checkout payload has no wallet transaction")
    return {
      summary: `transaction ${view.transaction_id} pending: ${view.amount} native on ${view.network}; wallet payload of ${view.payload.transactions.length} transaction(s)`,
      data: view,
      view
    }
  })

export const pay = (run: Run, view: CheckoutView) =>
  Effect.gen(function*() {
    const receipts = yield* run.chain.sendPayload(view, run.payer)
    const last = receipts[receipts.length - 1]!
    const minted = yield* run.chain.mintedLog(last, view.payload.transactions[view.payload.transactions.length - 1]!.to)
    return {
      summary: `paid from ${run.payer.address} in ${last.transactionHash} (block ${last.blockNumber}, log ${minted.logIndex})`,
      data: {
        from: run.payer.address,
        transactions: receipts.map((r) => ({ tx_hash: r.transactionHash, block_number: r.blockNumber.toString(), gas_used: r.gasUsed.toString() })),
        minted_log_index: minted.logIndex
      },
      receipt: last,
      logIndex: minted.logIndex
    }
  })

export const webhook = (run: Run, contract: string, view: CheckoutView, receipt: TransactionReceipt, logIndex: number) =>
  Effect.gen(function*() {
    const secret: Redacted.Redacted = yield* Option.match(run.env.webhookSecret, {
      onNone: () => Effect.fail(new CheckFailed({ message: "no webhook secret: pass --webhook-secret or set BILLING_WEBHOOK_SECRET" })),
      onSome: Effect.succeed
    })
    const event = {
      type: "payment.minted",
      contract,
      network: run.network,
      tx_hash: receipt.transactionHash,
      log_index: logIndex,
      block_number: Number(receipt.blockNumber),
      order_id: view.order_id
    }
    const raw = JSON.stringify(event)
    const id = `msg_e2e_${randomBytes(8).toString("hex")}`
    const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const res = yield* run.http("POST", "/v1/billing/contracts/webhook", {
      raw,
      headers: {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(Redacted.value(secret), id, timestamp, raw)
      }
    })
    const accepted = yield* expect("webhook", res, [202], WebhookAccepted)
    return {
      summary: `signed webhook ${id} accepted (202${accepted.duplicate ? ", duplicate" : ""})`,
      data: { webhook_id: id, timestamp, event, status: res.status, response: accepted }
    }
  })

class NotYet extends Data.TaggedError("NotYet")<{ readonly status: string }> {}

const SETTLED_BADLY = new Set(["failed", "expired", "reversed", "refunded"])

/** Mines the network's confirmations on a devnet, then polls `/me/history` until the payment is confirmed. */
export const confirmation = (run: Run, view: CheckoutView, confirmations: number) =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    if (run.env.devnet) yield* run.chain.mine(confirmations)
    const poll = Effect.gen(function*() {
      const page = yield* expect("history", yield* run.http("GET", "/v1/billing/me/history?limit=100", { token: run.tokens.user }), [200], HistoryPage)
      const item = page.items.find((i) => i.transaction_id === view.transaction_id)
      if (item === undefined) return yield* new CheckFailed({ message: `transaction ${view.transaction_id} is not in /me/history` })
      if (SETTLED_BADLY.has(item.status)) {
        return yield* new CheckFailed({ message: `payment ${item.status}${item.failure_reason === null ? "" : ` (${item.failure_reason})`}` })
      }
      if (item.status !== "confirmed") {
        if (run.env.devnet) yield* run.chain.mine(1)
        return yield* new NotYet({ status: item.status })
      }
      return item
    })
    const item: HistoryItem = yield* poll.pipe(
      Effect.retry({ schedule: Schedule.spaced("500 millis").pipe(Schedule.upTo(run.timeout)), while: (e) => e._tag === "NotYet" }),
      Effect.catchTag("NotYet", ({ status }) =>
        Effect.fail(new CheckFailed({ message: `payment still ${status} after ${Duration.format(run.timeout)}` })))
    )
    const waited = (yield* Clock.currentTimeMillis) - started
    return {
      summary: `confirmed after ${waited} ms (${confirmations} confirmation(s)${run.env.devnet ? ", blocks mined" : ""})`,
      data: { transaction_id: item.transaction_id, status: item.status, tx_hash: item.tx_hash, paid_amount: item.paid_amount, confirmed_at: item.confirmed_at, confirmations },
      item
    }
  })
