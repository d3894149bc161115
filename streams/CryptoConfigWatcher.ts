import { Config, Duration, Effect, Layer, Schedule } from "effect"
import { Nats } from "../services/Nats.ts"
import { Rpc } from "../services/Rpc.ts"

export const ReloadEvery = Config.duration("BILLING_CONFIG_RELOAD").pipe(Config.withDefault(Duration.seconds(30)))

/**
 * Live crypto-config: a change made on any instance is signalled over NATS and every instance reloads its RPC
 * endpoints at once; a periodic reload covers a signal lost while disconnected.
 */
export const CryptoConfigWatcherLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const rpc = yield* Rpc
  const every = yield* ReloadEvery
  yield* nats.onSignal(nats.subjects.control("crypto-config"), () =>
    rpc.reload.pipe(Effect.zipRight(Effect.logInfo("crypto-config changed: RPC endpoints reloaded"))))
  yield* Effect.forkScoped(
    rpc.reload.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("periodic crypto-config reload failed", cause)),
      Effect.repeat(Schedule.spaced(every))
    )
  )
}))
