/**
 * Everything the suite owns, started once per run: a private PostgreSQL cluster, a private nats-server, anvil with
 * the contracts and the RPC gate in front of it, and fresh secrets. Each scenario then gets a database and a NATS
 * prefix of its own on them (`deployment`), with the service as a child process pointed at them.
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startChain } from "./Chain.ts"
import { startNats } from "./NatsServer.ts"
import { startPostgres } from "./Postgres.ts"
import { rpcGate } from "./RpcGate.ts"
import { prepareRunner } from "./Service.ts"

/** Confirmations of the suite's network; reorgs go up to CONFIRMATIONS + 3 deep. */
export const CONFIRMATIONS = 2

export const startStack = (prefer: "tsx" | "auto") => Effect.gen(function*() {
  const runner = yield* prepareRunner(prefer)
  const logs = mkdtempSync(join(tmpdir(), "chaos-logs-"))
  const postgres = yield* startPostgres
  const nats = yield* startNats
  const chain = yield* startChain
  const anvilPort = Number(new URL(chain.info.rpc_url).port)
  const gate = yield* rpcGate({ host: "127.0.0.1", port: anvilPort })
  const secrets = {
    jwt: randomBytes(24).toString("hex"),
    webhook: randomBytes(24).toString("hex"),
    secretsKey: randomBytes(32).toString("base64"),
    metrics: randomBytes(24).toString("hex")
  }
  return { runner, logs, postgres, nats, chain, gate, secrets }
})

export type Stack = Effect.Effect.Success<ReturnType<typeof startStack>>

/**
 * The service's environment for one scenario: its own database and prefix, the gate as primary RPC endpoint and
 * anvil direct as the second, and short polls and ack wait so recovery after a fault takes seconds, not minutes.
 */
export const serviceEnv = (stack: Stack, database: string, prefix: string): Record<string, string> => ({
  DATABASE_URL: stack.postgres.url(database),
  NATS_URL: stack.nats.url,
  BILLING_NATS_PREFIX: prefix,
  BILLING_RPC_CONFIG: JSON.stringify({
    anvil: { chain_id: stack.chain.info.chain_id, rpc: [stack.gate.url, stack.chain.info.rpc_url], confirmations: CONFIRMATIONS }
  }),
  BILLING_RPC_ALLOW_LOOPBACK: "true",
  BILLING_AUTH_JWT_SECRET: stack.secrets.jwt,
  BILLING_WEBHOOK_SECRET: stack.secrets.webhook,
  BILLING_SECRETS_KEY: stack.secrets.secretsKey,
  BILLING_SIGNER_PRIVATE_KEY: stack.chain.signerKey,
  BILLING_METRICS_TOKEN: stack.secrets.metrics,
  APP_BILLING_FINANCE_OPS_USER_ID: "chaos-finance-ops",
  BILLING_CONFIRMATION_POLL: "200 millis",
  BILLING_PROCESSOR_ACK_WAIT: "3 seconds",
  BILLING_PROCESSOR_RETRY_BASE_DELAY: "200 millis",
  BILLING_PROCESSOR_RETRY_MAX_DELAY: "2 seconds",
  BILLING_RPC_TIMEOUT: "3 seconds",
  BILLING_RPC_RETRY_BASE_DELAY: "50 millis",
  BILLING_RPC_COOLDOWN: "1 second",
  BILLING_RPC_COOLDOWN_MAX: "5 seconds",
  BILLING_LISTENER_POLL: "250 millis",
  // A scenario's listener starts at the head: earlier scenarios' payments belong to other databases.
  BILLING_LISTENER_LOOKBACK: "1",
  BILLING_JANITOR_EVERY: "2 seconds",
  BILLING_JANITOR_STALE_AFTER: "5 seconds",
  BILLING_OUTBOX_POLL: "200 millis",
  BILLING_OUTBOX_RETRY_MAX_DELAY: "2 seconds",
  BILLING_HEALTH_INTERVAL: "2 seconds",
  BILLING_CONFIG_RELOAD: "5 seconds"
})

export const freshNames = (scenario: string) => {
  const tag = randomBytes(3).toString("hex")
  return { database: `chaos_${scenario.replace(/\W/g, "_")}_${tag}`, prefix: `CH${tag}` }
}

