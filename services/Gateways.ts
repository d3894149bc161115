import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { GatewayConfig } from "../src/domain/Network.ts"
import { type GatewayCreate, GatewayExists, GatewayNotFound, type GatewayUpdate, type GatewayView } from "../src/domain/Gateway.ts"
import { Audit } from "./Audit.ts"
import type { Actor } from "./Contracts.ts"
import { decodeRows, transactional, uniqueAs } from "./Rows.ts"

const decodeEnabled = decodeRows(Schema.Struct({ enabled: Schema.NullOr(Schema.Boolean) }))

const Row = Schema.Struct({
  slug: Schema.String,
  title: Schema.String,
  networks: Schema.Array(Schema.String),
  enabled: Schema.Boolean
})
const decode = decodeRows(Row)

export class Gateways extends Effect.Service<Gateways>()("billing/Gateways", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit

    const list = sql`SELECT slug, title, networks, enabled FROM gateways ORDER BY slug`.pipe(Effect.orDie, Effect.flatMap(decode))
    const get = (slug: string) =>
      sql`SELECT slug, title, networks, enabled FROM gateways WHERE slug = ${slug}`.pipe(
        Effect.orDie,
        Effect.flatMap(decode),
        Effect.flatMap((rows) => rows[0] ? Effect.succeed<GatewayView>(rows[0]) : Effect.fail(new GatewayNotFound({ slug })))
      )

    /** A network may take payments only while some enabled gateway lists it. */
    const networkEnabled = (network: string) =>
      sql`SELECT bool_or(enabled) AS enabled FROM gateways WHERE networks ? ${network}`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeEnabled),
        Effect.map((rows) => rows[0]?.enabled === true)
      )

    const create = Effect.fn("Gateways.create")(function*(input: GatewayCreate, actor: Actor) {
      yield* sql`INSERT INTO gateways (slug, title, networks, enabled)
        VALUES (${input.slug}, ${input.title}, ${JSON.stringify(input.networks)}::jsonb, ${input.enabled})`.pipe(
        uniqueAs(() => new GatewayExists({ slug: input.slug }))
      )
      const after = yield* get(input.slug).pipe(Effect.orDie)
      yield* audit.record({ actor: actor.id, action: "gateway.create", resource: `gateway:${input.slug}`, after, requestId: actor.requestId })
      return after
    }, transactional(sql))

    const update = Effect.fn("Gateways.update")(function*(slug: string, patch: GatewayUpdate, actor: Actor) {
      const before = yield* get(slug)
      yield* sql`UPDATE gateways SET title = ${patch.title ?? before.title},
          networks = ${JSON.stringify(patch.networks ?? before.networks)}::jsonb,
          enabled = ${patch.enabled ?? before.enabled}, updated_at = now()
        WHERE slug = ${slug}`.pipe(Effect.orDie)
      const after = yield* get(slug).pipe(Effect.orDie)
      yield* audit.record({ actor: actor.id, action: "gateway.update", resource: `gateway:${slug}`, before, after, requestId: actor.requestId })
      return after
    }, transactional(sql))

    const remove = Effect.fn("Gateways.remove")(function*(slug: string, actor: Actor) {
      const before = yield* get(slug)
      yield* sql`DELETE FROM gateways WHERE slug = ${slug}`.pipe(Effect.orDie)
      yield* audit.record({ actor: actor.id, action: "gateway.delete", resource: `gateway:${slug}`, before, requestId: actor.requestId })
    }, transactional(sql))

    /** Seeds gateways from BILLING_EVM_GATEWAYS; rows changed through the API are left as they are. */
    const seed = (gateways: GatewayConfig) =>
      Effect.forEach(gateways, (g) =>
        sql`INSERT INTO gateways (slug, title, networks, enabled)
          VALUES (${g.slug}, ${g.title}, ${JSON.stringify(g.networks)}::jsonb, ${g.enabled})
          ON CONFLICT (slug) DO NOTHING`, { discard: true }).pipe(Effect.orDie)

    return { list, get, networkEnabled, create, update, remove, seed } as const
  }),
  dependencies: [Audit.Default]
}) {}
