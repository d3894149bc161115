/**
 * After the faults stop: the service is given a bounded time to catch up, until the orders it holds confirmed are
 * exactly those the chain holds (a payment a deep reorg took back must be reversed), the durable consumers hold
 * nothing and the outbox is drained, or the bound passes.
 */
import { SqlClient } from "@effect/sql"
import { type Duration, Effect, Schedule, Schema } from "effect"
import { jetStreamState } from "./JetStreamState.ts"
import { outboxDrained } from "./invariants.ts"
import type { Order } from "./Workload.ts"

const Confirmed = Schema.Array(Schema.Struct({ id: Schema.String }))

const settledNow = (orders: ReadonlyArray<Order>, paid: ReadonlyArray<Order>, natsUrl: string, prefix: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ids = orders.map((o) => o.transactionId)
    const confirmed = ids.length === 0 ? [] : yield* sql`SELECT id::text AS id FROM payment_transactions
      WHERE status = 'confirmed' AND id::text IN ${sql.in(ids)}`.pipe(Effect.flatMap(Schema.decodeUnknown(Confirmed)))
    const paidIds = new Set(paid.map((o) => o.transactionId))
    const js = yield* jetStreamState(natsUrl, prefix)
    const outbox = yield* outboxDrained
    return confirmed.length === paidIds.size && confirmed.every((c) => paidIds.has(c.id)) &&
      js.consumers.every((c) => c.unacked === 0) && outbox.pending === 0
  })

/** Waits (polling once a second) until settled or `bound` passes; how long it took. */
export const settle = (orders: ReadonlyArray<Order>, paid: ReadonlyArray<Order>, natsUrl: string, prefix: string, bound: Duration.DurationInput) =>
  Effect.gen(function*() {
    const started = performance.now()
    yield* settledNow(orders, paid, natsUrl, prefix).pipe(
      Effect.orElseSucceed(() => false),
      Effect.repeat({ schedule: Schedule.spaced("1 second").pipe(Schedule.upTo(bound)), until: (done) => done })
    )
    return Math.round((performance.now() - started) / 1000)
  })
