/**
 * A range's logs are published as one window and recorded with the cursor in one transaction: a failure anywhere in
 * between leaves the cursor where it was, and the next tick publishes the whole range again, JetStream dropping the
 * repeats by message id. 600 Minted logs (300 in one block, then three blocks of 100), three blocks a range, a window
 * of 16 in flight; the listener is ticked by hand on its own database, stream prefix and anvil.
 *
 * 1. The chain stream takes only 150 messages: the first range fails part way through its window.
 * 2. The limit lifted, the commit held on a row lock: every log of the range is published, then the listener is
 *    killed before it records them.
 * 3. Restarted, it runs to the head: every log recorded once and stored once in the stream, no gap, no repeat.
 */
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Either, Exit, Fiber, Layer, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { createPublicClient, http } from "viem"
import { ChainState } from "../../services/ChainState.ts"
import { Contracts } from "../../services/Contracts.ts"
import { pgLayer } from "../../services/Database.ts"
import { Nats } from "../../services/Nats.ts"
import { Rpc } from "../../services/Rpc.ts"
import { Prefix } from "../../services/Subjects.ts"
import { makeListener } from "../../streams/ChainListener.ts"
import { eventually } from "../support/app.ts"
import { burstChain, burstDatabase } from "../support/mintedBurst.ts"

const ENV = {
  BILLING_RPC_ALLOW_LOOPBACK: "true",
  BILLING_LISTENER_MAX_RANGE: "3",
  BILLING_LISTENER_PUBLISH_WINDOW: "16"
}

class BurstChainTag extends Effect.Tag("test/BurstChain")<BurstChainTag, Effect.Effect.Success<ReturnType<typeof burstChain>>>() {}

const Harness = Layer.unwrapScoped(Effect.gen(function*() {
  const chain = yield* burstChain([300, 100, 100, 100])
  const url = yield* burstDatabase(chain)
  const prefix = Prefix.make(`LB${randomBytes(5).toString("hex")}`)
  const nats = Nats.layerWith({ prefix })
  const cleanup = Layer.scopedDiscard(Effect.flatMap(Nats, (n) =>
    Effect.addFinalizer(() =>
      Effect.forEach(Object.values(n.subjects.streams), (name) => n.use(`delete ${name}`, ({ jsm }) => jsm.streams.delete(name)).pipe(Effect.ignore), {
        discard: true
      }))))
  return Layer.mergeAll(Layer.succeed(BurstChainTag, chain), Rpc.Default, ChainState.Default, Contracts.Default, cleanup).pipe(
    Layer.provideMerge(Layer.mergeAll(pgLayer(url), nats)),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(ENV)))))
  )
}))

const CursorRow = Schema.Array(Schema.Struct({ block_number: Schema.BigInt, block_hash: Schema.String }))
const cursor = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql`SELECT block_number::text AS block_number, block_hash FROM chain_cursors WHERE network = 'anvil'`).pipe(
  Effect.flatMap(Schema.decodeUnknown(CursorRow)),
  Effect.map((rows) => rows[0]!),
  Effect.orDie
)
const recorded = Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM chain_logs`).pipe(
  Effect.map((rows) => rows[0]!.n),
  Effect.orDie
)
const chainStream = Effect.flatMap(Nats, (nats) => nats.use("info", ({ jsm }) => jsm.streams.info(nats.subjects.streams.chain))).pipe(Effect.orDie)
const limitStream = (maxMsgs: number) =>
  Effect.flatMap(Nats, (nats) => nats.use("update", ({ jsm }) => jsm.streams.update(nats.subjects.streams.chain, { max_msgs: maxMsgs }))).pipe(
    Effect.orDie
  )

/** The Nats-Msg-Id of every message the chain stream holds, by sequence. */
const storedIds = Effect.flatMap(Nats, (nats) =>
  Effect.flatMap(chainStream, (info) =>
    Effect.forEach(Array.from({ length: info.state.messages }, (_, i) => i + 1), (seq) =>
      nats.use("get", ({ jsm }) => jsm.streams.getMessage(nats.subjects.streams.chain, { seq })).pipe(
        Effect.map((m) => m?.header.get("Nats-Msg-Id") ?? "")
      ), { concurrency: 16 }))).pipe(Effect.orDie)

layer(Harness, { timeout: 120_000, excludeTestServices: true })("a range published as one window, recorded in one transaction", (it) => {
  it.effect("a failure mid-window or a kill before the commit: every log lands exactly once", () =>
    Effect.gen(function*() {
      const chain = yield* BurstChainTag
      const sql = yield* SqlClient.SqlClient
      const listener = yield* makeListener("anvil")
      const start = yield* cursor
      assert.strictEqual(start.block_number, 0n)

      // 1. The stream refuses the 151st message: the tick fails with part of its window published, nothing recorded.
      yield* limitStream(150)
      const refused = yield* Effect.either(listener.tick)
      assert.isTrue(Either.isLeft(refused), "the tick fails when a publish is refused")
      assert.strictEqual((yield* chainStream).state.messages, 150)
      assert.strictEqual(yield* recorded, 0)
      assert.deepStrictEqual(yield* cursor, start)

      // 2. The limit lifted and the cursor row locked: the whole first range (400 logs) is published, the commit waits;
      // the listener is killed there.
      yield* limitStream(-1)
      const release = yield* Deferred.make<void>()
      const locked = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
        yield* sql`SELECT 1 FROM chain_cursors WHERE network = 'anvil' FOR UPDATE`
        yield* Deferred.succeed(locked, undefined)
        yield* Deferred.await(release)
      })))
      yield* Deferred.await(locked)
      const ticking = yield* Effect.fork(listener.tick)
      yield* eventually(chainStream, (info) => info.state.messages === 400, "the first range published")
      // Interrupted while its transaction waits on the lock: it can only roll back.
      yield* Fiber.interruptFork(ticking)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(ticking)))
      assert.strictEqual(yield* recorded, 0, "nothing recorded")
      assert.deepStrictEqual(yield* cursor, start, "the cursor did not move")
      assert.strictEqual((yield* chainStream).state.last_seq, 400, "the repeats of step 1 were dropped")

      // 3. Restarted: it runs to the head.
      const restarted = yield* makeListener("anvil")
      yield* eventually(Effect.zipRight(restarted.tick, cursor), (c) => c.block_number === chain.toBlock, "the listener at the head")
      const onChain = yield* Effect.promise(() =>
        createPublicClient({ transport: http(chain.rpcUrl) }).getLogs({ address: chain.address, fromBlock: 0n, toBlock: chain.toBlock })
      )
      assert.strictEqual(onChain.length, 600)
      assert.strictEqual(yield* recorded, 600, "every log recorded once")
      const info = yield* chainStream
      assert.strictEqual(info.state.messages, 600, "every log stored once")
      assert.strictEqual(info.state.last_seq, 600, "no repeat ever stored")
      const ids = yield* storedIds
      assert.deepStrictEqual(
        new Set(ids),
        new Set(onChain.map((l) => `${chain.chainId}:${l.blockHash}:${l.logIndex}`)),
        "one message per log, under the listener's msg id"
      )
      const keys = yield* sql<{ n: number }>`SELECT count(DISTINCT (block_hash, log_index))::int AS n FROM chain_logs`
      assert.strictEqual(keys[0]!.n, 600)
    }))
})
