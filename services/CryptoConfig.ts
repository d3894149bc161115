import { SqlClient } from "@effect/sql"
import { Config, Data, Duration, Effect, Schema } from "effect"
import type { RpcConfig } from "../src/domain/Network.ts"
import type { CryptoConfigUpdate, CryptoConfigView } from "../src/domain/CryptoConfig.ts"
import { maskUrl } from "../src/domain/MaskUrl.ts"
import { Audit } from "./Audit.ts"
import type { Actor } from "./Contracts.ts"
import { EndpointGuard } from "./EndpointGuard.ts"
import { Notifications } from "./Notifications.ts"
import { decodeRows, pgCode, transactional } from "./Rows.ts"

/** How often an instance reloads live configuration (RPC endpoints, webhook secrets) in case a change signal was lost. */
export const ConfigReloadEvery = Config.duration("BILLING_CONFIG_RELOAD").pipe(Config.withDefault(Duration.seconds(30)))

export class CryptoConfigInvalid extends Data.TaggedError("CryptoConfigInvalid")<{ readonly message: string }> {}
/** The network has payments: its chain id is part of their dedupe keys and ledger ids. */
export class ChainIdFrozen extends Data.TaggedError("ChainIdFrozen")<{ readonly network: string }> {}
/** An endpoint outside the policy, unreachable, or on another chain; named by network and index, never URL. */
export class EndpointRejected extends Data.TaggedError("EndpointRejected")<{
  readonly network: string
  readonly endpoint: number
  readonly reason: string
  readonly message: string
}> {}

const RESTRICT_VIOLATION = "23001"
const decodeNetworks = decodeRows(Schema.Struct({ network: Schema.String }))

interface Planned {
  readonly network: string
  readonly chainId: number
  readonly rpc: ReadonlyArray<string>
  readonly confirmations: number
  readonly gasCap: bigint
}

/** What each named network becomes; a new network must give its chain id and endpoints. */
const plan = (change: CryptoConfigUpdate, current: ReadonlyMap<string, NetworkConfig>) =>
  Effect.forEach(
    new Set([change.rpc_endpoints, change.confirmations, change.gas_cap, change.chain_id].flatMap((m) => Object.keys(m ?? {}))),
    (network) => {
      const was = current.get(network)
      const endpoints = change.rpc_endpoints?.[network]
      const rpc = endpoints === undefined ? was?.rpc_endpoints : typeof endpoints === "string" ? [endpoints] : endpoints
      const chainId = change.chain_id?.[network] ?? was?.chain_id
      if (rpc === undefined || chainId === undefined) {
        return Effect.fail(new CryptoConfigInvalid({ message: `network ${network} is new: give its chain_id and rpc_endpoints` }))
      }
      return Effect.succeed<Planned>({
        network,
        chainId,
        rpc,
        confirmations: change.confirmations?.[network] ?? was?.confirmations ?? 2,
        gasCap: change.gas_cap?.[network] ?? was?.gas_cap ?? 1_000_000n
      })
    }
  )

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
    const guard = yield* EndpointGuard

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

    /** Networks whose endpoints must prove themselves: those whose endpoint list or chain id the change names. */
    const needsProof = (change: CryptoConfigUpdate, network: string) =>
      change.rpc_endpoints?.[network] !== undefined || change.chain_id?.[network] !== undefined

    /** A changed chain id of a network with payments: its dedupe keys and ledger ids would change under them. */
    const refuseFrozen = (plans: ReadonlyArray<Planned>, current: ReadonlyMap<string, NetworkConfig>) =>
      Effect.gen(function*() {
        const moving = plans.filter((p) => current.has(p.network) && current.get(p.network)!.chain_id !== p.chainId).map((p) => p.network)
        if (moving.length === 0) return
        const [paid] = yield* sql`SELECT network FROM payment_transactions WHERE network IN ${sql.in(moving)} LIMIT 1`.pipe(
          Effect.orDie,
          Effect.flatMap(decodeNetworks)
        )
        if (paid !== undefined) return yield* new ChainIdFrozen({ network: paid.network })
      })

    const write = Effect.fn("CryptoConfig.write")(function*(change: CryptoConfigUpdate, proven: ReadonlyArray<Planned>, actor: Actor) {
      const before = new Map((yield* select(true)).map((r) => [r.network, r]))
      const plans = yield* plan(change, before)
      // The endpoints were proven against what was stored then: a concurrent change makes that proof stale.
      const stale = plans.some((p) => {
        const q = proven.find((x) => x.network === p.network)
        return q === undefined || q.chainId !== p.chainId || JSON.stringify(q.rpc) !== JSON.stringify(p.rpc)
      })
      if (stale) return yield* new CryptoConfigInvalid({ message: "crypto-config changed concurrently: send the change again" })
      yield* refuseFrozen(plans, before)
      for (const p of plans) {
        yield* sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations, gas_cap)
          VALUES (${p.network}, ${p.chainId}, ${JSON.stringify(p.rpc)}::jsonb, ${p.confirmations}, ${p.gasCap.toString()})
          ON CONFLICT (network) DO UPDATE SET chain_id = excluded.chain_id, rpc_endpoints = excluded.rpc_endpoints,
            confirmations = excluded.confirmations, gas_cap = excluded.gas_cap, updated_at = now()`.pipe(
          // 009's trigger: payments appeared for the network after our check.
          Effect.catchTag("SqlError", (e) => pgCode(e) === RESTRICT_VIOLATION ? new ChainIdFrozen({ network: p.network }) : Effect.die(e))
        )
      }
      const after = yield* all
      for (const { network } of plans) {
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
      yield* notifications.notifyFinanceOps("crypto_config.changed", { actor: actor.id, networks: plans.map((p) => p.network) })
      return { networks: after.map(toView) } satisfies CryptoConfigView
    }, transactional(sql))

    /**
     * Merges per network, audited and notified in one transaction. Every endpoint of a network whose endpoints or
     * chain id change must pass the endpoint policy and answer the chain id first (outside the transaction: probes
     * take up to the RPC timeout); a refused one names its network and index, and nothing is written.
     */
    const update = Effect.fn("CryptoConfig.update")(function*(change: CryptoConfigUpdate, actor: Actor) {
      const current = new Map((yield* all).map((r) => [r.network, r]))
      const plans = yield* plan(change, current)
      yield* refuseFrozen(plans, current)
      yield* Effect.forEach(plans.filter((p) => needsProof(change, p.network)).flatMap((p) => p.rpc.map((url, endpoint) => ({ p, url, endpoint }))),
        ({ endpoint, p, url }) =>
          guard.prove(url, p.chainId).pipe(Effect.mapError((e) =>
            new EndpointRejected({ network: p.network, endpoint, reason: e.reason, message: `network ${p.network}, rpc endpoint ${endpoint}: ${e.message}` })
          )), { concurrency: 8, discard: true })
      return yield* write(change, plans, actor)
    })

    return { all, view, seed, update } as const
  }),
  dependencies: [Audit.Default, Notifications.Default, EndpointGuard.Default]
}) {}
