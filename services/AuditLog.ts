import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { AuditEntryView, type AuditPage, type AuditParams, type AuditView, kindsFor } from "../src/domain/AuditLog.ts"
import { cursorCodec } from "./Cursor.ts"
import { decodeRows } from "./Rows.ts"

const Row = Schema.Struct({ ...AuditEntryView.fields, created_at: Schema.DateFromSelf })
const decode = decodeRows(Row)

/** The row id (bigserial, newest = largest), opaque to clients. */
const AuditCursor = cursorCodec(Schema.Struct({ before: Schema.String.pipe(Schema.pattern(/^[1-9][0-9]{0,18}$/)) }))

/** Reads of the audit trail (Audit writes it), one view per reader: a row outside the view matches no filter or cursor. */
export class AuditLog extends Effect.Service<AuditLog>()("billing/AuditLog", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const list = Effect.fn("AuditLog.list")(function*(view: AuditView, params: AuditParams) {
      const limit = params.limit ?? 50
      const after = params.cursor === undefined ? undefined : yield* AuditCursor.decode(params.cursor)
      const where = sql.and([
        sql`split_part(resource, ':', 1) IN ${sql.in(kindsFor(view))}`,
        ...(params.resource === undefined ? [] : [sql`resource = ${params.resource}`]),
        ...(params.actor === undefined ? [] : [sql`actor = ${params.actor}`]),
        ...(params.action === undefined ? [] : [sql`action = ${params.action}`]),
        ...(after === undefined ? [] : [sql`id < ${after.before}::bigint`])
      ])
      const rows = yield* sql`SELECT id::text AS id, actor, action, resource, before, after, request_id, created_at
        FROM audit_log WHERE ${where} ORDER BY id DESC LIMIT ${limit + 1}`.pipe(Effect.orDie, Effect.flatMap(decode))
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return {
        items: page.map((r) => ({ ...r, created_at: r.created_at.toISOString() })),
        next_cursor: rows.length > limit && last !== undefined ? AuditCursor.encode({ before: last.id }) : null
      } satisfies AuditPage
    })

    return { list } as const
  })
}) {}
