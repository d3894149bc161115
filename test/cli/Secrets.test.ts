/** `evm-billing secrets rotate`: every stored webhook secret moves to the current key; an unknown key stops it, named. */
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import { pgLayer } from "../../services/Database.ts"
import { runMigrations } from "../../services/Migrations.ts"
import { WebhookSecrets } from "../../services/WebhookSecrets.ts"
import { freshDatabaseUrl } from "../support/database.ts"

const BIN = fileURLToPath(new URL("../../bin/evm-billing.js", import.meta.url))
const run = (env: Record<string, string>) =>
  spawnSync(process.execPath, [BIN, "secrets", "rotate"], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 110_000 })

describe("evm-billing secrets rotate", () => {
  it.scoped("re-encrypts every row under BILLING_SECRETS_KEY, reading old rows with BILLING_SECRETS_PREVIOUS_KEYS", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabaseUrl
      const [a, b] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")]
      const db = pgLayer(url)
      yield* Effect.gen(function*() {
        yield* runMigrations()
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO contracts (slug, network, address, abi, mint_method, burn_method) VALUES ('c1', 'anvil', ${`0x${"cd".repeat(20)}`}, '[]'::jsonb, 'mint', 'burn')`
        const secrets = yield* WebhookSecrets
        yield* secrets.add("c1", { secret: "a-webhook-secret-0123456789" }, { id: "test" })
      }).pipe(
        Effect.provide(WebhookSecrets.Default),
        Effect.provide(Layer.mergeAll(db, NodeContext.layer, Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["BILLING_SECRETS_KEY", a]]))))),
        Effect.orDie
      )

      const unknown = run({ DATABASE_URL: url, BILLING_SECRETS_KEY: b })
      assert.notStrictEqual(unknown.status, 0)
      assert.include(unknown.stderr, "cannot be decrypted")

      const out = run({ DATABASE_URL: url, BILLING_SECRETS_KEY: b, BILLING_SECRETS_PREVIOUS_KEYS: a })
      assert.strictEqual(out.status, 0, out.stderr)
      assert.include(out.stdout, "re-encrypted 1 webhook secret(s)")
      const keyIds = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ key_id: string }>`SELECT key_id FROM contract_webhook_secrets`).pipe(
        Effect.provide(db),
        Effect.orDie
      )
      assert.include(out.stdout, keyIds[0]!.key_id)
      assert.strictEqual(run({ DATABASE_URL: url, BILLING_SECRETS_KEY: b }).stdout.trim(), `re-encrypted 0 webhook secret(s) under key ${keyIds[0]!.key_id}`)
    }))
})
