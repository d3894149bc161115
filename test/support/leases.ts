/**
 * Leases as PostgreSQL sees them: who holds the advisory lock of a lease (services/Leases.ts locks
 * `hashtext('evm-billing:<name>')` per session), killing that session, and holding a lease from a test.
 */
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Schedule, type Scope } from "effect"

/** The key services/Leases.ts locks for a lease name. */
export const leaseKey = (name: string) => `evm-billing:${name}`

/**
 * Backends of this database holding the lease's lock. A bigint advisory key shows in pg_locks as
 * classid (high 32 bits) and objid (low 32 bits) with objsubid 1.
 */
export const leaseHolders = (name: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ pid: number }>`SELECT l.pid FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext(${leaseKey(name)})::bigint`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows.map((r) => r.pid))
  )

/** Kills a backend as a crash or a network cut would: its session locks go with it. */
export const terminateBackend = (pid: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_terminate_backend(${pid})`).pipe(Effect.orDie, Effect.asVoid)

/**
 * Backends of this database, other than the asking one, whose last statement tried to take a lease (the
 * statement's text carries no key: any lease). A lease holder's last statement is its heartbeat instead.
 */
export const leaseContenders =
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ pid: number }>`SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND query LIKE 'SELECT pg_try_advisory_lock(hashtext(%'`).pipe(
    Effect.orDie,
    Effect.map((rows) => rows.map((r) => r.pid))
  )

/**
 * Takes the lease from a test: waits until the lock is free, then holds it on a reserved connection until the
 * scope closes (the unlock is explicit; the connection goes back to the pool).
 */
export const holdLease = (name: string): Effect.Effect<number, never, Scope.Scope | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const conn = yield* sql.reserve
    const onConn = <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.provideService(e, SqlClient.TransactionConnection, [conn, 0] as const)
    const key = leaseKey(name)
    yield* onConn(sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(hashtext(${key})) AS ok`).pipe(
      Effect.filterOrFail((rows) => rows[0]?.ok === true, () => new Error(`lease ${name} still held elsewhere`)),
      Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo(Duration.seconds(20))))
    )
    yield* Effect.addFinalizer(() => onConn(sql`SELECT pg_advisory_unlock(hashtext(${key}))`).pipe(Effect.orDie))
    const [me] = yield* onConn(sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)
    return me!.pid
  }).pipe(Effect.orDie)
