import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export interface AuditEntry {
  readonly actor: string
  readonly action: string
  readonly resource: string
  readonly before?: unknown
  readonly after?: unknown
  readonly requestId?: string | undefined
}

const SECRET_KEYS = /secret|private_key|password|token/i

/** Secrets never reach the audit trail: their values are replaced, presence kept. */
export const redactSecrets = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(redactSecrets)
  if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) =>
      SECRET_KEYS.test(k) ? [k, v === null || v === undefined ? v : "[redacted]"] : [k, redactSecrets(v)]
    ))
  }
  return typeof value === "bigint" ? value.toString() : value
}

/** Writes through the caller's SQL transaction, so the row commits or rolls back with the change. */
export class Audit extends Effect.Service<Audit>()("billing/Audit", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const json = (v: unknown) => (v === undefined ? null : JSON.stringify(redactSecrets(v)))
    const record = Effect.fn("Audit.record")(function*(entry: AuditEntry) {
      yield* sql`INSERT INTO audit_log (actor, action, resource, before, after, request_id)
        VALUES (${entry.actor}, ${entry.action}, ${entry.resource}, ${json(entry.before)}::jsonb,
                ${json(entry.after)}::jsonb, ${entry.requestId ?? null})`
    })
    return { record } as const
  })
}) {}
