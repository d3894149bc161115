/**
 * `evm-billing e2e`, the playbook's billing_e2e: proves the whole payment flow against a server (one started in this
 * process by default) and prints every step: the demo plan, the checkout payload, the payment on chain, the signed
 * webhook, confirmation, the ledger entry, the events, notifications and audit rows written with it, the user's
 * bundle, finance_ops' view, and removal of the demo plan. Exits non-zero at the first step that fails.
 */
import { Command, Options } from "@effect/cli"
import { Console, Duration, Effect, Option } from "effect"
import { randomUUID } from "node:crypto"
import type { PrivateKeyAccount } from "viem"
import { PgLive } from "../../services/Database.ts"
import { DEMO_PLAN } from "../Demo.ts"
import { withDevelopmentDefaults } from "../devnet/DevelopmentConfig.ts"
import { JwtSecret } from "../../services/TokenVerifierConfig.ts"
import { type Role, signToken } from "../domain/Token.ts"
import { TokenClaimsConfig } from "./token.ts"
import { chainClients, devAccount } from "./e2e/Chain.ts"
import { CONFIRMATIONS, type Environment, environment } from "./e2e/Environment.ts"
import { client } from "./e2e/Http.ts"
import * as Inspect from "./e2e/Inspect.ts"
import * as Payment from "./e2e/Payment.ts"
import { Records } from "./e2e/Records.ts"
import { makeReport } from "./e2e/Report.ts"

const options = {
  userId: Options.text("user-id").pipe(Options.withDescription("the paying user (default: a new uuid)"), Options.optional),
  rpcUrl: Options.text("rpc-url").pipe(
    Options.withDescription("node to pay on (default: a devnet started here, or the server's RPC with --base-url)"),
    Options.optional
  ),
  webhookSecret: Options.redacted("webhook-secret").pipe(
    Options.withDescription("secret to sign the webhook with (default: BILLING_WEBHOOK_SECRET)"),
    Options.optional
  ),
  network: Options.text("network").pipe(Options.withDescription("network name, as in crypto_config"), Options.withDefault("anvil")),
  planSlug: Options.text("plan-slug").pipe(Options.withDescription("plan to buy; created (and removed after) if missing"), Options.withDefault(DEMO_PLAN)),
  baseUrl: Options.text("base-url").pipe(
    Options.withDescription("a running server (default: start the service in this process on a free port)"),
    Options.optional
  ),
  account: Options.integer("account").pipe(Options.withDescription("anvil dev account (0..9) that pays"), Options.withDefault(1)),
  timeout: Options.integer("timeout").pipe(Options.withDescription("seconds to wait for confirmation"), Options.withDefault(60)),
  json: Options.boolean("json").pipe(Options.withDescription("print one JSON document with every step"))
}

type Flags = Command.Command.ParseConfig<typeof options>
type Report = Effect.Effect.Success<ReturnType<typeof makeReport>>

const setup = (o: Flags) =>
  Effect.map(environment({ network: o.network, baseUrl: o.baseUrl, rpcUrl: o.rpcUrl, webhookSecret: o.webhookSecret }), (env) => ({
    summary: env.inProcess
      ? `service started in this process at ${env.baseUrl}; ${o.network} (chain ${env.chainId}) via ${env.rpcUrl}`
      : `server ${env.baseUrl}; ${o.network} (chain ${env.chainId}) via ${env.rpcUrl}`,
    data: {
      base_url: env.baseUrl,
      in_process: env.inProcess,
      rpc_url: env.rpcUrl,
      chain_id: env.chainId,
      devnet: env.devnet,
      deployed: Option.getOrNull(env.deployment),
      webhook_secret: Option.isSome(env.webhookSecret) ? "set" : "none"
    },
    env
  }))

/** Every step against a ready environment; PostgreSQL is read for the rows the flow wrote. */
const runSteps = (o: Flags, userId: string, payer: PrivateKeyAccount, report: Report, env: Environment) =>
  Effect.gen(function*() {
    const { step } = report
    const records = yield* Records
    const since = yield* records.now
    const secret = yield* JwtSecret
    const claims = yield* TokenClaimsConfig
    const token = (sub: string, roles: ReadonlyArray<Role>) => signToken({ sub, roles, ttl: Duration.hours(1), ...claims }, secret)
    const run: Payment.Run = {
      env,
      http: client(env.baseUrl),
      chain: chainClients(env.rpcUrl, env.chainId),
      network: o.network,
      planSlug: o.planSlug,
      userId,
      payer,
      tokens: {
        user: yield* token(userId, []),
        admin: yield* token("e2e-admin", ["admin"]),
        financeOps: yield* token("e2e-finance-ops", ["finance_ops"])
      },
      timeout: Duration.seconds(o.timeout)
    }
    const plan = yield* step("plan", Payment.ensurePlan(run))
    const flow = Effect.gen(function*() {
      const checkout = yield* step("checkout", Payment.checkout(run, plan.price))
      const paid = yield* step("payment", Payment.pay(run, checkout.view))
      yield* step("webhook", Payment.webhook(run, plan.plan.contract_slug, checkout.view, paid.receipt, paid.logIndex))
      const network = yield* records.network(o.network)
      yield* step("confirmation", Payment.confirmation(run, checkout.view, network?.confirmations ?? CONFIRMATIONS))
      const refs = { userId, transactionId: checkout.view.transaction_id, orderId: checkout.view.order_id, txHash: paid.receipt.transactionHash }
      yield* step("ledger", Inspect.ledger(records, checkout.view))
      yield* step("events", Inspect.events(records, refs))
      yield* step("notifications", Inspect.notifications(records, refs))
      yield* step("audit", Inspect.audit(records, refs, o.planSlug, plan.created, since))
      yield* step("bundle", Inspect.bundle(run, checkout.view))
      yield* report.optional("overview", Inspect.overview(run, checkout.view))
    })
    // The demo plan this run created is removed even when a step failed; that failure is what the run reports.
    yield* flow.pipe(Effect.matchCauseEffect({
      onSuccess: () => step("cleanup", Inspect.cleanup(run, plan.created, true)),
      onFailure: (cause) => Effect.zipRight(Effect.either(step("cleanup", Inspect.cleanup(run, plan.created, false))), Effect.failCause(cause))
    }))
  }).pipe(Effect.provide(PgLive))

export const e2e = Command.make("e2e", options, (o) =>
  Effect.gen(function*() {
    const userId = Option.getOrElse(o.userId, () => randomUUID())
    const payer = yield* devAccount(o.account)
    const report = yield* makeReport(o.json)
    if (!o.json) yield* Console.log(`e2e for user ${userId}`)
    const all = Effect.gen(function*() {
      const ready = yield* report.step("setup", setup(o))
      yield* runSteps(o, userId, payer, report, ready.env)
    })
    // With --json the document is printed whatever happened, the failing step last.
    yield* all.pipe(Effect.ensuring(
      o.json ? Effect.flatMap(report.document({ user_id: userId, network: o.network }), (doc) => Console.log(JSON.stringify(doc))) : Effect.void
    ))
    if (!o.json) yield* Console.log(`e2e passed for user ${userId}`)
  }).pipe(Effect.scoped, withDevelopmentDefaults)
).pipe(Command.withDescription("prove the payment flow end to end: plan, checkout, on-chain payment, signed webhook, ledger, events, bundle"))
