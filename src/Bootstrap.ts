import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Config, ConfigError, Effect, Layer, Option } from "effect"
import { CryptoConfig } from "../services/CryptoConfig.ts"
import { DatabaseUrl, ensureDatabase, PgLive } from "../services/Database.ts"
import { EndpointGuard } from "../services/EndpointGuard.ts"
import { Gateways } from "../services/Gateways.ts"
import { runMigrations } from "../services/Migrations.ts"
import { encryptLegacySecrets } from "../services/WebhookSecretsAtRest.ts"
import { jsonConfig } from "./Config.ts"
import { GatewayConfig, RpcConfig } from "./domain/Network.ts"

export const RpcConfigEnv = Config.option(jsonConfig("BILLING_RPC_CONFIG", RpcConfig))
export const GatewaysEnv = Config.option(jsonConfig("BILLING_EVM_GATEWAYS", GatewayConfig))

/**
 * A production start refuses an endpoint outside the policy before it migrates; the message names the variable and
 * the endpoint's index, never its URL. A host that does not resolve now is left to the Rpc service, which re-checks
 * every endpoint whenever it probes it and keeps a refused one out of rotation.
 */
export const admitRpcEndpoints = (rpc: RpcConfig) =>
  Effect.flatMap(EndpointGuard, (guard) =>
    Effect.forEach(Object.entries(rpc), ([network, c]) =>
      Effect.forEach(c.rpc, (url, i) =>
        guard.admit(url).pipe(Effect.catchTag("EndpointRefused", (e) =>
          e.reason === "unresolved"
            ? Effect.logWarning(`BILLING_RPC_CONFIG: network ${network}, rpc endpoint ${i}: ${e.message}; it stays untrusted until it does`)
            : Effect.fail(ConfigError.InvalidData(["BILLING_RPC_CONFIG"], `BILLING_RPC_CONFIG: network ${network}, rpc endpoint ${i} refused: ${e.message}`))
        ))), { discard: true })).pipe(Effect.provide(EndpointGuard.Default))

/** Creates the database if needed and applies migrations; safe when several processes start at once. */
export const migrate = Effect.gen(function*() {
  const url = yield* DatabaseUrl
  yield* ensureDatabase(url)
  const { applied, sealed } = yield* Effect.all({ applied: runMigrations(), sealed: encryptLegacySecrets }).pipe(
    Effect.provide(Layer.merge(PgLive, NodeContext.layer))
  )
  for (const [id, name] of applied) yield* Effect.logInfo(`applied migration ${String(id).padStart(3, "0")}_${name}`)
  // Secrets that migration 008 moved out of contracts are sealed in the same run (needs BILLING_SECRETS_KEY then).
  if (sealed > 0) yield* Effect.logInfo(`encrypted ${sealed} webhook secret(s) stored in plain text`)
  return applied
})

/**
 * Seeds crypto_config and gateways from the environment. Networks already stored keep their stored
 * settings (live changes survive restarts); with no gateways configured, one gateway `evm` serves every
 * configured network.
 */
export const seedFromEnvironment = (rpc: RpcConfig) =>
  Effect.gen(function*() {
    const crypto = yield* CryptoConfig
    const gateways = yield* Gateways
    yield* crypto.seed(rpc)
    const configured = yield* GatewaysEnv
    yield* gateways.seed(Option.getOrElse(configured, () => [{
      slug: "evm",
      title: "EVM",
      networks: Object.keys(rpc),
      enabled: true
    }]))
  }).pipe(Effect.provide(Layer.mergeAll(CryptoConfig.Default, Gateways.Default)))

/** For an ephemeral devnet the stored network must follow the new node (a new port, a fresh chain). */
export const pointNetworkAt = (network: string, chainId: number, rpcUrl: string, confirmations: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations)
      VALUES (${network}, ${chainId}, ${JSON.stringify([rpcUrl])}::jsonb, ${confirmations})
      ON CONFLICT (network) DO UPDATE SET chain_id = excluded.chain_id, rpc_endpoints = excluded.rpc_endpoints,
        confirmations = excluded.confirmations, updated_at = now()`).pipe(Effect.orDie)
