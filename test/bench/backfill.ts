/**
 * Chain backfill (issue 9, item 5): the ChainListener from a cursor at block 0 over `events` Minted logs on anvil,
 * beside the bare floors for the same chain in the same run. `npx tsx test/bench/backfill.ts --events=100000
 * [--per-block=100]`. The service runs as a child process (its peak RSS is its own) with the listener's defaults:
 * reorg checks on, the range starting at BILLING_LISTENER_MAX_RANGE and split on refusal. BACKFILL_DEBUG=1 prints the
 * listener's debug log (one line a range); BACKFILL_CPU_PROF=<dir> writes its CPU profile there.
 */
import { SqlClient } from "@effect/sql"
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import { pgLayer } from "../../services/Database.ts"
import * as Subjects from "../../services/Subjects.ts"
import { burstChain, burstDatabase } from "../support/mintedBurst.ts"
import { floorFull, floorGetLogsDecode, floorGetLogsDecodeInsert } from "./backfillFloors.ts"
import { runNode } from "./process.ts"
import { START_FLAGS } from "./startup.ts"

export interface BackfillOptions {
  readonly events: number
  /** Minted logs per block (default 100). */
  readonly perBlock?: number
  /** Extra environment for the listener process (e.g. BILLING_LISTENER_TARGET_LOGS). */
  readonly env?: Readonly<Record<string, string>>
}

export interface BackfillResult {
  readonly events: number
  readonly seconds: number
  readonly eventsPerSecond: number
  readonly peakRssMiB: number
  readonly floorGetLogsDecode: number
  readonly floorGetLogsDecodeInsert: number
  /** getLogs + decode + windowed JetStream publish + INSERT, bare: the listener's whole work without the service. */
  readonly floorFull: number
  /** JetStream messages the listener left on its chain stream (every event once: equal to `events`). */
  readonly published: number
}

const LISTENER = fileURLToPath(new URL("./backfillListener.ts", import.meta.url))

const ListenerFigures = Schema.parseJson(Schema.Struct({ seconds: Schema.Number, peakRssMiB: Schema.Number }))

/** Runs the listener process until its cursor reaches the chain's last block; its one JSON line, decoded. */
const runListener = (env: Record<string, string>) => {
  const profile = process.env["BACKFILL_CPU_PROF"]
  const flags = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]
  // npm start's node flags (its heap cap): the listener runs as the service would
  return runNode([...START_FLAGS, ...flags, "--import", "tsx", LISTENER], { env: { ...process.env, ...env } }).pipe(
    Effect.flatMap(({ code, err, last, out }) => {
      if (process.env["BACKFILL_DEBUG"] === "1") console.error(out, err)
      if (code !== 0 || last === undefined) return Effect.fail(new Error(`listener exited ${code}: ${(err || out).slice(-1500)}`))
      return Effect.mapError(Schema.decode(ListenerFigures)(last), (e) => new Error(String(e)))
    })
  )
}

const streamMessages = (prefix: Subjects.Prefix) =>
  Effect.promise(async () => {
    const nc = await connect({ servers: process.env["NATS_URL"] ?? "127.0.0.1:4222", noAsyncTraces: true })
    try {
      const jsm = await jetstreamManager(nc)
      const streams = Subjects.make(prefix).streams
      const info = await jsm.streams.info(streams.chain)
      await Promise.all(Object.values(streams).map((name) => jsm.streams.delete(name).catch(() => false)))
      return info.state.messages
    } finally {
      await nc.close()
    }
  })

export const backfillEffect = (options: BackfillOptions) =>
  Effect.gen(function*() {
    const perBlock = options.perBlock ?? 100
    const bursts = Array.from({ length: Math.ceil(options.events / perBlock) }, (_, i) => Math.min(perBlock, options.events - i * perBlock))
    const chain = yield* burstChain(bursts)
    const url = yield* burstDatabase(chain)
    // The floors read in chunks of about 10,000 logs: the most one answer holds under viem's 10 MB response limit.
    const floor = { chain, chunkBlocks: BigInt(Math.max(1, Math.floor(10_000 / perBlock))) }
    const bare = yield* Effect.promise(() => floorGetLogsDecode(floor))
    const withInsert = yield* Effect.promise(() => floorGetLogsDecodeInsert(floor, url))
    const full = yield* Effect.promise(() => floorFull(floor, url))
    const prefix = Schema.decodeSync(Subjects.Prefix)(`BF${randomBytes(4).toString("hex").toUpperCase()}`)
    const listener = yield* runListener({
      DATABASE_URL: url,
      BILLING_NATS_PREFIX: prefix,
      BILLING_RPC_ALLOW_LOOPBACK: "true",
      BACKFILL_HEAD: chain.toBlock.toString(),
      ...options.env
    })
    const recorded = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM chain_logs`).pipe(
      Effect.provide(pgLayer(url)),
      Effect.orDie
    )
    const published = yield* streamMessages(prefix)
    const events = recorded[0]!.n
    return {
      events,
      seconds: Number(listener.seconds.toFixed(2)),
      eventsPerSecond: Math.round(events / listener.seconds),
      peakRssMiB: listener.peakRssMiB,
      floorGetLogsDecode: bare.eventsPerSecond,
      floorGetLogsDecodeInsert: withInsert.eventsPerSecond,
      floorFull: full.eventsPerSecond,
      published
    } satisfies BackfillResult
  }).pipe(Effect.scoped)

export const backfill = (options: BackfillOptions): Promise<BackfillResult> => Effect.runPromise(backfillEffect(options))

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const events = Number(arg("events") ?? 100_000)
  const perBlock = Number(arg("per-block") ?? 100)
  backfill({ events, perBlock }).then((r) => {
    const ratio = (floor: number) => (r.eventsPerSecond / floor).toFixed(2)
    console.log(`| chain backfill, ${r.events} Minted events, ${perBlock} a block | events/s | ratio of the service |`)
    console.log("| --- | --- | --- |")
    console.log(`| service: ChainListener from block 0 (${r.seconds} s, peak RSS ${r.peakRssMiB} MiB) | ${r.eventsPerSecond} | |`)
    console.log(`| floor: getLogs + decode | ${r.floorGetLogsDecode} | ${ratio(r.floorGetLogsDecode)} |`)
    console.log(`| floor: getLogs + decode + INSERT | ${r.floorGetLogsDecodeInsert} | ${ratio(r.floorGetLogsDecodeInsert)} |`)
    console.log(`| floor: getLogs + decode + JetStream publish (256 in flight) + INSERT | ${r.floorFull} | ${ratio(r.floorFull)} |`)
    console.log(JSON.stringify(r))
    process.exit(r.events === events && r.published === events ? 0 : 1)
  }, (e) => {
    console.error(e)
    process.exit(1)
  })
}
