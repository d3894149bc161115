/**
 * Chain rewrites for listener tests: anvil_reorg, snapshot and revert, and the listener's cursor.
 *
 * anvil_reorg(depth, pairs) replaces the `depth` newest blocks with as many new ones (the head height stays);
 * their transactions vanish. evm_revert(id) drops every block after the snapshot: the head goes down.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Hex } from "viem"
import { chainCall } from "./anvil.ts"
import { eventually, type Harness } from "./app.ts"

export const reorg = (app: Harness, depth: number) =>
  chainCall(() =>
    app.devnet.testClient.request<{ Parameters: [number, Array<readonly [Hex, number]>]; ReturnType: null }>({
      method: "anvil_reorg",
      params: [depth, []]
    })
  ).pipe(Effect.orDie)

export const snapshot = (app: Harness) => chainCall(() => app.devnet.testClient.snapshot()).pipe(Effect.orDie)

export const revert = (app: Harness, id: Hex) => chainCall(() => app.devnet.testClient.revert({ id })).pipe(Effect.orDie)

export const head = (app: Harness) => chainCall(() => app.devnet.publicClient.getBlock()).pipe(Effect.orDie)

/** The listener's cursor for network `anvil`, if it has one. */
export const cursor = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ block_number: string; block_hash: string }>`SELECT block_number::text AS block_number, block_hash FROM chain_cursors
    WHERE network = 'anvil'`).pipe(
  Effect.orDie,
  Effect.map((rows) => (rows[0] === undefined ? undefined : { number: BigInt(rows[0].block_number), hash: rows[0].block_hash }))
)

/** Waits until the listener's cursor is the chain head (same height and hash): it has scanned every block. */
export const listenerCaughtUp = (app: Harness) =>
  Effect.gen(function*() {
    const tip = yield* head(app)
    yield* eventually(cursor, (c) => c?.number === tip.number && c.hash === tip.hash, `listener at block ${tip.number}`)
    return tip
  })
