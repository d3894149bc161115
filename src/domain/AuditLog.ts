import { Schema } from "effect"

/** One audit_log row as admins read it: before/after exactly as stored (secrets were removed on write). */
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
