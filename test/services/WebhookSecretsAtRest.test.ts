/**
 * Webhook secrets at rest: a database migrated before 008 with a plain-text secret comes out of `migrate` with the
 * secret sealed (no plain text left in the row) and still verifying webhooks; a start refuses plain text and rows
 * no configured key opens; `reencryptSecrets` moves every row to the current key.
 */
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Exit, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { cpSync, mkdtempSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pgLayer } from "../../services/Database.ts"
import { MIGRATIONS_DIR, runMigrations } from "../../services/Migrations.ts"
import { Nats } from "../../services/Nats.ts"
import { WebhookDirectory } from "../../services/WebhookDirectory.ts"
import { WebhookIntake } from "../../services/WebhookIntake.ts"
import { reencryptSecrets } from "../../services/WebhookSecretsAtRest.ts"
import { migrate } from "../../src/Bootstrap.ts"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { Prefix } from "../../services/Subjects.ts"
import { freshDatabaseUrl } from "../support/database.ts"

const OLD_SECRET = "legacy-plain-webhook-secret-4242"
const KEY_A = randomBytes(32).toString("base64")
const KEY_B = randomBytes(32).toString("base64")

/** A database at migration 007 holding a contract with a plain-text webhook secret, as before this change. */
const legacyDatabase = Effect.gen(function*() {
  const { url } = yield* freshDatabaseUrl
  const upTo7 = mkdtempSync(join(tmpdir(), "migrations-007-"))
  for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => /^00[1-7]_/.test(f))) cpSync(join(MIGRATIONS_DIR, file), join(upTo7, file))
  yield* Effect.gen(function*() {
    yield* runMigrations(upTo7)
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO contracts (slug, network, address, abi, mint_method, burn_method, webhook_secret)
      VALUES ('legacy', 'anvil', ${`0x${"ab".repeat(20)}`}, '[]'::jsonb, 'mint', 'burn', ${OLD_SECRET})`
  }).pipe(Effect.provide(Layer.merge(pgLayer(url), NodeContext.layer)), Effect.orDie)
  return url
})

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** The webhook directory and intake on `url`, with a NATS prefix of their own. */
const dropStreams = Layer.scopedDiscard(Effect.flatMap(Nats, (nats) =>
  Effect.addFinalizer(() =>
    Effect.forEach(Object.values(nats.subjects.streams), (name) =>
      nats.use(`delete ${name}`, ({ jsm }) => jsm.streams.delete(name)).pipe(Effect.ignore), { discard: true }))))

const services = (url: string, env: Record<string, string>) =>
  Layer.mergeAll(WebhookIntake.Default, WebhookDirectory.Default, dropStreams).pipe(
    Layer.provide(Layer.merge(pgLayer(url), Nats.layerWith({ prefix: Prefix.make(`S${randomBytes(5).toString("hex")}`) }))),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

const rowDump = (url: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ row: string; legacy: string | null; key_id: string | null }>`SELECT row_to_json(s)::text AS row, legacy_plaintext AS legacy, key_id
      FROM contract_webhook_secrets s`).pipe(Effect.provide(pgLayer(url)), Effect.orDie)

const signed = (secret: string) => {
  const body = JSON.stringify({ type: "payment.minted", contract: "legacy", network: "anvil", tx_hash: `0x${randomBytes(32).toString("hex")}`, log_index: 0, block_number: 1 })
  const id = `msg_${randomBytes(8).toString("hex")}`
  const timestamp = Math.floor(Date.now() / 1000)
  return {
    headers: { id, timestamp: String(timestamp), signature: signWebhook(secret, id, timestamp, body) },
    body: new TextEncoder().encode(body)
  }
}

describe("webhook secrets at rest", () => {
  it.live("migrate seals a plain-text secret from before 008; a webhook signed with it is still accepted", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* legacyDatabase
      yield* migrate.pipe(withEnv({ DATABASE_URL: url, BILLING_SECRETS_KEY: KEY_A }))

      const rows = yield* rowDump(url)
      assert.strictEqual(rows.length, 1)
      assert.isNull(rows[0]!.legacy)
      assert.isNotNull(rows[0]!.key_id)
      assert.notInclude(rows[0]!.row, OLD_SECRET)
      assert.notInclude(rows[0]!.row, Buffer.from(OLD_SECRET).toString("hex"))
      const columns = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'contracts' AND column_name = 'webhook_secret'`).pipe(
          Effect.provide(pgLayer(url)),
          Effect.orDie
        )
      assert.strictEqual(columns[0]!.n, 0, "the plain-text column is gone")

      const ctx = yield* Layer.build(services(url, { BILLING_SECRETS_KEY: KEY_A }))
      const intake = Context.get(ctx, WebhookIntake)
      const good = signed(OLD_SECRET)
      assert.deepStrictEqual(yield* intake.accept(good.headers, good.body), { accepted: true, duplicate: false })
      const bad = signed("some-other-secret-entirely")
      const refused = yield* Effect.exit(intake.accept(bad.headers, bad.body))
      assert.isTrue(Exit.isFailure(refused))
    })))

  it.live("migrate refuses to leave plain text behind without BILLING_SECRETS_KEY, naming it", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* legacyDatabase
      const exit = yield* Effect.exit(migrate.pipe(withEnv({ DATABASE_URL: url })))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "BILLING_SECRETS_KEY")
    })))

  it.live("a start refuses plain text and keys it does not know; reencryptSecrets moves every row to the current key", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* legacyDatabase
      // Only the SQL migrations: the moved secret still awaits encryption.
      yield* runMigrations().pipe(Effect.provide(Layer.merge(pgLayer(url), NodeContext.layer)), Effect.orDie)
      const plain = yield* Effect.exit(Layer.build(services(url, { BILLING_SECRETS_KEY: KEY_A })))
      assert.include(String(Exit.isFailure(plain) ? plain.cause : ""), "plain text")

      yield* migrate.pipe(withEnv({ DATABASE_URL: url, BILLING_SECRETS_KEY: KEY_A }))
      const unknown = yield* Effect.exit(Layer.build(services(url, { BILLING_SECRETS_KEY: KEY_B })))
      assert.isTrue(Exit.isFailure(unknown))
      assert.include(String(Exit.isFailure(unknown) ? unknown.cause : ""), "neither BILLING_SECRETS_KEY nor one of BILLING_SECRETS_PREVIOUS_KEYS")

      const rotated = yield* reencryptSecrets.pipe(
        Effect.provide(pgLayer(url)),
        withEnv({ BILLING_SECRETS_KEY: KEY_B, BILLING_SECRETS_PREVIOUS_KEYS: `${KEY_A}` })
      )
      assert.strictEqual(rotated.rotated, 1)
      const rows = yield* rowDump(url)
      assert.strictEqual(rows[0]!.key_id, rotated.keyId)
      const ctx = yield* Layer.build(services(url, { BILLING_SECRETS_KEY: KEY_B }))
      const good = signed(OLD_SECRET)
      assert.deepStrictEqual(yield* Context.get(ctx, WebhookIntake).accept(good.headers, good.body), { accepted: true, duplicate: false })
    })))
})
