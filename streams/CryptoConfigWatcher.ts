import { Effect, Layer } from "effect"
import { ConfigReloadEvery } from "../services/CryptoConfig.ts"
import { Nats } from "../services/Nats.ts"
import { Rpc } from "../services/Rpc.ts"

/**
 * Live crypto-config: a change made on any instance is signalled over NATS and every instance reloads its RPC
 * endpoints at once; a periodic reload covers a signal lost while disconnected. Rpc loaded them when it was built.
 */
export const CryptoConfigWatcherLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const rpc = yield* Rpc
  yield* nats.reloadOnAnnounce("crypto-config", rpc.reload, yield* ConfigReloadEvery)
}))
