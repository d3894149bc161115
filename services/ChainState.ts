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

    /** Moves the cursor and remembers the block, in one transaction. */
    const advance = (network: string, to: Cursor) =>
      sql.withTransaction(Effect.zipRight(
        sql`INSERT INTO chain_cursors (network, block_number, block_hash) VALUES (${network}, ${to.blockNumber.toString()}, ${to.blockHash})
          ON CONFLICT (network) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash, updated_at = now()`,
        rememberBlock(network, to)
      )).pipe(Effect.orDie)

    const rememberBlock = (network: string, block: Cursor) =>
      sql`INSERT INTO chain_blocks (network, block_number, block_hash) VALUES (${network}, ${block.blockNumber.toString()}, ${block.blockHash})
        ON CONFLICT (network, block_number) DO UPDATE SET block_hash = excluded.block_hash`

    /** Remembered blocks below a height, newest first: candidates for the common ancestor after a reorg. */
    const blocksBelow = (network: string, height: bigint, limit: number) =>
      sql`SELECT block_number::text AS block_number, block_hash FROM chain_blocks
        WHERE network = ${network} AND block_number < ${height.toString()} ORDER BY block_number DESC LIMIT ${limit}`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeBlocks),
        Effect.map((rows) => rows.map((r): Cursor => ({ blockNumber: r.block_number, blockHash: r.block_hash })))
      )

    const recordLog = (network: string, log: PublishedLog) =>
      Effect.zipRight(
        sql`INSERT INTO chain_logs (network, block_number, block_hash, tx_hash, log_index, contract, event)
          VALUES (${network}, ${log.blockNumber.toString()}, ${log.blockHash}, ${log.txHash}, ${log.logIndex}, ${log.contract}, ${log.event})
          ON CONFLICT DO NOTHING`,
        rememberBlock(network, { blockNumber: log.blockNumber, blockHash: log.blockHash })
      ).pipe(Effect.orDie)

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

    return { cursor, advance, blocksBelow, recordLog, logsAbove, paymentLogsAbove, rewind, trim } as const
  })
}) {}
