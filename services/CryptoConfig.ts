import { SqlClient } from "@effect/sql"
import { Data, Effect, Schema } from "effect"
import type { RpcConfig } from "../src/Config.ts"
import type { CryptoConfigUpdate, CryptoConfigView } from "../src/domain/CryptoConfig.ts"
import { maskUrl } from "../src/domain/MaskUrl.ts"
import { Audit } from "./Audit.ts"
import type { Actor } from "./Contracts.ts"
import { Notifications } from "./Notifications.ts"
import { decodeRows, transactional } from "./Rows.ts"

export class CryptoConfigInvalid extends Data.TaggedError("CryptoConfigInvalid")<{ readonly message: string }> {}

const Row = Schema.Struct({
  network: Schema.String,
  chain_id: Schema.NumberFromString,
  rpc_endpoints: Schema.NonEmptyArray(Schema.String),
  confirmations: Schema.Number,
  gas_cap: Schema.BigInt,
  updated_at: Schema.DateFromSelf
})
export type NetworkConfig = typeof Row.Type
const decode = decodeRows(Row)

/** What finance_ops and the audit trail see: endpoint URLs masked. */
const toView = (r: NetworkConfig) => ({
  network: r.network,
  chain_id: r.chain_id,
  rpc_endpoints: r.rpc_endpoints.map(maskUrl),
  confirmations: r.confirmations,
  gas_cap: r.gas_cap.toString(),
  updated_at: r.updated_at.toISOString()
})

/** Per-network chain settings in PostgreSQL; BILLING_RPC_CONFIG seeds networks that are not there yet. */
export class CryptoConfig extends Effect.Service<CryptoConfig>()("billing/CryptoConfig", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit
    const notifications = yield* Notifications

    const select = (lock: boolean) =>
      sql`SELECT network, chain_id::text AS chain_id, rpc_endpoints, confirmations, gas_cap::text AS gas_cap, updated_at
        FROM crypto_config ORDER BY network ${lock ? sql`FOR UPDATE` : sql``}`.pipe(Effect.orDie, Effect.flatMap(decode))
    const all = select(false)

    const view: Effect.Effect<CryptoConfigView> = Effect.map(all, (rows) => ({ networks: rows.map(toView) }))

    const seed = (config: RpcConfig) =>
      Effect.forEach(Object.entries(config), ([network, c]) =>
        sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations, gas_cap)
          VALUES (${network}, ${c.chain_id}, ${JSON.stringify(c.rpc)}::jsonb, ${c.confirmations}, ${c.gas_cap.toString()})
          ON CONFLICT (network) DO NOTHING`, { discard: true }).pipe(Effect.orDie)

    /** Merges per network, audited and notified in the same transaction. */
    const update = Effect.fn("CryptoConfig.update")(function*(change: CryptoConfigUpdate, actor: Actor) {
      const before = new Map((yield* select(true)).map((r) => [r.network, r]))
      const named = new Set([change.rpc_endpoints, change.confirmations, change.gas_cap, change.chain_id].flatMap((m) => Object.keys(m ?? {})))
      for (const network of named) {
        const current = before.get(network)
        const endpoints = change.rpc_endpoints?.[network]
        const rpc = endpoints === undefined ? current?.rpc_endpoints : typeof endpoints === "string" ? [endpoints] : endpoints
        const chainId = change.chain_id?.[network] ?? current?.chain_id
        if (rpc === undefined || chainId === undefined) {
          return yield* new CryptoConfigInvalid({ message: `network ${network} is new: give its chain_id and rpc_endpoints` })
        }
        yield* sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations, gas_cap)
          VALUES (${network}, ${chainId}, ${JSON.stringify(rpc)}::jsonb, ${change.confirmations?.[network] ?? current?.confirmations ?? 2},
            ${(change.gas_cap?.[network] ?? current?.gas_cap ?? 1_000_000n).toString()})
          ON CONFLICT (network) DO UPDATE SET chain_id = excluded.chain_id, rpc_endpoints = excluded.rpc_endpoints,
            confirmations = excluded.confirmations, gas_cap = excluded.gas_cap, updated_at = now()`.pipe(Effect.orDie)
      }
      const after = yield* all
      for (const network of named) {
        const was = before.get(network)
        const now = after.find((r) => r.network === network)
        yield* audit.record({
          actor: actor.id,
          action: "crypto_config.update",
          resource: `crypto_config:${network}`,
          before: was === undefined ? undefined : toView(was),
          after: now === undefined ? undefined : toView(now),
          requestId: actor.requestId
        })
      }
      yield* notifications.notifyFinanceOps("crypto_config.changed", { actor: actor.id, networks: [...named] })
      return { networks: after.map(toView) } satisfies CryptoConfigView
    }, transactional(sql))

    return { all, view, seed, update } as const
  }),
  dependencies: [Audit.Default, Notifications.Default]
}) {}
