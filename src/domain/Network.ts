import { Schema } from "effect"

/** Networks as the domain names them, and the RPC and gateway configuration shapes per network. */

/** A network name as used in plans, contracts and BILLING_RPC_CONFIG. */
export const NetworkName = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,62}$/),
  Schema.annotations({ identifier: "NetworkName", description: "lower-case network name, e.g. anvil or base" })
)

export const RpcUrl = Schema.String.pipe(
  Schema.filter((s) => {
    try {
      const u = new URL(s)
      return u.protocol === "http:" || u.protocol === "https:" || u.protocol === "ws:" || u.protocol === "wss:"
        ? undefined
        : "an http(s) or ws(s) URL"
    } catch {
      return "a valid URL"
    }
  }),
  Schema.annotations({ identifier: "RpcUrl" })
)

export const NetworkRpc = Schema.Struct({
  chain_id: Schema.Int.pipe(Schema.positive()),
  rpc: Schema.NonEmptyArray(RpcUrl),
  confirmations: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 1000)), { default: () => 2 }),
  gas_cap: Schema.optionalWith(Schema.BigInt.pipe(Schema.positiveBigInt()), { default: () => 1_000_000n })
})
export type NetworkRpc = typeof NetworkRpc.Type

export const RpcConfig = Schema.Record({ key: NetworkName, value: NetworkRpc })
export type RpcConfig = typeof RpcConfig.Type

export const GatewayConfig = Schema.Array(Schema.Struct({
  slug: NetworkName,
  title: Schema.optionalWith(Schema.String, { default: () => "" }),
  networks: Schema.Array(NetworkName),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true })
}))
export type GatewayConfig = typeof GatewayConfig.Type
