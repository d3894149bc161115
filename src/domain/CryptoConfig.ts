import { Schema } from "effect"
import { NetworkName, RpcUrl } from "./Network.ts"
import { PositiveAmount } from "./Money.ts"

const PerNetwork = <A, I>(value: Schema.Schema<A, I>) =>
  Schema.Record({ key: NetworkName, value }).pipe(Schema.filter((r) => Object.keys(r).length <= 64 || "at most 64 networks"))

/** A live change, merged per network: networks not named are untouched. */
export const CryptoConfigUpdate = Schema.Struct({
  // Bounded: each endpoint is probed before the change is accepted.
  rpc_endpoints: Schema.optional(PerNetwork(Schema.Union(RpcUrl, Schema.NonEmptyArray(RpcUrl).pipe(Schema.maxItems(16))))),
  confirmations: Schema.optional(PerNetwork(Schema.Int.pipe(Schema.between(0, 1000)))),
  gas_cap: Schema.optional(PerNetwork(PositiveAmount)),
  /** Required for a network that is not configured yet. */
  chain_id: Schema.optional(PerNetwork(Schema.Int.pipe(Schema.positive())))
}).pipe(Schema.filter((u) =>
  Object.values(u).some((v) => v !== undefined && Object.keys(v).length > 0) || "name at least one network to change"
))
export type CryptoConfigUpdate = typeof CryptoConfigUpdate.Type

export const NetworkView = Schema.Struct({
  network: Schema.String,
  chain_id: Schema.Number,
  rpc_endpoints: Schema.Array(Schema.String),
  confirmations: Schema.Number,
  gas_cap: Schema.String,
  updated_at: Schema.String
})
export const CryptoConfigView = Schema.Struct({ networks: Schema.Array(NetworkView) })
export type CryptoConfigView = typeof CryptoConfigView.Type
