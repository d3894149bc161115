/**
 * Retry policies in PostgreSQL: read with the environment's defaults beneath, set (validated, audited) by an admin or
 * the CLI, and applied by every instance within seconds: the writer reloads its own at once and signals the others
 * over NATS (`control("retry-policies")`), which reload too; a periodic reload covers a signal lost in a disconnect.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schema } from "effect"
import { type RetryPolicyName, RetryPolicyNames, RetryPolicySettings, type RetryPolicyView } from "../src/domain/RetryPolicy.ts"
import type { Actor } from "./Contracts.ts"
import { Audit } from "./Audit.ts"
import { Nats } from "./Nats.ts"
import { type RetryPolicies, RetryPolicyState } from "./RetryPolicies.ts"
import { decodeRows, transactional } from "./Rows.ts"

const StoredRow = Schema.Struct({
  name: Schema.Literal(...RetryPolicyNames),
  initial_delay_ms: Schema.Number,
  factor: Schema.Number,
  max_delay_ms: Schema.Number,
  max_attempts: Schema.Number,
  jitter: Schema.Number,
  updated_at: Schema.DateFromSelf,
  updated_by: Schema.String
})
const decodeStored = decodeRows(StoredRow)
const settingsOf = (r: typeof StoredRow.Type): RetryPolicySettings => ({
  initial_delay_ms: r.initial_delay_ms,
  factor: r.factor,
  max_delay_ms: r.max_delay_ms,
  max_attempts: r.max_attempts,
  jitter: r.jitter
})

export class RetryPolicyStore extends Effect.Service<RetryPolicyStore>()("billing/RetryPolicyStore", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const nats = yield* Nats
    const audit = yield* Audit
    const state = yield* RetryPolicyState

    const stored = sql`SELECT name, initial_delay_ms, factor, max_delay_ms, max_attempts, jitter, updated_at, updated_by
      FROM retry_policies`.pipe(Effect.flatMap(decodeStored))

    const viewsOf = (rows: ReadonlyArray<typeof StoredRow.Type>): ReadonlyArray<RetryPolicyView> =>
      RetryPolicyNames.map((name) => {
        const row = rows.find((r) => r.name === name)
        return row === undefined
          ? { name, ...state.defaults[name], source: "environment", updated_at: null, updated_by: null }
          : { name, ...settingsOf(row), source: "stored", updated_at: row.updated_at.toISOString(), updated_by: row.updated_by }
      })

    const list = Effect.map(stored, viewsOf)
    const get = (name: RetryPolicyName) => Effect.map(list, (views) => views.find((v) => v.name === name)!)

    /** This instance's policies from PostgreSQL (the environment's where none is stored). */
    const reload: Effect.Effect<void, SqlError> = Effect.flatMap(stored, (rows) =>
      state.replace(Object.fromEntries(rows.map((r) => [r.name, settingsOf(r)])) as Partial<RetryPolicies>))

    /** Validated by the caller's Schema decode; the change and its audit row commit together, then every instance applies it. */
    const set = (name: RetryPolicyName, settings: RetryPolicySettings, actor: Actor) =>
      Effect.gen(function*() {
        const before = yield* get(name)
        yield* sql`INSERT INTO retry_policies (name, initial_delay_ms, factor, max_delay_ms, max_attempts, jitter, updated_by)
          VALUES (${name}, ${settings.initial_delay_ms}, ${settings.factor}, ${settings.max_delay_ms}, ${settings.max_attempts},
            ${settings.jitter}, ${actor.id})
          ON CONFLICT (name) DO UPDATE SET initial_delay_ms = EXCLUDED.initial_delay_ms, factor = EXCLUDED.factor,
            max_delay_ms = EXCLUDED.max_delay_ms, max_attempts = EXCLUDED.max_attempts, jitter = EXCLUDED.jitter,
            updated_at = now(), updated_by = EXCLUDED.updated_by`
        const { name: _n, source, updated_at: _a, updated_by: _b, ...previous } = before
        yield* audit.record({
          actor: actor.id,
          action: "retry_policy.set",
          resource: `retry_policy:${name}`,
          before: { ...previous, source },
          after: settings,
          requestId: actor.requestId
        })
      }).pipe(
        transactional(sql),
        Effect.zipRight(reload),
        Effect.tap(() => nats.announce("retry-policies")),
        Effect.zipRight(get(name)),
        Effect.tap(() => Effect.logInfo(`retry policy ${name} set`).pipe(Effect.annotateLogs({ actor: actor.id, ...settings })))
      )

    return { list, get, set, reload } as const
  }),
  dependencies: [Audit.Default]
}) {}
