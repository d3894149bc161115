/**
 * A batch confirms many events in ONE SQL transaction (ConfirmBatch). An event whose check fails with its own typed
 * error after writing must leave none of its rows, while its batch-mates commit: each unit is a savepoint.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Context, Data, Effect, Either, Layer, Redacted } from "effect"
import { PgClient } from "@effect/sql-pg"
import { Audit } from "../../services/Audit.ts"
import { collected } from "../../services/BatchWrites.ts"
import { ChainState } from "../../services/ChainState.ts"
import { Notifications } from "../../services/Notifications.ts"
import { transactional } from "../../services/Rows.ts"
import { TestDatabase, TestDatabaseUrl } from "../support/database.ts"

class NotOurs extends Data.TaggedError("NotOurs")<{}> {}

const Services = Layer.provideMerge(Layer.mergeAll(Audit.Default, Notifications.Default, ChainState.Default), TestDatabase)

layer(Services, { timeout: 60_000 })("units of work inside a batch transaction", (it) => {
  it.effect("a unit failing with a typed error after a write leaves no row; its batch-mates commit", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE batch_rows (id text PRIMARY KEY)`
      const unit = (id: string, fails: boolean) =>
        transactional(sql)(sql`INSERT INTO batch_rows (id) VALUES (${id})`.pipe(
          Effect.zipRight(fails ? Effect.fail(new NotOurs()) : Effect.void)
        ))
      const results = yield* sql.withTransaction(
        Effect.forEach([["a", false], ["poison", true], ["b", false]] as const, ([id, fails]) => Effect.either(unit(id, fails)))
      )
      assert.deepStrictEqual(results.map((r) => r._tag), ["Right", "Left", "Right"])
      const rows = yield* sql<{ id: string }>`SELECT id FROM batch_rows ORDER BY id`
      assert.deepStrictEqual(rows.map((r) => r.id), ["a", "b"])
    }))

  it.effect("rows collected for the batch's end are written once, with the ids their outbox events announce; a failed unit's are not", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const audit = yield* Audit
      const notifications = yield* Notifications
      const unit = (id: string, fails: boolean) =>
        transactional(sql)(Effect.gen(function*() {
          yield* audit.record({ actor: "service:test", action: "test.unit", resource: `payment:${id}`, after: { id } })
          yield* notifications.notify(`user-${id}`, "payment.reversed", { transaction_id: id, user_id: `user-${id}`, tx_hash: "0x1", network: "anvil" })
          if (fails) return yield* new NotOurs()
        }))
      const results = yield* sql.withTransaction(collected(sql)(
        Effect.forEach([["a", false], ["poison", true], ["b", false]] as const, ([id, fails]) => Effect.either(unit(id, fails)))
      ))
      assert.deepStrictEqual(results.map((r) => r._tag), ["Right", "Left", "Right"])
      const audits = yield* sql<{ id: string; resource: string; created_at: Date }>`SELECT id::text AS id, resource, created_at
        FROM audit_log WHERE action = 'test.unit' ORDER BY id`
      const notes = yield* sql<{ id: string; user_id: string; created_at: Date }>`SELECT id::text AS id, user_id, created_at
        FROM notifications WHERE kind = 'payment.reversed' ORDER BY id`
      assert.deepStrictEqual(audits.map((r) => r.resource), ["payment:a", "payment:b"])
      assert.deepStrictEqual(notes.map((r) => r.user_id), ["user-a", "user-b"])
      const events = yield* sql<{ subject: string; id: string; created_at: string }>`SELECT subject, payload->>'id' AS id,
        payload->>'created_at' AS created_at FROM outbox ORDER BY id`
      // in the order the units added them, each naming the row it announces, at that row's time
      assert.deepStrictEqual(events.map((e) => e.id), [audits[0]!.id, notes[0]!.id, audits[1]!.id, notes[1]!.id])
      assert.deepStrictEqual(events.map((e) => e.subject.split(".")[0]), ["audit", "notifications", "audit", "notifications"])
      assert.deepStrictEqual(events.map((e) => e.created_at), [audits[0]!, notes[0]!, audits[1]!, notes[1]!].map((r) => r.created_at.toISOString()))
    }))

  it.effect("a batch holds the listener's cursor from its start to its commit, even when the unit that asked the listener's view rolls back", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const chainState = yield* ChainState
      yield* sql`INSERT INTO chain_cursors (network, block_number, block_hash) VALUES ('anvil', 5, '0x05')`
      const log = { blockNumber: 9n, blockHash: "0x09", txHash: "0x01", logIndex: 0 }
      // what the listener does to move its cursor, from a connection of its own
      const listener = PgClient.layer({ url: Redacted.make(yield* TestDatabaseUrl), maxConnections: 1 })
      const listenerCanMove = Effect.flatMap(SqlClient.SqlClient, (other) =>
        Effect.either(other`SELECT 1 FROM chain_cursors WHERE network = 'anvil' FOR UPDATE NOWAIT`)).pipe(
          Effect.provide(listener),
          // outside the batch's transaction (its connection is in the context)
          Effect.mapInputContext((ctx: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(ctx)),
          Effect.map(Either.isRight)
        )
      const unit = transactional(sql)(Effect.zipRight(chainState.witness("anvil", log), Effect.fail(new NotOurs())))
      const [duringUnheld, duringHeld] = yield* Effect.all([
        sql.withTransaction(Effect.zipRight(Effect.either(unit), listenerCanMove)),
        sql.withTransaction(chainState.holdingCursors(["anvil"])(Effect.zipRight(Effect.either(unit), listenerCanMove)))
      ])
      assert.isTrue(duringUnheld, "a lock taken in a unit's savepoint went with its rollback")
      assert.isFalse(duringHeld, "the batch's own lock holds")
      assert.strictEqual(yield* chainState.holdingCursors(["anvil"])(chainState.witness("anvil", log)), "unscanned")
    }))
})
