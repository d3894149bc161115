import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { CryptoConfig } from "../../../services/CryptoConfig.ts"
import { Nats } from "../../../services/Nats.ts"
import { Rpc } from "../../../services/Rpc.ts"
import { BadRequest } from "../../domain/Errors.ts"
import { currentActor } from "../Admin/Http.ts"
import { Api } from "../Api.ts"

export const OverviewLive = HttpApiBuilder.group(Api, "overview", (handlers) =>
  Effect.gen(function*() {
    const config = yield* CryptoConfig
    const nats = yield* Nats
    const rpc = yield* Rpc
    return handlers
      .handle("cryptoConfig", () => config.view)
      .handle("updateCryptoConfig", ({ payload }) =>
        Effect.gen(function*() {
          const view = yield* config.update(payload, yield* currentActor)
          // Committed: this instance switches now, the others on the signal (or their periodic reload).
          yield* rpc.reload
          yield* nats.signal(nats.subjects.control("crypto-config")).pipe(
            Effect.catchAll((e) => Effect.logWarning("crypto-config signal not sent; other instances reload on their timer", e))
          )
          return view
        }).pipe(
          Effect.catchTags({ CryptoConfigInvalid: (e) => Effect.fail(new BadRequest({ error: "invalid_request", message: e.message })) })
        ))
  })).pipe(Layer.provide(CryptoConfig.Default))
