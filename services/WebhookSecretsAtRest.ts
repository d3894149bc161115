import { SqlClient } from "@effect/sql"
import { Data, Effect, Redacted, Schema } from "effect"
import { webhookSecretAad } from "../src/domain/SecretBox.ts"
import { countOf, decodeRows } from "./Rows.ts"
import { makeKeyring, type SecretUndecryptable } from "./SecretsKeyring.ts"

/**
 * Bulk work on the stored webhook secrets, run by `migrate` and `secrets rotate` rather than by a running service:
 * sealing rows that migration 008 moved over in plain text, and re-sealing rows under the current key.
 */
const Legacy = Schema.Struct({ id: Schema.String, contract_slug: Schema.String, legacy_plaintext: Schema.String })
const Sealed = Schema.Struct({ id: Schema.String, contract_slug: Schema.String, key_id: Schema.String, ciphertext: Schema.Uint8ArrayFromSelf })
const decodeLegacy = decodeRows(Legacy)
const decodeSealed = decodeRows(Sealed)

/** Names the row (never its content) so an operator can find it. */
export class StoredSecretUnreadable extends Data.TaggedError("StoredSecretUnreadable")<{
  readonly secretId: string
  readonly contractSlug: string
  readonly cause: SecretUndecryptable
}> {
  override get message() {
    return `webhook secret ${this.secretId} of contract ${this.contractSlug} cannot be decrypted: ${this.cause.message}`
  }
}

/** Every stored secret must be sealed before a service starts. */
export class PlaintextSecretsRemain extends Data.TaggedError("PlaintextSecretsRemain")<{ readonly count: number }> {
  override get message() {
    return `${this.count} webhook secret(s) are still stored in plain text: run \`evm-billing migrate\` with BILLING_SECRETS_KEY set`
  }
}

export const pendingCount = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT count(*)::int AS n FROM contract_webhook_secrets WHERE legacy_plaintext IS NOT NULL`).pipe(Effect.flatMap(countOf))

/**
 * Seals every plaintext row with BILLING_SECRETS_KEY in one transaction. The key is read only when such a row
 * exists: a missing key is then a ConfigError naming it.
 */
export const encryptLegacySecrets = Effect.gen(function*() {
  if ((yield* pendingCount) === 0) return 0
  const sql = yield* SqlClient.SqlClient
  const keyring = yield* makeKeyring
  return yield* sql.withTransaction(Effect.gen(function*() {
    const rows = yield* sql`SELECT id::text, contract_slug, legacy_plaintext FROM contract_webhook_secrets
      WHERE legacy_plaintext IS NOT NULL FOR UPDATE`.pipe(Effect.flatMap(decodeLegacy))
    for (const row of rows) {
      const sealed = yield* keyring.encrypt(Redacted.make(row.legacy_plaintext), webhookSecretAad(row.contract_slug, row.id))
      yield* sql`UPDATE contract_webhook_secrets SET key_id = ${sealed.keyId}, ciphertext = ${sealed.ciphertext}, legacy_plaintext = NULL
        WHERE id = ${row.id}::uuid`
    }
    return rows.length
  }))
})

/** Re-seals every row not sealed under the current key; a row no configured key opens stops the run, named. */
export const reencryptSecrets = Effect.gen(function*() {
  const legacy = yield* encryptLegacySecrets
  const sql = yield* SqlClient.SqlClient
  const keyring = yield* makeKeyring
  const rotated = yield* sql.withTransaction(Effect.gen(function*() {
    const rows = yield* sql`SELECT id::text, contract_slug, key_id, ciphertext FROM contract_webhook_secrets
      WHERE key_id IS DISTINCT FROM ${keyring.currentKeyId} AND legacy_plaintext IS NULL FOR UPDATE`.pipe(Effect.flatMap(decodeSealed))
    for (const row of rows) {
      const aad = webhookSecretAad(row.contract_slug, row.id)
      const plaintext = yield* keyring.decrypt(row.key_id, row.ciphertext, aad).pipe(
        Effect.mapError((cause) => new StoredSecretUnreadable({ secretId: row.id, contractSlug: row.contract_slug, cause }))
      )
      const sealed = yield* keyring.encrypt(plaintext, aad)
      yield* sql`UPDATE contract_webhook_secrets SET key_id = ${sealed.keyId}, ciphertext = ${sealed.ciphertext} WHERE id = ${row.id}::uuid`
    }
    return rows.length
  }))
  return { legacy, rotated, keyId: keyring.currentKeyId } as const
})
