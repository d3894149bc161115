import { Effect, Layer } from "effect"
import { ConfigReloadEvery } from "../services/CryptoConfig.ts"
import { Nats } from "../services/Nats.ts"
import { RetryPolicyStore } from "../services/RetryPolicyStore.ts"

/**
 * Live retry policies: loaded from PostgreSQL at start, reloaded when any instance signals a change over NATS, and
 * periodically (a signal lost while disconnected). Until the first load succeeds the environment's defaults run.
 */
export const RetryPolicyWatcherLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const store = yield* RetryPolicyStore
  yield* store.reload.pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("retry policies not loaded at start; the environment's run until the next reload", cause))
  )
  yield* nats.reloadOnAnnounce("retry-policies", store.reload, yield* ConfigReloadEvery)
})).pipe(Layer.provide(RetryPolicyStore.Default))
