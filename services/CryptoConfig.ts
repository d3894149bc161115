import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { RpcConfig } from "../src/Config.ts"
import { decodeRows } from "./Rows.ts"

const Row = Schema.Struct({
  network: Schema.String,
  chain_id: Schema.NumberFromString,
  rpc_endpoints: Schema.NonEmptyArray(Schema.String),
  confirmations: Schema.Number,
  gas_cap: Schema.BigInt
})
export type NetworkConfig = typeof Row.Type
const decode = decodeRows(Row)

/** Per-network chain settings in PostgreSQL; BILLING_RPC_CONFIG seeds networks that are not there yet. */
export class CryptoConfig extends Effect.Service<CryptoConfig>()("billing/CryptoConfig", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const all = sql`SELECT network, chain_id::text AS chain_id, rpc_endpoints, confirmations, gas_cap::text AS gas_cap
      FROM crypto_config ORDER BY network`.pipe(Effect.orDie, Effect.flatMap(decode))

    const seed = (config: RpcConfig) =>
      Effect.forEach(Object.entries(config), ([network, c]) =>
        sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations, gas_cap)
          VALUES (${network}, ${c.chain_id}, ${JSON.stringify(c.rpc)}::jsonb, ${c.confirmations}, ${c.gas_cap.toString()})
          ON CONFLICT (network) DO NOTHING`, { discard: true }).pipe(Effect.orDie)

    return { all, seed } as const
  })
}) {}
