import type { SqlClient } from "@effect/sql"
import { Effect, Exit, FiberRef, Schema } from "effect"

/** A row of the outbox table. */
export interface OutboxRow {
  readonly subject: string
  readonly payload: string
}
/** The outbox row announcing a row whose id and `created_at` are known only once the batch is written. */
export type Announce = (id: string, createdAt: Date) => Effect.Effect<OutboxRow>

export type AuditRow = {
  readonly actor: string
  readonly action: string
  readonly resource: string
  readonly before: string | null
  readonly after: string | null
  readonly request_id: string | null
}
export type NotificationRow = {
  readonly user_id: string
  readonly kind: string
  readonly payload: string
}

/** Tables whose rows an outbox event announces with their id and `created_at`. */
export interface AnnouncedRows {
  readonly audit_log: AuditRow
  readonly notifications: NotificationRow
}
export type AnnouncedTable = keyof AnnouncedRows

type Announced = { readonly table: AnnouncedTable; readonly index: number; readonly announce: Announce }

/** Append-only rows of a batch, written together before it commits; nothing in the batch reads them back. */
export interface Pending {
  readonly outbox: Array<OutboxRow | Announced>
  readonly rows: { readonly [T in AnnouncedTable]: Array<AnnouncedRows[T]> }
  /** `processed_events.outcome` of keys the batch claimed. */
  readonly outcomes: Array<{ readonly dedupe_key: string; readonly outcome: string }>
}

const collecting = FiberRef.unsafeMake<Pending | undefined>(undefined)

/** The batch being collected, if the caller runs inside `collected`. */
export const pending: Effect.Effect<Pending | undefined> = FiberRef.get(collecting)

export const addAnnounced = <T extends AnnouncedTable>(p: Pending, table: T, row: AnnouncedRows[T], announce: Announce) => {
  const rows: Array<AnnouncedRows[T]> = p.rows[table]
  rows.push(row)
  p.outbox.push({ table, index: rows.length - 1, announce })
}

/**
 * For a unit of work inside a batch (a savepoint, Rows.transactional): if it fails, the rows it added are dropped
 * with its other writes, so a unit that fails by itself leaves nothing of its own in the batch.
 */
export const undoOnFailure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(pending, (p) => {
    if (p === undefined) return self
    const mark = [p.outbox.length, p.rows.audit_log.length, p.rows.notifications.length, p.outcomes.length] as const
    return Effect.onExit(self, (exit) =>
      Effect.sync(() => {
        if (Exit.isSuccess(exit)) return
        p.outbox.length = mark[0]
        p.rows.audit_log.length = mark[1]
        p.rows.notifications.length = mark[2]
        p.outcomes.length = mark[3]
      }))
  })

const Reserved = Schema.Struct({ at: Schema.DateFromSelf, audit: Schema.Array(Schema.String), notifications: Schema.Array(Schema.String) })
const decodeReserved = Schema.decodeUnknown(Reserved)

/** Rows per statement: well under PostgreSQL's 65,535 bind parameters at 8 columns. */
const CHUNK = 1000
const chunks = <A>(rows: ReadonlyArray<A>) => Array.from({ length: Math.ceil(rows.length / CHUNK) }, (_, i) => rows.slice(i * CHUNK, (i + 1) * CHUNK))

/**
 * Runs `self` (inside the caller's SQL transaction) with its append-only rows collected, then writes them in that
 * transaction with a few multi-row statements: ids are reserved from the tables' sequences and `created_at` is the
 * transaction's `now()`, as the column defaults would give; outbox rows keep the order they were added in. A batch
 * of confirmations costs a handful of statements for these rows instead of several per payment. Nothing is
 * written if `self` fails.
 */
export const collected = (sql: SqlClient.SqlClient) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const p: Pending = { outbox: [], rows: { audit_log: [], notifications: [] }, outcomes: [] }
    const a = yield* Effect.locally(self, collecting, p)
    yield* write(sql, p)
    return a
  })

const write = (sql: SqlClient.SqlClient, p: Pending) =>
  Effect.gen(function*() {
    const ids = { audit_log: [] as ReadonlyArray<string>, notifications: [] as ReadonlyArray<string> }
    let at = new Date(0)
    const { audit_log: audit, notifications } = p.rows
    if (audit.length + notifications.length > 0) {
      const [row] = yield* sql`SELECT now() AS at,
        ARRAY(SELECT nextval(pg_get_serial_sequence('audit_log', 'id'))::text FROM generate_series(1, ${audit.length})) AS audit,
        ARRAY(SELECT nextval(pg_get_serial_sequence('notifications', 'id'))::text FROM generate_series(1, ${notifications.length})) AS notifications`
      const reserved = yield* Effect.orDie(decodeReserved(row))
      ids.audit_log = reserved.audit
      ids.notifications = reserved.notifications
      at = reserved.at
    }
    // created_at keeps its default: the transaction's now(), the `at` announced
    for (const rows of chunks(audit.map((r, i) => ({ id: ids.audit_log[i]!, ...r })))) {
      yield* sql`INSERT INTO audit_log ${sql.insert(rows)}`
    }
    for (const rows of chunks(notifications.map((r, i) => ({ id: ids.notifications[i]!, ...r })))) {
      yield* sql`INSERT INTO notifications ${sql.insert(rows)}`
    }
    for (const rows of chunks(p.outcomes)) {
      yield* sql`UPDATE processed_events SET outcome = data.outcome FROM ${sql.updateValues(rows, "data")}
        WHERE processed_events.dedupe_key = data.dedupe_key`
    }
    const outbox = yield* Effect.forEach(p.outbox, (r) => "announce" in r ? r.announce(ids[r.table][r.index]!, at) : Effect.succeed(r))
    for (const rows of chunks(outbox)) yield* sql`INSERT INTO outbox ${sql.insert(rows.map((r) => ({ subject: r.subject, payload: r.payload })))}`
  })
