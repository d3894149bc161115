import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { CryptoConfig } from "../../../services/CryptoConfig.ts"
import { Nats } from "../../../services/Nats.ts"
import { Overview } from "../../../services/Overview.ts"
import { Rpc } from "../../../services/Rpc.ts"
import { UserBundle } from "../../../services/UserBundle.ts"
import { BadRequest, Conflict } from "../../domain/Errors.ts"
import { currentActor } from "../Admin/Http.ts"
import { Api } from "../Api.ts"
import * as E from "../Errors.ts"

const badCursor = { BadCursor: E.BadCursor }

export const OverviewLive = HttpApiBuilder.group(Api, "overview", (handlers) =>
  Effect.gen(function*() {
    const config = yield* CryptoConfig
    const nats = yield* Nats
    const rpc = yield* Rpc
    const overview = yield* Overview
    const bundle = yield* UserBundle
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
          Effect.catchTags({
            CryptoConfigInvalid: (e) => Effect.fail(new BadRequest({ error: "invalid_request", message: e.message })),
            EndpointRejected: (e) => Effect.fail(new BadRequest({ error: "invalid_rpc_endpoint", message: e.message })),
            ChainIdFrozen: (e) =>
              Effect.fail(new Conflict({ error: "chain_id_frozen", message: `network ${e.network} has payments: its chain_id cannot change` }))
          })
        ))
      .handle("dashboard", () => overview.dashboard())
      .handle("networks", () =>
        Effect.flatMap(overview.networks(), (networks) =>
          Effect.forEach(networks, (n) =>
            rpc.health(n.network).pipe(
              // Not loaded on this instance (yet): no health to show.
              Effect.catchTag("UnknownNetwork", () => Effect.succeed([])),
              Effect.map((health) => ({ ...n, rpc_health: health.map((h) => ({ index: h.index, healthy: h.healthy, benched: h.benched })) }))
            ))).pipe(Effect.map((networks) => ({ networks }))))
      .handle("payouts", ({ urlParams }) => overview.payouts(urlParams).pipe(Effect.catchTags(badCursor)))
      .handle("userHistory", ({ path, urlParams }) =>
        bundle.history(path.user_id, urlParams.cursor, urlParams.limit).pipe(Effect.catchTags(badCursor)))
      .handle("userSummary", ({ path }) => bundle.summary(path.user_id))
  })).pipe(Layer.provide([CryptoConfig.Default, Overview.Default, UserBundle.Default]))
