import { Command, Options } from "@effect/cli"
import { Effect, Layer, Option } from "effect"
import type { RpcConfig } from "../domain/Network.ts"
import { PgLive } from "../../services/Database.ts"
import { SignerKey } from "../../services/QuoteSigner.ts"
import { PreviousSecretsKeys, SecretsKey } from "../../services/SecretsKeyring.ts"
import { TokenVerifierConfig } from "../../services/TokenVerifierConfig.ts"
import { appLayer } from "../App.ts"
import { admitRpcEndpoints, migrate, pointNetworkAt, RpcConfigEnv, seedFromEnvironment } from "../Bootstrap.ts"
import { PortConfig, RolesConfig } from "../Config.ts"
import { DEMO_PLAN, registerDemo } from "../Demo.ts"
import { preflight } from "../Preflight.ts"
import { Anvil } from "../devnet/Anvil.ts"
import { refuseDevelopmentValues, withDevelopmentDefaults } from "../devnet/DevelopmentConfig.ts"
import { Devnet } from "../devnet/Devnet.ts"

const devnetPort = Options.integer("devnet-port").pipe(
  Options.withDescription("port of the embedded devnet when BILLING_RPC_CONFIG is unset (default: a free port)"),
  Options.optional
)

/** Without BILLING_RPC_CONFIG: a devnet in this process, its contract and a demo plan registered. */
const embeddedDevnet = (port: Option.Option<number>) =>
  Effect.gen(function*() {
    const { key } = yield* SignerKey
    const devnet = yield* Devnet.start({
      port: Option.isSome(port) ? port.value : yield* Anvil.freePort,
      signerPrivateKey: key,
      blockTime: 1
    })
    yield* pointNetworkAt(devnet.network, devnet.chain_id, devnet.rpc_url, 2)
    yield* seedFromEnvironment({ [devnet.network]: { chain_id: devnet.chain_id, rpc: [devnet.rpc_url], confirmations: 2, gas_cap: 1_000_000n } })
    yield* registerDemo(devnet)
    yield* tryIt(yield* PortConfig)
    yield* Effect.logInfo("BILLING_RPC_CONFIG is unset: started an embedded devnet").pipe(
      Effect.annotateLogs({ ...devnet, demo_plan: DEMO_PLAN })
    )
    return devnet
  }).pipe(Effect.provide(PgLive))

/** Secrets every start needs, read before anything starts so a missing one is named at once. */
const requiredSecrets = Effect.all([TokenVerifierConfig, SignerKey, SecretsKey, PreviousSecretsKeys])

const run = (devnetPort: Option.Option<number>, rpc: Option.Option<RpcConfig>) =>
  Effect.gen(function*() {
    yield* preflight
    const port = yield* PortConfig
    const roles = yield* RolesConfig
    yield* requiredSecrets
    if (Option.isSome(rpc)) yield* admitRpcEndpoints(rpc.value)
    yield* migrate
    if (Option.isSome(rpc)) yield* seedFromEnvironment(rpc.value).pipe(Effect.provide(PgLive))
    else yield* embeddedDevnet(devnetPort)
    return yield* Layer.launch(appLayer(port, roles))
  }).pipe(Effect.scoped)

/**
 * With BILLING_RPC_CONFIG the start is a production one: every secret must come from the environment and none may be
 * a public development value. Without it, the embedded devnet runs with development values beneath the environment.
 */
export const serve = Command.make("serve", { devnetPort }, ({ devnetPort }) =>
  Effect.flatMap(Effect.either(RpcConfigEnv), (rpc) => {
    // unreadable, it is meant as a production start: report it with everything else wrong (preflight), not alone
    if (rpc._tag === "Left") return Effect.zipRight(preflight, Effect.fail(rpc.left))
    return Option.isSome(rpc.right)
      ? Effect.zipRight(refuseDevelopmentValues, run(devnetPort, rpc.right))
      : withDevelopmentDefaults(run(devnetPort, rpc.right))
  })
).pipe(Command.withDescription("run the HTTP API and the consumers (migrates first)"))

const tryIt = (port: number) =>
  Effect.logInfo(`try it: TOKEN=$(npx evm-billing token --user-id alice); curl -s -X POST http://127.0.0.1:${port}/v1/billing/checkout -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"plan_slug":"${DEMO_PLAN}","wallet_address":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}'`)
