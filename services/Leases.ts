import { SqlClient } from "@effect/sql"
import { Duration, Effect, Schedule, Schema } from "effect"
import { decodeRows } from "./Rows.ts"

const decodeOk = decodeRows(Schema.Struct({ ok: Schema.Boolean }))

/**
 * Leadership by PostgreSQL session advisory lock, held on a reserved connection: exactly one process runs the
 * leased work; when that process or its connection dies the lock is released and another takes over.
 */
export class Leases extends Effect.Service<Leases>()("billing/Leases", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const whileLeader = <E, R>(name: string, work: Effect.Effect<never, E, R>, every: Duration.DurationInput = "2 seconds") => {
      const key = `evm-billing:${name}`
      const session = Effect.gen(function*() {
        const conn = yield* sql.reserve
        // Statements run on the reserved connection, where the session lock lives.
        const onConn = <A, E2, R2>(e: Effect.Effect<A, E2, R2>) => Effect.provideService(e, SqlClient.TransactionConnection, [conn, 0] as const)
        // A connection that stops answering (a partition without a reset) may have lost its session, and the lock
        // with it: give it one period, and do not wait for the cancel of a query that cannot reach the server.
        const withinPeriod = <A, E2, R2>(e: Effect.Effect<A, E2, R2>) => e.pipe(Effect.disconnect, Effect.timeout(every))
        const tryLock = onConn(sql`SELECT pg_try_advisory_lock(hashtext(${key})) AS ok`.pipe(Effect.flatMap(decodeOk)))
        yield* tryLock.pipe(
          Effect.filterOrFail((rows) => rows[0]?.ok === true, () => "held elsewhere" as const),
          Effect.retry({ schedule: Schedule.spaced(every), while: (e) => e === "held elsewhere" })
        )
        yield* Effect.addFinalizer(() =>
          withinPeriod(onConn(sql`SELECT pg_advisory_unlock(hashtext(${key}))`)).pipe(
            Effect.catchAll((e) => Effect.logWarning("lease release failed (the lock goes with the connection)", e))
          ))
        yield* Effect.logInfo("lease acquired").pipe(Effect.annotateLogs("lease", name))
        // The lock is only as alive as its connection: stop the work when the connection fails or falls silent.
        const heartbeat = withinPeriod(onConn(sql`SELECT 1`)).pipe(Effect.repeat(Schedule.spaced(every)), Effect.zipRight(Effect.never))
        return yield* Effect.raceFirst(work, heartbeat)
      }).pipe(Effect.scoped)
      return session.pipe(
        Effect.tapErrorCause((cause) => Effect.logWarning("leased work stopped, will try to lead again", cause)),
        Effect.retry(Schedule.spaced(every)),
        Effect.annotateLogs("lease", name)
      )
    }

    return { whileLeader } as const
  })
}) {}
