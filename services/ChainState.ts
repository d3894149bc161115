import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
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
const decodeLogs = decodeRows(LogRow)
const toPublished = (r: typeof LogRow.Type): PublishedLog => ({
  blockNumber: r.block_number,
  blockHash: r.block_hash,
  txHash: r.tx_hash,
  logIndex: r.log_index,
  contract: r.contract,
  event: r.event
})

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

    /**
     * A scanned range, in one transaction: its published logs, the blocks holding them and its last block remembered,
     * and the cursor moved to that block. Multi-row statements (unnest) however many logs the range holds.
     */
    const commitRange = (network: string, logs: ReadonlyArray<PublishedLog>, to: Cursor) => {
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
      return sql.withTransaction(Effect.all([...(logs.length === 0 ? [] : [recordLogs]), rememberBlocks, moveCursor], { discard: true })).pipe(
        Effect.orDie
      )
    }

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

    /**
     * Where billing believes seen or confirmed payments sit on chain above a height (up to another, if given),
     * whichever path (webhook or listener) settled them: a rewind or a scan must re-check them even when the
     * listener never recorded their log.
     */
    const paymentLogsAbove = (network: string, height: bigint, upTo?: bigint) =>
      sql`SELECT block_number::text AS block_number, block_hash, tx_hash, log_index, contract_address AS contract, 'Minted' AS event
        FROM payment_transactions
        WHERE network = ${network} AND status IN ('seen', 'confirmed') AND block_number > ${height.toString()}
          AND ${upTo === undefined ? sql`true` : sql`block_number <= ${upTo.toString()}`} AND block_hash IS NOT NULL AND tx_hash IS NOT NULL AND log_index IS NOT NULL
        ORDER BY block_number, log_index`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeLogs),
        Effect.map((rows) => rows.map(toPublished))
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

    return { cursor, advance, commitRange, blocksBelow, logsAbove, paymentLogsAbove, rewind, trim } as const
  })
}) {}
