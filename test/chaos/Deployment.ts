/** The service under test: a fresh database and NATS prefix, the service started, the contract and a plan registered. */
import { Effect, Schema } from "effect"
import { join } from "node:path"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { freePort } from "../../src/devnet/Anvil.ts"
import { testToken } from "../support/jwt.ts"
import { persistently, request } from "./Http.ts"
import { serviceProcess } from "./Service.ts"
import { freshNames, serviceEnv, type Stack } from "./Stack.ts"

export const PASS = "pass"
export const PLAN = "chaos-monthly"
export const PRICE = 10n ** 15n

const Created = Schema.Struct({ status: Schema.Literal(201, 200) })

export const deploy = (stack: Stack, scenario: string) =>
  Effect.gen(function*() {
    const names = freshNames(scenario)
    const env = serviceEnv(stack, names.database, names.prefix)
    const service = yield* serviceProcess(stack.runner, env, yield* freePort, join(stack.logs, `${names.database}.log`))
    yield* service.start
    const admin = testToken("chaos-admin", ["admin"], stack.secrets.jwt)
    const post = (path: string, body: unknown) =>
      persistently(request(service.baseUrl, "POST", path, { token: admin, body }), path).pipe(
        Effect.filterOrElse(Schema.is(Created), (a) => Effect.dieMessage(`${path} answered ${a.status}: ${a.text}`))
      )
    yield* post("/v1/billing/admin/contracts", { slug: PASS, network: "anvil", address: stack.chain.info.contract_address, abi: SubscriptionPassAbi })
    yield* post("/v1/billing/admin/plans", {
      slug: PLAN,
      title: "Chaos monthly",
      interval: "month",
      contract_slug: PASS,
      prices: [{ network: "anvil", token: "native", amount: PRICE.toString() }],
      monthly_limits: { requests: 1000 },
      features: ["api"]
    })
    return { ...names, service, url: stack.postgres.url(names.database) }
  })

export type Deployment = Effect.Effect.Success<ReturnType<typeof deploy>>
