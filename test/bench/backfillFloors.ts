/**
 * Bare floors for the backfill bench, on the same chain in the same run: viem getLogs + decode with the ABI; the same
 * plus a multi-row INSERT per chunk into a scratch table; and the listener's whole work done bare (getLogs, decode,
 * JetStream publish with msg id, 256 in flight, then the INSERT). Plain promises: nothing here is the service.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import pg from "pg"
import { createPublicClient, decodeEventLog, http, type Log } from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import type { BurstChain } from "../support/mintedBurst.ts"

export interface FloorOptions {
  readonly chain: BurstChain
  /** Blocks per getLogs call: the floor knows the chain's density, the listener has to find it. */
  readonly chunkBlocks: bigint
}

const chunks = function*(from: bigint, to: bigint, size: bigint) {
  for (let start = from; start <= to; start += size) yield [start, start + size - 1n < to ? start + size - 1n : to] as const
}

const decodeAll = (logs: ReadonlyArray<Log>) =>
  logs.map((log) => ({ log, event: decodeEventLog({ abi: SubscriptionPassAbi, data: log.data, topics: log.topics }) }))

/** Events per second over the chain for `work` run on each chunk's decoded logs. */
const timed = async (
  { chain, chunkBlocks }: FloorOptions,
  work: (decoded: ReturnType<typeof decodeAll>) => Promise<void>
) => {
  const client = createPublicClient({ transport: http(chain.rpcUrl, { retryCount: 0, timeout: 60_000 }) })
  let events = 0
  const started = performance.now()
  for (const [fromBlock, toBlock] of chunks(chain.fromBlock, chain.toBlock, chunkBlocks)) {
    const decoded = decodeAll(await client.getLogs({ address: chain.address, fromBlock, toBlock }))
    await work(decoded)
    events += decoded.length
  }
  return { events, eventsPerSecond: Math.round(events / ((performance.now() - started) / 1000)) }
}

export const floorGetLogsDecode = (options: FloorOptions) => timed(options, async () => {})

const insertChunk = async (client: pg.ClientBase, table: string, decoded: ReturnType<typeof decodeAll>) => {
  await client.query("BEGIN")
  await client.query(
    `INSERT INTO ${table} (network, block_number, block_hash, tx_hash, log_index, contract, event)
      SELECT 'anvil', * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
    [
      decoded.map((d) => d.log.blockNumber!.toString()),
      decoded.map((d) => d.log.blockHash!),
      decoded.map((d) => d.log.transactionHash!),
      decoded.map((d) => d.log.logIndex!),
      decoded.map((d) => d.log.address.toLowerCase()),
      decoded.map((d) => d.event.eventName)
    ]
  )
  await client.query("COMMIT")
}

/** A scratch table shaped like chain_logs, dropped afterwards. */
const withScratchTable = async <A>(databaseUrl: string, f: (client: pg.ClientBase, table: string) => Promise<A>) => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  const table = `bench_backfill_${process.pid}`
  try {
    await client.query(`CREATE TABLE ${table} (LIKE chain_logs INCLUDING ALL)`)
    return await f(client, table)
  } finally {
    await client.query(`DROP TABLE IF EXISTS ${table}`)
    await client.end()
  }
}

export const floorGetLogsDecodeInsert = (options: FloorOptions, databaseUrl: string) =>
  withScratchTable(databaseUrl, (client, table) => timed(options, (decoded) => insertChunk(client, table, decoded)))

/** getLogs + decode + JetStream publish (msg id, 256 in flight, every ack awaited) + the INSERT: the listener's work, bare. */
export const floorFull = (options: FloorOptions, databaseUrl: string) =>
  withScratchTable(databaseUrl, async (client, table) => {
    const nc = await connect({ servers: process.env["NATS_URL"] ?? "127.0.0.1:4222", noAsyncTraces: true })
    const jsm = await jetstreamManager(nc)
    const stream = `BENCH_BACKFILL_${process.pid}`
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], duplicate_window: 3_600_000_000_000 })
    const js = jetstream(nc)
    const encoder = new TextEncoder()
    try {
      return await timed(options, async (decoded) => {
        let next = 0
        const lane = async () => {
          while (next < decoded.length) {
            const { log } = decoded[next++]!
            const body = {
              source: "chain",
              network: "anvil",
              chain_id: options.chain.chainId,
              contract: log.address.toLowerCase(),
              event: "Minted",
              tx_hash: log.transactionHash,
              log_index: log.logIndex,
              block_number: Number(log.blockNumber),
              block_hash: log.blockHash,
              removed: false
            }
            await js.publish(`${stream}.chain`, encoder.encode(JSON.stringify(body)), { msgID: `${log.blockHash}:${log.logIndex}` })
          }
        }
        await Promise.all(Array.from({ length: 256 }, lane))
        await insertChunk(client, table, decoded)
      })
    } finally {
      await jsm.streams.delete(stream)
      await nc.close()
    }
  })
