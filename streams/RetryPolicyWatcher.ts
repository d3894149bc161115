import { Effect, Layer, Schedule } from "effect"
import { ConfigReloadEvery } from "../services/CryptoConfig.ts"
import { Nats } from "../services/Nats.ts"
import { RetryPolicyStore } from "../services/RetryPolicyStore.ts"

/**
 * Live retry policies: loaded from PostgreSQL at start, reloaded when any instance signals a change over NATS, and
 * periodically (a signal lost while disconnected). Until the first load the environment's defaults run.
 */
export const RetryPolicyWatcherLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const store = yield* RetryPolicyStore
  const every = yield* ConfigReloadEvery
  yield* nats.onSignal(nats.subjects.control("retry-policies"), () =>
    store.reload.pipe(Effect.zipRight(Effect.logInfo("retry policies changed: reloaded"))))
  yield* Effect.forkScoped(
    store.reload.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("retry-policy reload failed; the policies in force stay", cause)),
      Effect.repeat(Schedule.spaced(every))
    )
  )
})).pipe(Layer.provide(RetryPolicyStore.Default))
