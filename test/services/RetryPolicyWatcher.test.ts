/**
 * A retry policy set on one instance is in force on another within seconds, without a restart: two instances (own
 * NATS connection, own policies in memory) on one PostgreSQL and prefix. And a live Schedule reads its policy at
 * every step: a change between retries changes the next delay.
 */
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Ref } from "effect"
import { randomBytes } from "node:crypto"
import { pgLayer } from "../../services/Database.ts"
import { runMigrations } from "../../services/Migrations.ts"
import { Nats } from "../../services/Nats.ts"
import { liveSchedule, RetryPolicyState } from "../../services/RetryPolicies.ts"
import { RetryPolicyStore } from "../../services/RetryPolicyStore.ts"
import { Prefix } from "../../services/Subjects.ts"
import type { RetryPolicySettings } from "../../src/domain/RetryPolicy.ts"
import { RetryPolicyWatcherLive } from "../../streams/RetryPolicyWatcher.ts"
import { eventually } from "../support/app.ts"
import { freshDatabaseUrl } from "../support/database.ts"
import { deleteStreams } from "../smoke/harness.ts"

const instance = (url: string, prefix: Prefix) =>
  Layer.build(
    Layer.mergeAll(RetryPolicyWatcherLive, RetryPolicyStore.Default).pipe(
      Layer.provideMerge(RetryPolicyState.Default),
      Layer.provideMerge(Nats.layerWith({ prefix })),
      Layer.provideMerge(pgLayer(url))
    )
  ).pipe(Effect.map((ctx) => ({ store: Context.get(ctx, RetryPolicyStore), state: Context.get(ctx, RetryPolicyState) })))

describe("retry policies across instances", () => {
  it.live("a policy set on one instance is in force on the other within seconds", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabaseUrl
      yield* runMigrations().pipe(Effect.provide(Layer.merge(pgLayer(url), NodeContext.layer)), Effect.orDie)
      const prefix = Prefix.make(`T${randomBytes(5).toString("hex")}`)
      yield* deleteStreams(prefix)
      const a = yield* instance(url, prefix)
      const b = yield* instance(url, prefix)
      const before = yield* b.state.current("rpc")
      const settings: RetryPolicySettings = { initial_delay_ms: 1234, factor: 1.5, max_delay_ms: 5000, max_attempts: 7, jitter: 0.3 }
      assert.notDeepEqual(before, settings)

      const started = Date.now()
      yield* a.store.set("rpc", settings, { id: "ops-1" })
      assert.deepStrictEqual(yield* a.state.current("rpc"), settings, "the writer at once")
      yield* eventually(b.state.current("rpc"), (p) => p.max_attempts === 7, "the other instance")
      assert.deepStrictEqual(yield* b.state.current("rpc"), settings)
      // the signal, not the 30 s periodic reload
      assert.isBelow(Date.now() - started, 5_000)
      // the policies not stored keep the environment's values
      assert.deepStrictEqual(yield* b.state.current("outbox"), b.state.defaults.outbox)
    }).pipe(Effect.scoped, Effect.orDie), 60_000)

  it.live("a live schedule reads its policy at every step", () =>
    Effect.gen(function*() {
      const fast: RetryPolicySettings = { initial_delay_ms: 10, factor: 1, max_delay_ms: 10, max_attempts: 10, jitter: 0 }
      const policy = yield* Ref.make(fast)
      const tries: Array<number> = []
      const failing = Effect.suspend(() => {
        tries.push(Date.now())
        // after the third try the operator slows it down and allows 5 tries in all
        if (tries.length === 3) return Effect.zipRight(Ref.set(policy, { ...fast, initial_delay_ms: 300, max_delay_ms: 300, max_attempts: 5 }), Effect.fail("no"))
        return Effect.fail("no")
      })
      yield* Effect.either(Effect.retry(failing, liveSchedule(Ref.get(policy), true)))
      assert.strictEqual(tries.length, 5)
      const gaps = tries.slice(1).map((t, i) => t - tries[i]!)
      assert.isBelow(gaps[0]!, 150)
      assert.isBelow(gaps[1]!, 150)
      assert.isAtLeast(gaps[2]!, 280)
      assert.isAtLeast(gaps[3]!, 280)
    }))
})
