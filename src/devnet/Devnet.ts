/**
 * A ready-to-use local chain: anvil plus the deployed reference contracts.
 */
import { Effect, Redacted, Schema, type Scope } from "effect"
import { type AnvilError, start as startAnvil } from "./Anvil.ts"
import { accountFromKey, DEV_SIGNER_PRIVATE_KEY, type DeployError, deployReference } from "./Deploy.ts"

export const DevnetChainId = 31337

const EvmAddress = Schema.TemplateLiteral("0x", Schema.String).pipe(
  Schema.pattern(/^0x[0-9a-fA-F]{40}$/),
  Schema.annotations({ identifier: "EvmAddress" })
)

export const DevnetInfo = Schema.Struct({
  rpc_url: Schema.String,
  chain_id: Schema.Int,
  network: Schema.Literal("anvil"),
  contract_address: EvmAddress,
  token_address: EvmAddress,
  signer_address: EvmAddress,
  treasury_address: EvmAddress
})
export type DevnetInfo = typeof DevnetInfo.Type

export interface DevnetOptions {
  readonly port: number
  /** The quote signer's key; DEV_SIGNER_PRIVATE_KEY (anvil account 8) when absent. */
  readonly signerPrivateKey?: Redacted.Redacted<string> | string
  /** Seconds between blocks; absent means a block per transaction (automine). */
  readonly blockTime?: number
}

/** Starts anvil (chain id 31337) and deploys TestToken and SubscriptionPass; the node stops with the scope. */
export const start = (options: DevnetOptions): Effect.Effect<DevnetInfo, AnvilError | DeployError, Scope.Scope> =>
  Effect.gen(function*() {
    const key = options.signerPrivateKey === undefined
      ? DEV_SIGNER_PRIVATE_KEY
      : Redacted.isRedacted(options.signerPrivateKey)
      ? Redacted.value(options.signerPrivateKey)
      : options.signerPrivateKey
    const signer = yield* accountFromKey(key)
    const anvil = yield* startAnvil({
      port: options.port,
      chainId: DevnetChainId,
      ...(options.blockTime === undefined ? {} : { blockTime: options.blockTime })
    })
    const deployed = yield* deployReference({
      rpcUrl: anvil.rpcUrl,
      chainId: anvil.chainId,
      signerAddress: signer.address
    })
    return DevnetInfo.make({
      rpc_url: anvil.rpcUrl,
      chain_id: anvil.chainId,
      network: "anvil",
      contract_address: deployed.contractAddress,
      token_address: deployed.tokenAddress,
      signer_address: deployed.signerAddress,
      treasury_address: deployed.treasuryAddress
    })
  }).pipe(Effect.withSpan("Devnet.start", { attributes: { port: options.port } }))

export const Devnet = { start } as const
