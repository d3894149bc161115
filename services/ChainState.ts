import { SqlClient } from "@effect/sql"
import { Data, Effect, FiberRef, Option, Schema } from "effect"
import { ChainEvent } from "../src/domain/Events.ts"
import { decodeRows } from "./Rows.ts"

export interface Cursor {
  readonly blockNumber: bigint
  readonly blockHash: string
}

export interface PublishedLog {
  readonly blockNumber: bigint
  readonly blockHash: string
  readonly txHash: string
  readonly logIndex: number
  readonly contract: string
  readonly event: ChainEvent["event"]
}

const BlockRow = Schema.Struct({ block_number: Schema.BigInt, block_hash: Schema.String })
const LogRow = Schema.Struct({
  block_number: Schema.BigInt,
  block_hash: Schema.String,
  tx_hash: Schema.String,
  log_index: Schema.Number,
  contract: Schema.String,
  event: ChainEvent.fields.event
})
const decodeBlocks = decodeRows(BlockRow)
const decodeWitness = decodeRows(Schema.Struct({ covered: Schema.Boolean, recorded: Schema.Boolean }))
const decodeLogs = decodeRows(LogRow)
const toPublished = (r: typeof LogRow.Type): PublishedLog => ({
  blockNumber: r.block_number,
  blockHash: r.block_hash,
  txHash: r.tx_hash,
  logIndex: r.log_index,
  contract: r.contract,
  event: r.event
})

const decodeCursors = decodeRows(Schema.Struct({ network: Schema.String, ...BlockRow.fields }))
type CursorRow = typeof BlockRow.Type

/** Cursors a batch share-locked at its transaction's top level (`holdingCursors`), by network; absent: none held. */
const heldCursors = FiberRef.unsafeMake<ReadonlyMap<string, CursorRow | undefined> | undefined>(undefined)

/** What the listener's committed view says of a log a confirmation is about to settle (see `witness`). */
export type Witness = "unscanned" | "recorded" | "absent"

/** A range's commit found the cursor moved, or a payment settled in the range since the tick looked: scan again. */
class RangeChanged extends Data.TaggedError("RangeChanged")<{}> {}

/** What a tick checked before committing its range: the cursor it started from and the settled payments it compared. */
export interface RangeCheck {
  readonly from: Cursor
  readonly settled: ReadonlyArray<PublishedLog>
  /** The canonical hash the tick read at a height, if it read one. */
  readonly hashAt: (blockNumber: bigint) => string | undefined
}

const logKey = (l: PublishedLog) => `${l.blockHash}:${l.logIndex}:${l.txHash}`

/** The listener's persisted view of each chain: cursor, recent block hashes, published logs. */
export class ChainState extends Effect.Service<ChainState>()("billing/ChainState", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const cursor = (network: string) =>
      sql`SELECT block_number::text AS block_number, block_hash FROM chain_cursors WHERE network = ${network}`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeBlocks),
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (r): Cursor => ({ blockNumber: r.block_number, blockHash: r.block_hash })))
      )

    const lockCursor = (network: string, mode: "share" | "update") =>
      sql`SELECT block_number::text AS block_number, block_hash FROM chain_cursors WHERE network = ${network}
        ${mode === "share" ? sql`FOR SHARE` : sql`FOR UPDATE`}`.pipe(Effect.orDie, Effect.flatMap(decodeBlocks), Effect.map((rows) => rows[0]))

    /**
     * A scanned range, in one transaction: its published logs, the blocks holding them and its last block remembered,
     * and the cursor moved to that block. Multi-row statements (unnest) however many logs the range holds. With a
     * `check`, the cursor is locked first and the range is committed only if the cursor is still where the tick
     * started and no payment was settled in the range, since the tick read them, in a block other than the one the
     * tick saw there: a confirmation committed meanwhile from a stale read would otherwise never be re-checked.
     */
    const commitRange = (network: string, logs: ReadonlyArray<PublishedLog>, to: Cursor, check?: RangeCheck) => {
      const blocks = new Map(logs.map((l) => [l.blockNumber, l.blockHash] as const)).set(to.blockNumber, to.blockHash)
      const recordLogs = sql`INSERT INTO chain_logs (network, block_number, block_hash, tx_hash, log_index, contract, event)
        SELECT ${network}, * FROM unnest(${logs.map((l) => l.blockNumber.toString())}::bigint[], ${logs.map((l) => l.blockHash)}::text[],
          ${logs.map((l) => l.txHash)}::text[], ${logs.map((l) => l.logIndex)}::int[], ${logs.map((l) => l.contract)}::text[],
          ${logs.map((l) => l.event)}::text[])
        ON CONFLICT DO NOTHING`
      const rememberBlocks = sql`INSERT INTO chain_blocks (network, block_number, block_hash)
        SELECT ${network}, * FROM unnest(${[...blocks.keys()].map(String)}::bigint[], ${[...blocks.values()]}::text[])
        ON CONFLICT (network, block_number) DO UPDATE SET block_hash = excluded.block_hash`
      const moveCursor = sql`INSERT INTO chain_cursors (network, block_number, block_hash) VALUES (${network}, ${to.blockNumber.toString()}, ${to.blockHash})
        ON CONFLICT (network) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash, updated_at = now()`
      const unchanged = (c: RangeCheck) =>
        Effect.gen(function*() {
          // A confirmation holding the cursor shared is short; waiting longer fails the tick (logged) instead of hanging.
          yield* sql`SET LOCAL lock_timeout = '5s'`.pipe(Effect.orDie)
          const now = yield* lockCursor(network, "update")
          if (now?.block_number !== c.from.blockNumber || now.block_hash !== c.from.blockHash) return yield* new RangeChanged()
          const compared = new Set(c.settled.map(logKey))
          const settled = yield* paymentLogsAbove(network, c.from.blockNumber, to.blockNumber)
          if (settled.some((p) => !compared.has(logKey(p)) && c.hashAt(p.blockNumber) !== p.blockHash)) return yield* new RangeChanged()
        })
      const writes = Effect.all([...(logs.length === 0 ? [] : [recordLogs]), rememberBlocks, moveCursor], { discard: true }).pipe(Effect.orDie)
      return sql.withTransaction(check === undefined ? writes : Effect.zipRight(unchanged(check), writes)).pipe(
        Effect.as(true),
        Effect.catchTag("RangeChanged", () => Effect.succeed(false)),
        Effect.orDie
      )
    }

    /**
     * Runs `self` (a batch, inside its SQL transaction and outside the savepoints of its units) with the cursors of
     * `networks` share-locked once, in one statement: a lock taken inside a unit's savepoint goes if the unit rolls back,
     * one taken here holds until the batch commits, so each witness needs only its own read of what the listener saw.
     */
    const holdingCursors = (networks: ReadonlyArray<string>) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const names = [...new Set(networks)].sort()
        if (names.length === 0) return yield* self
        const rows = yield* sql`SELECT network, block_number::text AS block_number, block_hash FROM chain_cursors
          WHERE network IN ${sql.in(names)} ORDER BY network FOR SHARE`.pipe(Effect.orDie, Effect.flatMap(decodeCursors))
        const held = new Map<string, CursorRow | undefined>(names.map((n) => [n, undefined]))
        for (const r of rows) held.set(r.network, { block_number: r.block_number, block_hash: r.block_hash })
        return yield* Effect.locally(self, heldCursors, held)
      })

    /**
     * What the listener's committed view says of a log, with its cursor share-locked to the end of the caller's
     * transaction (the listener can neither move past the block nor rewind over it until the caller commits):
     * `unscanned` when it has not scanned the block yet, or remembers nothing that old; `recorded` when it recorded
     * this log in this very block; `absent` when it scanned the block and did not (the log's block was replaced, or
     * its contract was not watched then).
     */
    const witness = (network: string, log: { readonly blockNumber: bigint; readonly blockHash: string; readonly txHash: string; readonly logIndex: number }) =>
      Effect.gen(function*() {
        const held = yield* FiberRef.get(heldCursors)
        const cursor = held?.has(network) === true ? held.get(network) : yield* lockCursor(network, "share")
        if (cursor === undefined || cursor.block_number < log.blockNumber) return "unscanned" satisfies Witness
        // A statement of its own: its snapshot is taken after the lock, so it sees what the listener committed.
        const [seen] = yield* sql`SELECT
            EXISTS (SELECT 1 FROM chain_blocks WHERE network = ${network} AND block_number <= ${log.blockNumber.toString()}) AS covered,
            EXISTS (SELECT 1 FROM chain_logs WHERE network = ${network} AND block_hash = ${log.blockHash.toLowerCase()}
              AND log_index = ${log.logIndex} AND tx_hash = ${log.txHash.toLowerCase()}) AS recorded`.pipe(
          Effect.orDie,
          Effect.flatMap(decodeWitness)
        )
        if (seen === undefined || !seen.covered) return "unscanned" satisfies Witness
        return (seen.recorded ? "recorded" : "absent") satisfies Witness
      })

    /** Moves the cursor and remembers the block, in one transaction. */
    const advance = (network: string, to: Cursor) => commitRange(network, [], to)

    /** Remembered blocks below a height, newest first: candidates for the common ancestor after a reorg. */
    const blocksBelow = (network: string, height: bigint, limit: number) =>
      sql`SELECT block_number::text AS block_number, block_hash FROM chain_blocks
        WHERE network = ${network} AND block_number < ${height.toString()} ORDER BY block_number DESC LIMIT ${limit}`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeBlocks),
        Effect.map((rows) => rows.map((r): Cursor => ({ blockNumber: r.block_number, blockHash: r.block_hash })))
      )

    const logsAbove = (network: string, height: bigint) =>
      sql`SELECT block_number::text AS block_number, block_hash, tx_hash, log_index, contract, event FROM chain_logs
        WHERE network = ${network} AND block_number > ${height.toString()} ORDER BY block_number, log_index`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeLogs),
        Effect.map((rows) => rows.map(toPublished))
      )

    /** Seen or confirmed payments of `network` recorded in a block in (height, upTo]. */
    const settledIn = (network: string, height: bigint, upTo?: bigint) =>
      sql`network = ${network} AND status IN ('seen', 'confirmed') AND block_number > ${height.toString()}
        AND ${upTo === undefined ? sql`true` : sql`block_number <= ${upTo.toString()}`} AND block_hash IS NOT NULL`

    /**
     * Where billing believes seen or confirmed payments sit on chain above a height (up to another, if given),
     * whichever path (webhook or listener) settled them: a rewind or a scan must re-check them even when the
     * listener never recorded their log.
     */
    const paymentLogsAbove = (network: string, height: bigint, upTo?: bigint) =>
      sql`SELECT block_number::text AS block_number, block_hash, tx_hash, log_index, contract_address AS contract, 'Minted' AS event
        FROM payment_transactions WHERE ${settledIn(network, height, upTo)} AND tx_hash IS NOT NULL AND log_index IS NOT NULL
        ORDER BY block_number, log_index`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeLogs),
        Effect.map((rows) => rows.map(toPublished))
      )

    /** The distinct blocks (height and hash) seen or confirmed payments are recorded in, in (height, upTo]. */
    const settledBlocks = (network: string, height: bigint, upTo: bigint) =>
      sql`SELECT DISTINCT block_number::text AS block_number, block_hash FROM payment_transactions
        WHERE ${settledIn(network, height, upTo)}`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeBlocks),
        Effect.map((rows) => rows.map((r): Cursor => ({ blockNumber: r.block_number, blockHash: r.block_hash })))
      )

    /** After a reorg: forget everything above the common ancestor and move the cursor back to it. */
    const rewind = (network: string, ancestor: Cursor) =>
      sql.withTransaction(Effect.all([
        sql`DELETE FROM chain_logs WHERE network = ${network} AND block_number > ${ancestor.blockNumber.toString()}`,
        sql`DELETE FROM chain_blocks WHERE network = ${network} AND block_number > ${ancestor.blockNumber.toString()}`,
        sql`UPDATE chain_cursors SET block_number = ${ancestor.blockNumber.toString()}, block_hash = ${ancestor.blockHash}, updated_at = now()
          WHERE network = ${network}`
      ])).pipe(Effect.orDie, Effect.asVoid)

    const trim = (network: string, below: bigint) =>
      sql`DELETE FROM chain_blocks WHERE network = ${network} AND block_number < ${below.toString()}`.pipe(Effect.orDie, Effect.asVoid)

    return { cursor, advance, commitRange, witness, holdingCursors, blocksBelow, logsAbove, paymentLogsAbove, settledBlocks, rewind, trim } as const
  })
}) {}
