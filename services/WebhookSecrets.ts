import { SqlClient } from "@effect/sql"
import { Clock, Data, DateTime, Effect, Redacted, Schema } from "effect"
import { webhookSecretAad } from "../src/domain/SecretBox.ts"
import {
  MAX_ACTIVE_WEBHOOK_SECRETS,
  type WebhookSecretCreate,
  type WebhookSecretUpdate,
  type WebhookSecretView
} from "../src/domain/WebhookSecret.ts"
import { Audit } from "./Audit.ts"
import { type Actor } from "./Contracts.ts"
import { countOf, decodeRows, IsoDate, transactional } from "./Rows.ts"
import { SecretsKeyring } from "./SecretsKeyring.ts"
import { ContractNotFound } from "../src/domain/Contract.ts"

export class WebhookSecretNotFound extends Data.TaggedError("WebhookSecretNotFound")<{ readonly slug: string; readonly id: string }> {}
export class WebhookSecretRejected extends Data.TaggedError("WebhookSecretRejected")<{
  readonly reason: "too_many" | "inactive" | "expiry_in_past"
  readonly message: string
}> {}

/** A secret encrypted for its row: the id is chosen before sealing because the ciphertext is bound to it. */
export interface SealedSecret {
  readonly id: string
  readonly keyId: string
  readonly ciphertext: Uint8Array
}

const ACTIVE = "retired_at IS NULL AND (expires_at IS NULL OR expires_at > now())"

const Row = Schema.Struct({
  id: Schema.String,
  contract_slug: Schema.String,
  key_id: Schema.NullOr(Schema.String),
  created_at: IsoDate,
  expires_at: Schema.NullOr(IsoDate),
  retired_at: Schema.NullOr(IsoDate),
  active: Schema.Boolean
})
const decode = decodeRows(Row)
const toView = (r: typeof Row.Type): WebhookSecretView => r

/** Inside the caller's transaction (contract create and update use it). */
export const insertSealed = (sql: SqlClient.SqlClient, slug: string, sealed: SealedSecret, expiresAt: Date | null = null) =>
  sql`INSERT INTO contract_webhook_secrets (id, contract_slug, key_id, ciphertext, expires_at)
    VALUES (${sealed.id}, ${slug}, ${sealed.keyId}, ${sealed.ciphertext}, ${expiresAt})
    RETURNING id::text, contract_slug, key_id, created_at, expires_at, retired_at, ${sql.literal(ACTIVE)} AS active`.pipe(
    Effect.orDie,
    Effect.flatMap(decode),
    Effect.map((rows) => toView(rows[0]!))
  )

/** Retires every secret of a contract that is not retired yet, except `keep`. */
export const retireOthers = (sql: SqlClient.SqlClient, slug: string, keep: string | null) =>
  sql`UPDATE contract_webhook_secrets SET retired_at = now()
    WHERE contract_slug = ${slug} AND retired_at IS NULL AND (${keep}::uuid IS NULL OR id <> ${keep}::uuid)`.pipe(Effect.orDie, Effect.asVoid)

export class WebhookSecrets extends Effect.Service<WebhookSecrets>()("billing/WebhookSecrets", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit
    const keyring = yield* SecretsKeyring

    const seal = (slug: string, secret: string) =>
      Effect.gen(function*() {
        const id = crypto.randomUUID()
        const sealed = yield* keyring.encrypt(Redacted.make(secret), webhookSecretAad(slug, id))
        return { id, ...sealed } satisfies SealedSecret
      })

    const lockContract = (slug: string) =>
      sql`SELECT slug FROM contracts WHERE slug = ${slug} FOR UPDATE`.pipe(
        Effect.orDie,
        Effect.filterOrFail((rows) => rows.length > 0, () => new ContractNotFound({ slug }))
      )
    const select = (slug: string) =>
      sql`SELECT id::text, contract_slug, key_id, created_at, expires_at, retired_at, ${sql.literal(ACTIVE)} AS active
        FROM contract_webhook_secrets WHERE contract_slug = ${slug}`
    const one = (slug: string, id: string) =>
      sql`${select(slug)} AND id = ${id}::uuid FOR UPDATE`.pipe(
        Effect.orDie,
        Effect.flatMap(decode),
        Effect.flatMap((rows) => rows[0] === undefined ? Effect.fail(new WebhookSecretNotFound({ slug, id })) : Effect.succeed(toView(rows[0])))
      )
    const futureExpiry = (at: DateTime.Utc | null | undefined) =>
      Effect.gen(function*() {
        if (at === undefined || at === null) return null
        if (DateTime.toEpochMillis(at) <= (yield* Clock.currentTimeMillis)) {
          return yield* new WebhookSecretRejected({ reason: "expiry_in_past", message: "expires_at must be in the future; DELETE retires a secret now" })
        }
        return DateTime.toDate(at)
      })

    /** Newest first; retired ones stay listed as history. */
    const list = Effect.fn("WebhookSecrets.list")(function*(slug: string) {
      yield* sql`SELECT 1 FROM contracts WHERE slug = ${slug}`.pipe(
        Effect.orDie,
        Effect.filterOrFail((found) => found.length > 0, () => new ContractNotFound({ slug }))
      )
      const rows = yield* sql`${select(slug)} ORDER BY created_at DESC, id LIMIT 100`.pipe(Effect.orDie, Effect.flatMap(decode))
      return rows.map(toView)
    }, transactional(sql))

    const add = Effect.fn("WebhookSecrets.add")(function*(slug: string, input: WebhookSecretCreate, actor: Actor) {
      const expiresAt = yield* futureExpiry(input.expires_at)
      yield* lockContract(slug)
      const count = yield* sql`SELECT count(*)::int AS n FROM contract_webhook_secrets
        WHERE contract_slug = ${slug} AND ${sql.literal(ACTIVE)}`.pipe(Effect.orDie, Effect.flatMap(countOf))
      if (count >= MAX_ACTIVE_WEBHOOK_SECRETS) {
        return yield* new WebhookSecretRejected({
          reason: "too_many",
          message: `contract ${slug} already has ${MAX_ACTIVE_WEBHOOK_SECRETS} active webhook secrets; retire one first`
        })
      }
      const created = yield* insertSealed(sql, slug, yield* seal(slug, input.secret), expiresAt)
      yield* audit.record({ actor: actor.id, action: "contract.webhook_secret.add", resource: `contract:${slug}`, after: created, requestId: actor.requestId })
      return created
    }, transactional(sql))

    const schedule = Effect.fn("WebhookSecrets.schedule")(function*(slug: string, id: string, input: WebhookSecretUpdate, actor: Actor) {
      const expiresAt = yield* futureExpiry(input.expires_at)
      yield* lockContract(slug)
      const before = yield* one(slug, id)
      if (!before.active) {
        return yield* new WebhookSecretRejected({ reason: "inactive", message: "the webhook secret is retired or expired" })
      }
      const rows = yield* sql`UPDATE contract_webhook_secrets SET expires_at = ${expiresAt} WHERE id = ${id}::uuid
        RETURNING id::text, contract_slug, key_id, created_at, expires_at, retired_at, ${sql.literal(ACTIVE)} AS active`.pipe(
        Effect.orDie,
        Effect.flatMap(decode)
      )
      const after = toView(rows[0]!)
      yield* audit.record({ actor: actor.id, action: "contract.webhook_secret.schedule", resource: `contract:${slug}`, before, after, requestId: actor.requestId })
      return after
    }, transactional(sql))

    /** Retires at once; retiring a retired secret changes nothing. */
    const retire = Effect.fn("WebhookSecrets.retire")(function*(slug: string, id: string, actor: Actor) {
      yield* lockContract(slug)
      const before = yield* one(slug, id)
      if (before.retired_at !== null) return before
      const rows = yield* sql`UPDATE contract_webhook_secrets SET retired_at = now() WHERE id = ${id}::uuid
        RETURNING id::text, contract_slug, key_id, created_at, expires_at, retired_at, false AS active`.pipe(
        Effect.orDie,
        Effect.flatMap(decode)
      )
      const after = toView(rows[0]!)
      yield* audit.record({ actor: actor.id, action: "contract.webhook_secret.retire", resource: `contract:${slug}`, before, after, requestId: actor.requestId })
      return after
    }, transactional(sql))

    return { seal, list, add, schedule, retire } as const
  }),
  dependencies: [Audit.Default, SecretsKeyring.Default]
}) {}
