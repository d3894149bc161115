import { SqlClient } from "@effect/sql"
import { Effect, Option, Redacted, Ref, Schema } from "effect"
import { webhookSecretAad } from "../src/domain/SecretBox.ts"
import { webhookKeyOrText } from "../src/domain/WebhookSignature.ts"
import { ConfigReloadEvery } from "./CryptoConfig.ts"
import { Nats } from "./Nats.ts"
import { decodeRows } from "./Rows.ts"
import { SecretsKeyring } from "./SecretsKeyring.ts"
import { pendingCount, PlaintextSecretsRemain, StoredSecretUnreadable } from "./WebhookSecretsAtRest.ts"

/**
 * What webhook intake needs about contracts, held in memory so an unauthenticated request costs no SQL: loaded at
 * start (which fails on a secret no configured key opens, or one still in plain text), reloaded when any instance
 * signals a contract or secret change, and periodically in case a signal was missed.
 */
export interface DirectorySecret {
  readonly id: string
  readonly key: Redacted.Redacted<Uint8Array>
  /** Epoch milliseconds; null when the secret does not expire. */
  readonly expiresAt: number | null
}

export interface DirectoryEntry {
  readonly slug: string
  readonly enabled: boolean
  readonly network: string
  readonly secrets: ReadonlyArray<DirectorySecret>
}

const Row = Schema.Struct({
  slug: Schema.String,
  enabled: Schema.Boolean,
  network: Schema.String,
  id: Schema.NullOr(Schema.String),
  key_id: Schema.NullOr(Schema.String),
  ciphertext: Schema.NullOr(Schema.Uint8ArrayFromSelf),
  expires_at: Schema.NullOr(Schema.DateFromSelf)
})
const decode = decodeRows(Row)

export const CONTRACTS_SIGNAL = "contracts"

export class WebhookDirectory extends Effect.Service<WebhookDirectory>()("billing/WebhookDirectory", {
  scoped: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const keyring = yield* SecretsKeyring
    const nats = yield* Nats
    const every = yield* ConfigReloadEvery

    const load = Effect.gen(function*() {
      const plaintext = yield* pendingCount
      if (plaintext > 0) return yield* new PlaintextSecretsRemain({ count: plaintext })
      const rows = yield* sql`SELECT c.slug, c.enabled, c.network, s.id::text AS id, s.key_id, s.ciphertext, s.expires_at
        FROM contracts c LEFT JOIN contract_webhook_secrets s ON s.contract_slug = c.slug
          AND s.retired_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())
        ORDER BY c.slug, s.created_at DESC`.pipe(Effect.flatMap(decode))
      const entries = new Map<string, DirectoryEntry>()
      for (const row of rows) {
        const secrets = entries.get(row.slug)?.secrets ?? []
        const secret = row.id === null ? [] : [yield* openRow(row.slug, row.id, row.key_id, row.ciphertext, row.expires_at)]
        entries.set(row.slug, { slug: row.slug, enabled: row.enabled, network: row.network, secrets: [...secrets, ...secret] })
      }
      return entries as ReadonlyMap<string, DirectoryEntry>
    })

    const openRow = (slug: string, id: string, keyId: string | null, ciphertext: Uint8Array | null, expiresAt: Date | null) =>
      keyId === null || ciphertext === null
        ? Effect.fail(new PlaintextSecretsRemain({ count: 1 }))
        : keyring.decrypt(keyId, ciphertext, webhookSecretAad(slug, id)).pipe(
          Effect.mapError((cause) => new StoredSecretUnreadable({ secretId: id, contractSlug: slug, cause })),
          Effect.map((plaintext): DirectorySecret => ({
            id,
            key: Redacted.make(webhookKeyOrText(Redacted.value(plaintext))),
            expiresAt: expiresAt === null ? null : expiresAt.getTime()
          }))
        )

    const directory = yield* Ref.make(yield* load)
    const lock = yield* Effect.makeSemaphore(1)
    // Serialised: a reload that read before a commit cannot overwrite one that read after it.
    const reload = lock.withPermits(1)(Effect.flatMap(load, (entries) => Ref.set(directory, entries)))
    yield* nats.reloadOnAnnounce(CONTRACTS_SIGNAL, reload, every)

    const lookup = (slug: string) => Effect.map(Ref.get(directory), (entries) => Option.fromNullable(entries.get(slug)))

    /** After a committed change: this instance reloads now, the others on the signal (or their timer). */
    const changed = Effect.zipRight(
      reload.pipe(Effect.catchAllCause((cause) => Effect.logError("contract directory not reloaded after a change; the previous one stays", cause))),
      nats.announce(CONTRACTS_SIGNAL)
    )

    return { lookup, reload, changed } as const
  }),
  dependencies: [SecretsKeyring.Default]
}) {}
