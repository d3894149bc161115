/**
 * Where the e2e run happens. With --base-url: a running server, paid on the chain given by --rpc-url or else the first
 * RPC endpoint the server has configured for the network. Without it: the whole service in this process on a free
 * port (migrated, the network seeded like `serve` does), on a devnet started here unless --rpc-url names a node
 * (the reference contracts are then deployed to it from anvil's dev account 0).
 */
import { Config, ConfigProvider, Data, Effect, Layer, Logger, LogLevel, Option, Redacted, Schedule } from "effect"
import { randomBytes } from "node:crypto"
import { PgLive } from "../../../services/Database.ts"
import { SignerKey } from "../../../services/QuoteSigner.ts"
import { appLayer } from "../../App.ts"
import { migrate, pointNetworkAt, seedFromEnvironment } from "../../Bootstrap.ts"
import { Anvil } from "../../devnet/Anvil.ts"
import { accountFromKey, deployReference } from "../../devnet/Deploy.ts"
import { Devnet } from "../../devnet/Devnet.ts"
import { chainIdOf, isDevnetNode } from "./Chain.ts"
import { client } from "./Http.ts"
import { Records } from "./Records.ts"

/** Confirmations of the network when this command configures it (as `serve` does for its devnet). */
export const CONFIRMATIONS = 2

export interface Environment {
  readonly baseUrl: string
  readonly inProcess: boolean
  readonly rpcUrl: string
  readonly chainId: number
  /** The node mines on request (anvil, hardhat). */
  readonly devnet: boolean
  /** Reference contracts deployed by this run (in-process only): the demo contract is pointed at them. */
  readonly deployment: Option.Option<{ readonly contract: string; readonly token: string }>
  /** What the webhook is signed with; none when neither --webhook-secret nor BILLING_WEBHOOK_SECRET is set. */
  readonly webhookSecret: Option.Option<Redacted.Redacted>
}

export class SetupFailed extends Data.TaggedError("SetupFailed")<{ readonly message: string }> {}

export interface Wanted {
  readonly network: string
  readonly baseUrl: Option.Option<string>
  readonly rpcUrl: Option.Option<string>
  readonly webhookSecret: Option.Option<Redacted.Redacted>
}

const EnvWebhookSecret = Config.option(Config.redacted("BILLING_WEBHOOK_SECRET"))

const startDevnet = (key: Redacted.Redacted<string>) =>
  Effect.flatMap(Anvil.freePort, (port) => Devnet.start({ port, signerPrivateKey: key })).pipe(
    // A port taken between freePort and anvil's bind makes anvil exit: try another.
    Effect.retry({ times: 3, while: (e) => e._tag === "AnvilError" && e.reason === "Exited" }),
    Effect.map((d) => ({ rpcUrl: d.rpc_url, chainId: d.chain_id, contract: d.contract_address, token: d.token_address, devnet: true }))
  )

const deployTo = (rpcUrl: string, key: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const chainId = yield* chainIdOf(rpcUrl)
    const signer = yield* accountFromKey(Redacted.value(key))
    const deployed = yield* deployReference({ rpcUrl, chainId, signerAddress: signer.address })
    return { rpcUrl, chainId, contract: deployed.contractAddress, token: deployed.tokenAddress, devnet: yield* isDevnetNode(rpcUrl) }
  })

const healthy = (baseUrl: string) =>
  client(baseUrl)("GET", "/healthz").pipe(
    Effect.filterOrFail((r) => r.status === 200, () => new SetupFailed({ message: `${baseUrl}/healthz is not 200` })),
    Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("30 seconds"))),
    Effect.mapError((e) => new SetupFailed({ message: e.message }))
  )

const inProcess = (wanted: Wanted) =>
  Effect.gen(function*() {
    yield* migrate
    const { key } = yield* SignerKey
    const chain = Option.isSome(wanted.rpcUrl) ? yield* deployTo(wanted.rpcUrl.value, key) : yield* startDevnet(key)
    yield* Effect.gen(function*() {
      yield* pointNetworkAt(wanted.network, chain.chainId, chain.rpcUrl, CONFIRMATIONS)
      yield* seedFromEnvironment({
        [wanted.network]: { chain_id: chain.chainId, rpc: [chain.rpcUrl], confirmations: CONFIRMATIONS, gas_cap: 1_000_000n }
      })
    }).pipe(Effect.provide(PgLive))
    // The server verifies with BILLING_WEBHOOK_SECRET when set (so a wrong --webhook-secret is caught), else with
    // --webhook-secret, else with a secret made up for this run.
    const configured = yield* EnvWebhookSecret
    const serverSecret = Option.getOrElse(
      Option.orElse(configured, () => wanted.webhookSecret),
      () => Redacted.make(randomBytes(24).toString("hex"))
    )
    const port = yield* Anvil.freePort
    // Beneath the webhook secret: the command's own configuration (the environment, then the devnet's values).
    const current = yield* Effect.configProviderWith(Effect.succeed)
    const provider = ConfigProvider.fromMap(new Map([["BILLING_WEBHOOK_SECRET", Redacted.value(serverSecret)]]), { pathDelim: "_" })
      .pipe(ConfigProvider.orElse(() => current))
    // The service's own logs stay at warnings and errors: stdout and stderr are the run's report.
    yield* Layer.build(appLayer(port).pipe(
      Layer.provide(Layer.setConfigProvider(provider)),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    ))
    const baseUrl = `http://127.0.0.1:${port}`
    yield* healthy(baseUrl)
    yield* Effect.logInfo("e2e: service started in this process").pipe(Effect.annotateLogs({ base_url: baseUrl, rpc_url: chain.rpcUrl }))
    const env: Environment = {
      baseUrl,
      inProcess: true,
      rpcUrl: chain.rpcUrl,
      chainId: chain.chainId,
      devnet: chain.devnet,
      deployment: Option.some({ contract: chain.contract, token: chain.token }),
      webhookSecret: Option.orElse(wanted.webhookSecret, () => Option.some(serverSecret))
    }
    return env
  })

const remote = (wanted: Wanted, baseUrl: string) =>
  Effect.gen(function*() {
    yield* healthy(baseUrl)
    const rpcUrl = Option.isSome(wanted.rpcUrl)
      ? wanted.rpcUrl.value
      : yield* Effect.flatMap(Records, (r) => r.network(wanted.network)).pipe(
        Effect.provide(PgLive),
        Effect.flatMap((row) =>
          row?.rpc_endpoints[0] === undefined
            ? new SetupFailed({ message: `network ${wanted.network} is not in crypto_config: pass --rpc-url` })
            : Effect.succeed(row.rpc_endpoints[0])
        )
      )
    const env: Environment = {
      baseUrl,
      inProcess: false,
      rpcUrl,
      chainId: yield* chainIdOf(rpcUrl),
      devnet: yield* isDevnetNode(rpcUrl),
      deployment: Option.none(),
      webhookSecret: wanted.webhookSecret
    }
    return env
  })

/** Sets up the environment; an in-process server and a devnet stop with the scope. */
export const environment = (wanted: Wanted) =>
  Effect.gen(function*() {
    if (Option.isNone(wanted.baseUrl)) return yield* inProcess(wanted)
    const configured = yield* EnvWebhookSecret
    const webhookSecret = Option.orElse(wanted.webhookSecret, () => configured)
    return yield* remote({ ...wanted, webhookSecret }, wanted.baseUrl.value.replace(/\/+$/, ""))
  })
