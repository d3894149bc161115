/**
 * Every stream is bounded: the limits come from the environment, a max age shorter than the duplicate window
 * refuses to start naming the variable, and streams that already exist get the limits when the service starts.
 */
import { assert, describe, it } from "@effect/vitest"
import { DiscardPolicy } from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import { ConfigProvider, Duration, Effect, Either } from "effect"
import { randomUUID } from "node:crypto"
import { Nats } from "../../services/Nats.ts"
import { StreamLimits } from "../../services/StreamLimits.ts"
import { Prefix } from "../../services/Subjects.ts"

const limitsFrom = (env: Record<string, string>) =>
  Effect.either(Effect.withConfigProvider(StreamLimits, ConfigProvider.fromMap(new Map(Object.entries(env)))))

const prefix = Prefix.make(`T${randomUUID().replaceAll("-", "").slice(0, 12)}`)
const limits = { maxAge: Duration.days(2), maxBytes: 5 * 1024 * 1024 }

const infoOf = (name: string) =>
  Effect.flatMap(Nats, (nats) => nats.use("streams.info", ({ jsm }) => jsm.streams.info(name))).pipe(Effect.orDie)

describe("StreamLimits", () => {
  it.effect("defaults: 7 days and 1 GiB", () =>
    Effect.gen(function*() {
      const parsed = yield* limitsFrom({})
      assert.isTrue(Either.isRight(parsed))
      if (Either.isRight(parsed)) {
        assert.isTrue(Duration.equals(parsed.right.maxAge, Duration.days(7)))
        assert.strictEqual(parsed.right.maxBytes, 1024 ** 3)
      }
    }))

  it.effect("a max age shorter than the 1 hour duplicate window is refused, naming the variable", () =>
    Effect.gen(function*() {
      const parsed = yield* limitsFrom({ BILLING_STREAM_MAX_AGE: "30 minutes" })
      assert.isTrue(Either.isLeft(parsed))
      if (Either.isLeft(parsed)) assert.include(String(parsed.left), "BILLING_STREAM_MAX_AGE")
      const bytes = yield* limitsFrom({ BILLING_STREAM_MAX_BYTES: "10" })
      assert.isTrue(Either.isLeft(bytes))
      if (Either.isLeft(bytes)) assert.include(String(bytes.left), "BILLING_STREAM_MAX_BYTES")
    }))

  it.effect("existing unbounded streams get the limits on start; work streams discard new, events old, DLQ 30 days", () =>
    Effect.gen(function*() {
      // an older deployment's streams: no limits, discard old
      const names = yield* Effect.scoped(Effect.gen(function*() {
        const nats = yield* Nats
        for (const name of Object.values(nats.subjects.streams)) {
          yield* nats.use("streams.update", ({ jsm }) =>
            jsm.streams.update(name, { max_age: 0, max_bytes: -1, discard: DiscardPolicy.Old })).pipe(Effect.orDie)
          assert.strictEqual((yield* infoOf(name)).config.max_bytes, -1)
        }
        return nats.subjects.streams
      }).pipe(Effect.provide(Nats.layerWith({ prefix, limits: { maxAge: Duration.hours(1), maxBytes: 1024 } }))))

      // the service starts again on the same streams
      yield* Effect.scoped(Effect.gen(function*() {
        const nats = yield* Nats
        const want = nanos(Duration.toMillis(limits.maxAge))
        for (const name of [names.webhooks, names.chain]) {
          const { config } = yield* infoOf(name)
          assert.strictEqual(config.max_age, want, name)
          assert.strictEqual(config.max_bytes, limits.maxBytes, name)
          assert.strictEqual(config.discard, DiscardPolicy.New, name)
        }
        const events = (yield* infoOf(names.events)).config
        assert.strictEqual(events.max_age, want)
        assert.strictEqual(events.max_bytes, limits.maxBytes)
        assert.strictEqual(events.discard, DiscardPolicy.Old)
        const dlq = (yield* infoOf(names.dlq)).config
        assert.strictEqual(dlq.max_age, nanos(Duration.toMillis(Duration.days(30))))
        assert.strictEqual(dlq.max_bytes, limits.maxBytes)
        assert.strictEqual(dlq.discard, DiscardPolicy.New)
        yield* Effect.forEach(Object.values(names), (name) =>
          nats.use("streams.delete", ({ jsm }) => jsm.streams.delete(name)).pipe(Effect.orDie), { discard: true })
      }).pipe(Effect.provide(Nats.layerWith({ prefix, limits }))))
    }), { timeout: 30_000 })
})

