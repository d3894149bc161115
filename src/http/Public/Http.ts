import { HttpApiBuilder } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import * as Metrics from "../../../services/Metrics.ts"
import { Nats } from "../../../services/Nats.ts"
import { Plans, toPlanView } from "../../../services/Plans.ts"
import { Rpc } from "../../../services/Rpc.ts"
import { Unavailable } from "../../domain/Errors.ts"
import { Api } from "../Api.ts"

const check = <E>(effect: Effect.Effect<unknown, E>) =>
  effect.pipe(
    Effect.timeout("3 seconds"),
    Effect.as({ ok: true }),
    Effect.catchAllCause(() => Effect.succeed({ ok: false, detail: "unreachable" }))
  )

export const PublicLive = HttpApiBuilder.group(Api, "public", (handlers) =>
  Effect.gen(function*() {
    const plans = yield* Plans
    const sql = yield* SqlClient.SqlClient
    const nats = yield* Nats
    const rpc = yield* Rpc
    return handlers
      .handle("plans", () => Effect.map(plans.listActive, (items) => ({ items: items.map(toPlanView) })))
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
      .handle("metrics", () => Metrics.render)
      .handle("readyz", () =>
        Effect.gen(function*() {
          const networks = yield* rpc.networks
          const checks = yield* Effect.all({
            postgres: check(sql`SELECT 1`),
            nats: check(nats.ping),
            ...Object.fromEntries(networks.map((n) => [`rpc:${n.network}`, check(rpc.blockNumber(n.network))]))
          }, { concurrency: "unbounded" })
          const ok = checks["postgres"]!.ok && checks["nats"]!.ok
          if (!ok) return yield* Effect.fail(new Unavailable({ error: "not_ready", message: JSON.stringify(checks) }))
          const degraded = Object.values(checks).some((c) => !c.ok)
          return { status: degraded ? "degraded" as const : "ok" as const, checks }
        }))
  })).pipe(Layer.provide(Plans.Default))
