import { Schema } from "effect"

/** What an audit row is about: the part of `resource` before the colon. A new kind must be given readers below. */
export const AuditKinds = ["plan", "contract", "gateway", "crypto_config", "payment", "dead_letter", "retry_policy"] as const
export type AuditKind = (typeof AuditKinds)[number]
export type AuditResource = `${AuditKind}:${string}`

/** The audit views: `admin` (/admin/audit) and `finance` (/overview/audit, finance_ops). */
export type AuditView = "admin" | "finance"

/**
 * Who reads which rows. Payment rows carry user ids, amounts and transaction hashes: finance_ops' alone. Config
 * rows (no user data) are admin's; crypto-config, changed by finance_ops, is shown to both. A kind missing here is
 * a type error, and a row of an unlisted kind (none is written) is shown to nobody.
 */
export const auditReaders: Readonly<Record<AuditKind, ReadonlyArray<AuditView>>> = {
  plan: ["admin"],
  contract: ["admin"],
  gateway: ["admin"],
  crypto_config: ["admin", "finance"],
  payment: ["finance"],
  // metadata only (consumer, reason, subject, message id), never the payload
  dead_letter: ["admin"],
  retry_policy: ["admin"]
}

/** The resource kinds a view shows. */
export const kindsFor = (view: AuditView): ReadonlyArray<AuditKind> => AuditKinds.filter((k) => auditReaders[k].includes(view))

/** One audit_log row as its readers see it: before/after exactly as stored (secrets were removed on write). */
export const AuditEntryView = Schema.Struct({
  id: Schema.String,
  actor: Schema.String,
  action: Schema.String,
  resource: Schema.String,
  before: Schema.Unknown,
  after: Schema.Unknown,
  request_id: Schema.NullOr(Schema.String),
  created_at: Schema.String
})
export type AuditEntryView = typeof AuditEntryView.Type

export const AuditPage = Schema.Struct({ items: Schema.Array(AuditEntryView), next_cursor: Schema.NullOr(Schema.String) })
export type AuditPage = typeof AuditPage.Type

const Filter = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))

export const AuditParams = Schema.Struct({
  resource: Schema.optional(Filter).annotations({ description: "exact resource, e.g. crypto_config:anvil" }),
  actor: Schema.optional(Filter).annotations({ description: "exact actor (user id)" }),
  action: Schema.optional(Filter).annotations({ description: "exact action, e.g. plan.update" }),
  cursor: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100)))
})
export type AuditParams = typeof AuditParams.Type
