import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { CryptoConfig } from "../../../services/CryptoConfig.ts"
import { Nats } from "../../../services/Nats.ts"
import { Overview } from "../../../services/Overview.ts"
import { Rpc } from "../../../services/Rpc.ts"
import { Ledger } from "../../../services/Ledger.ts"
import { Refunds } from "../../../services/Refunds.ts"
import { Resolutions } from "../../../services/Resolutions.ts"
import { UserBundle } from "../../../services/UserBundle.ts"
import { BadRequest, Conflict, NotFound } from "../../domain/Errors.ts"
import { currentActor } from "../Admin/Http.ts"
import { Api } from "../Api.ts"
import * as E from "../Errors.ts"
import type { PaymentNotFound } from "../../domain/Payment.ts"
import type { RefundRejected } from "../../domain/Refund.ts"

const badCursor = { BadCursor: E.BadCursor }

const paymentNotFound = {
  PaymentNotFound: (e: PaymentNotFound) => Effect.fail(new NotFound({ error: "payment_not_found", message: `no payment ${e.paymentId}` }))
}
const refundRejected = {
  ...paymentNotFound,
  RefundRejected: (e: RefundRejected) =>
    Effect.fail(
      e.reason === "refund_unverified"
        ? new BadRequest({ error: "refund_unverified", message: e.message })
        : new Conflict({ error: e.reason, message: e.message })
    )
}

export const OverviewLive = HttpApiBuilder.group(Api, "overview", (handlers) =>
  Effect.gen(function*() {
    const config = yield* CryptoConfig
    const nats = yield* Nats
    const rpc = yield* Rpc
    const overview = yield* Overview
    const bundle = yield* UserBundle
    const refunds = yield* Refunds
    const resolutions = yield* Resolutions
    const ledger = yield* Ledger
    return handlers
      .handle("cryptoConfig", () => config.view)
      .handle("updateCryptoConfig", ({ payload }) =>
        Effect.gen(function*() {
          const view = yield* config.update(payload, yield* currentActor)
          // Committed: this instance switches now, the others on the signal (or their periodic reload).
          yield* rpc.reload
          yield* nats.announce("crypto-config")
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
      .handle("refund", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => refunds.record(path.id, payload, actor.id)).pipe(Effect.catchTags(refundRejected)))
      .handle("resolve", ({ path, payload }) =>
        Effect.flatMap(currentActor, (actor) => resolutions.resolve(path.id, payload.reason, actor.id, actor.requestId)).pipe(
          Effect.catchTags(paymentNotFound)
        ))
      .handle("credits", ({ urlParams }) => ledger.creditBalances(urlParams.after, urlParams.limit))
  })).pipe(Layer.provide([CryptoConfig.Default, Overview.Default, UserBundle.Default, Refunds.Default, Resolutions.Default, Ledger.Default]))
