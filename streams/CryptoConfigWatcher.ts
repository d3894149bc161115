import { Effect, Layer, Schedule } from "effect"
import { ConfigReloadEvery } from "../services/CryptoConfig.ts"
import { Nats } from "../services/Nats.ts"
import { Rpc } from "../services/Rpc.ts"

/**
 * Live crypto-config: a change made on any instance is signalled over NATS and every instance reloads its RPC
 * endpoints at once; a periodic reload covers a signal lost while disconnected.
 */
export const CryptoConfigWatcherLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const rpc = yield* Rpc
  const every = yield* ConfigReloadEvery
  yield* nats.onSignal(nats.subjects.control("crypto-config"), () =>
    rpc.reload.pipe(Effect.zipRight(Effect.logInfo("crypto-config changed: RPC endpoints reloaded"))))
  yield* Effect.forkScoped(
    rpc.reload.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("periodic crypto-config reload failed", cause)),
      Effect.repeat(Schedule.spaced(every))
    )
  )
}))
