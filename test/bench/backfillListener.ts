/**
 * The backfill bench's service side, run as a child process so its peak RSS is its own: the ChainListener layer
 * on the real PostgreSQL, NATS and anvil (configured by the environment the driver sets), timed from the moment the
 * listener starts until its cursor reaches BACKFILL_HEAD. Prints one JSON line: seconds and peak RSS.
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Logger, LogLevel, Schedule, Schema } from "effect"
import { PgLive } from "../../services/Database.ts"
import { Nats } from "../../services/Nats.ts"
import { Rpc } from "../../services/Rpc.ts"
import { ChainListenerLive } from "../../streams/ChainListener.ts"

const Head = Schema.Config("BACKFILL_HEAD", Schema.BigInt)
const CursorRow = Schema.Array(Schema.Struct({ block_number: Schema.BigInt }))

const run = Effect.gen(function*() {
  const head = yield* Head
  const sql = yield* SqlClient.SqlClient
  const cursor = sql`SELECT block_number::text AS block_number FROM chain_cursors WHERE network = 'anvil'`.pipe(
    Effect.flatMap(Schema.decodeUnknown(CursorRow)),
    Effect.map((rows) => rows[0]?.block_number ?? -1n)
  )
  const started = performance.now()
  yield* Layer.build(ChainListenerLive)
  yield* cursor.pipe(Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (n) => n >= head }))
  const seconds = (performance.now() - started) / 1000
  const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024)
  yield* Effect.sync(() => console.log(`\n${JSON.stringify({ seconds, peakRssMiB })}`))
})

run.pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(Nats.Default, Rpc.Default).pipe(Layer.provideMerge(PgLive))),
  Logger.withMinimumLogLevel(process.env["BACKFILL_DEBUG"] === "1" ? LogLevel.Debug : LogLevel.Warning),
  NodeRuntime.runMain
)
