import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { Interval, type PlanCreate, PlanExists, PlanInvalid, PlanNotFound, type PlanUpdate, type PlanView, Price } from "../src/domain/Plan.ts"
import { Audit } from "./Audit.ts"
import type { Actor } from "./Contracts.ts"
import { countOf, decodeIds, decodeRows, transactional, uniqueAs } from "./Rows.ts"

const Row = Schema.Struct({
  id: Schema.NumberFromString,
  slug: Schema.String,
  title: Schema.String,
  interval: Interval,
  contract_slug: Schema.String,
  monthly_limits: Schema.Record({ key: Schema.String, value: Schema.Number }),
  features: Schema.Array(Schema.String),
  is_active: Schema.Boolean,
  prices: Schema.Array(Price)
})
export type Plan = typeof Row.Type
const decode = decodeRows(Row)

export const toPlanView = ({ id: _id, ...plan }: Plan): PlanView => plan

export class Plans extends Effect.Service<Plans>()("billing/Plans", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit

    const select = (where: ReturnType<typeof sql.and>) =>
      sql`SELECT p.id::text AS id, p.slug, p.title, p.interval, p.contract_slug, p.monthly_limits, p.features, p.is_active,
          coalesce(json_agg(json_build_object('network', pp.network, 'token', pp.token, 'amount', pp.amount::text)
            ORDER BY pp.network, pp.token = 'native' DESC, pp.token) FILTER (WHERE pp.plan_id IS NOT NULL), '[]') AS prices
        FROM plans p LEFT JOIN plan_prices pp ON pp.plan_id = p.id
        WHERE ${where} GROUP BY p.id ORDER BY p.slug`.pipe(Effect.orDie, Effect.flatMap(decode))

    const listActive = select(sql.and([sql`p.deleted_at IS NULL`, sql`p.is_active`]))
    const list = select(sql.and([sql`p.deleted_at IS NULL`]))
    const find = (slug: string) =>
      Effect.map(select(sql.and([sql`p.deleted_at IS NULL`, sql`p.slug = ${slug}`])), (rows) => Option.fromNullable(rows[0]))
    const get = (slug: string) =>
      Effect.flatMap(find(slug), Option.match({ onNone: () => Effect.fail(new PlanNotFound({ slug })), onSome: Effect.succeed }))
    const byId = (id: number) =>
      Effect.flatMap(select(sql.and([sql`p.id = ${id}`])), (rows) => rows[0] ? Effect.succeed(rows[0]) : Effect.dieMessage(`plan ${id} missing`))

    const checkContract = (slug: string) =>
      Effect.flatMap(sql`SELECT 1 FROM contracts WHERE slug = ${slug}`.pipe(Effect.orDie), (rows) =>
        rows.length === 0 ? Effect.fail(new PlanInvalid({ message: `contract_slug ${slug} is not a registered contract` })) : Effect.void)

    const writePrices = (planId: number, prices: ReadonlyArray<Price>) =>
      Effect.zipRight(
        sql`DELETE FROM plan_prices WHERE plan_id = ${planId}`,
        sql`INSERT INTO plan_prices ${sql.insert(prices.map((p) => ({ plan_id: planId, network: p.network, token: p.token, amount: p.amount.toString() })))}`
      ).pipe(Effect.orDie)

    const create = Effect.fn("Plans.create")(function*(input: PlanCreate, actor: Actor) {
      yield* checkContract(input.contract_slug)
      const [row] = yield* sql`INSERT INTO plans (slug, title, interval, contract_slug, monthly_limits, features, is_active)
        VALUES (${input.slug}, ${input.title}, ${input.interval}, ${input.contract_slug},
          ${JSON.stringify(input.monthly_limits)}::jsonb, ${JSON.stringify(input.features)}::jsonb, ${input.is_active})
        RETURNING id::text AS id`.pipe(uniqueAs(() => new PlanExists({ slug: input.slug })), Effect.flatMap(decodeIds))
      yield* writePrices(Number(row!.id), input.prices)
      const plan = toPlanView(yield* get(input.slug).pipe(Effect.orDie))
      yield* audit.record({ actor: actor.id, action: "plan.create", resource: `plan:${input.slug}`, after: plan, requestId: actor.requestId })
      return plan
    }, transactional(sql))

    const update = Effect.fn("Plans.update")(function*(slug: string, patch: PlanUpdate, actor: Actor) {
      const before = yield* get(slug)
      if (patch.contract_slug !== undefined) yield* checkContract(patch.contract_slug)
      yield* sql`UPDATE plans SET
          title = ${patch.title ?? before.title},
          interval = ${patch.interval ?? before.interval},
          contract_slug = ${patch.contract_slug ?? before.contract_slug},
          monthly_limits = ${JSON.stringify(patch.monthly_limits ?? before.monthly_limits)}::jsonb,
          features = ${JSON.stringify(patch.features ?? before.features)}::jsonb,
          is_active = ${patch.is_active ?? before.is_active},
          updated_at = now()
        WHERE id = ${before.id}`.pipe(Effect.orDie)
      if (patch.prices !== undefined) yield* writePrices(before.id, patch.prices)
      const after = toPlanView(yield* get(slug).pipe(Effect.orDie))
      yield* audit.record({ actor: actor.id, action: "plan.update", resource: `plan:${slug}`, before: toPlanView(before), after, requestId: actor.requestId })
      return after
    }, transactional(sql))

    /** Hard delete when nothing refers to the plan; otherwise a soft delete keeps history intact. */
    const remove = Effect.fn("Plans.remove")(function*(slug: string, actor: Actor) {
      const plan = yield* get(slug)
      const refs = yield* sql`SELECT
          (SELECT count(*) FROM payment_transactions WHERE plan_id = ${plan.id})::int
        + (SELECT count(*) FROM subscriptions WHERE plan_id = ${plan.id})::int AS n`.pipe(Effect.orDie, Effect.flatMap(countOf))
      const soft = refs > 0
      if (soft) yield* sql`UPDATE plans SET deleted_at = now(), is_active = false, updated_at = now() WHERE id = ${plan.id}`.pipe(Effect.orDie)
      else yield* sql`DELETE FROM plans WHERE id = ${plan.id}`.pipe(Effect.orDie)
      yield* audit.record({ actor: actor.id, action: soft ? "plan.soft_delete" : "plan.delete", resource: `plan:${slug}`, before: toPlanView(plan), requestId: actor.requestId })
      return { deleted: true, soft } as const
    }, transactional(sql))

    return { listActive, list, find, get, byId, create, update, remove } as const
  }),
  dependencies: [Audit.Default]
}) {}
