import { SqlClient } from "@effect/sql"
import { Data, Effect, Option, Redacted, Schema } from "effect"
import { SubscriptionPassAbi } from "../src/contracts/abi.ts"
import type { ContractCreate, ContractUpdate, ContractView } from "../src/domain/Contract.ts"
import { Audit } from "./Audit.ts"
import { decodeRows, IsoDate, transactional, uniqueAs } from "./Rows.ts"

export class ContractNotFound extends Data.TaggedError("ContractNotFound")<{ readonly slug: string }> {}
export class ContractInUse extends Data.TaggedError("ContractInUse")<{ readonly message: string }> {}
export class ContractExists extends Data.TaggedError("ContractExists")<{ readonly message: string }> {}

export interface Actor {
  readonly id: string
  readonly requestId?: string | undefined
}

const Row = Schema.Struct({
  slug: Schema.String,
  network: Schema.String,
  address: Schema.String,
  abi: Schema.Array(Schema.Unknown),
  mint_method: Schema.String,
  burn_method: Schema.String,
  events: Schema.Array(Schema.String),
  webhook_secret: Schema.NullOr(Schema.String),
  enabled: Schema.Boolean,
  created_at: IsoDate,
  updated_at: IsoDate
})
type Row = typeof Row.Type
const decode = decodeRows(Row)

export interface Contract {
  readonly slug: string
  readonly network: string
  readonly address: `0x${string}`
  readonly abi: ReadonlyArray<unknown>
  readonly mintMethod: string
  readonly burnMethod: string
  readonly enabled: boolean
  readonly webhookSecret: Option.Option<Redacted.Redacted>
}

const toContract = (r: Row): Contract => ({
  slug: r.slug,
  network: r.network,
  address: r.address as `0x${string}`,
  abi: r.abi,
  mintMethod: r.mint_method,
  burnMethod: r.burn_method,
  enabled: r.enabled,
  webhookSecret: Option.map(Option.fromNullable(r.webhook_secret), Redacted.make)
})

export const toView = ({ webhook_secret, ...rest }: Row): ContractView => ({
  ...rest,
  has_webhook_secret: webhook_secret !== null
})

export class Contracts extends Effect.Service<Contracts>()("billing/Contracts", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit

    const findRow = (slug: string) =>
      sql`SELECT * FROM contracts WHERE slug = ${slug}`.pipe(Effect.orDie, Effect.flatMap(decode), Effect.map((r) => Option.fromNullable(r[0])))
    const getRow = (slug: string) =>
      Effect.flatMap(findRow(slug), Option.match({
        onNone: () => Effect.fail(new ContractNotFound({ slug })),
        onSome: Effect.succeed
      }))

    const list = sql`SELECT * FROM contracts ORDER BY slug`.pipe(Effect.orDie, Effect.flatMap(decode), Effect.map((rows) => rows.map(toView)))

    const get = (slug: string) => Effect.map(getRow(slug), toContract)
    const view = (slug: string) => Effect.map(getRow(slug), toView)

    const create = Effect.fn("Contracts.create")(function*(input: ContractCreate, actor: Actor) {
      const rows = yield* sql`INSERT INTO contracts (slug, network, address, abi, mint_method, burn_method, webhook_secret, enabled)
        VALUES (${input.slug}, ${input.network}, ${input.address}, ${JSON.stringify(input.abi ?? SubscriptionPassAbi)}::jsonb,
          ${input.mint_method}, ${input.burn_method}, ${input.webhook_secret ?? null}, ${input.enabled})
        RETURNING *`.pipe(
        uniqueAs(() => new ContractExists({ message: `contract ${input.slug} or address ${input.address} on ${input.network} already exists` })),
        Effect.flatMap(decode)
      )
      const created = toView(rows[0]!)
      yield* audit.record({ actor: actor.id, action: "contract.create", resource: `contract:${input.slug}`, after: created, requestId: actor.requestId })
      return created
    }, transactional(sql))

    const update = Effect.fn("Contracts.update")(function*(slug: string, patch: ContractUpdate, actor: Actor) {
      const before = yield* sql`SELECT * FROM contracts WHERE slug = ${slug} FOR UPDATE`.pipe(Effect.orDie, Effect.flatMap(decode))
      if (before[0] === undefined) return yield* new ContractNotFound({ slug })
      const b = before[0]
      const rows = yield* sql`UPDATE contracts SET
          network = ${patch.network ?? b.network},
          address = ${patch.address ?? b.address},
          abi = ${JSON.stringify(patch.abi ?? b.abi)}::jsonb,
          mint_method = ${patch.mint_method ?? b.mint_method},
          burn_method = ${patch.burn_method ?? b.burn_method},
          webhook_secret = ${patch.webhook_secret === undefined ? b.webhook_secret : patch.webhook_secret},
          enabled = ${patch.enabled ?? b.enabled},
          updated_at = now()
        WHERE slug = ${slug} RETURNING *`.pipe(
        uniqueAs(() => new ContractExists({ message: "another contract has that address on that network" })),
        Effect.flatMap(decode)
      )
      const after = toView(rows[0]!)
      yield* audit.record({ actor: actor.id, action: "contract.update", resource: `contract:${slug}`, before: toView(b), after, requestId: actor.requestId })
      return after
    }, transactional(sql))

    /** A contract that live plans or open checkouts use cannot go: disable it instead. */
    const remove = Effect.fn("Contracts.remove")(function*(slug: string, actor: Actor) {
      const [uses] = yield* sql<{ n: number }>`SELECT
          (SELECT count(*) FROM plans WHERE contract_slug = ${slug} AND deleted_at IS NULL)::int
        + (SELECT count(*) FROM payment_transactions WHERE contract_slug = ${slug} AND status IN ('pending', 'seen'))::int AS n`.pipe(Effect.orDie)
      if ((uses?.n ?? 0) > 0) {
        return yield* new ContractInUse({ message: `contract ${slug} is used by plans or open checkouts; disable it instead` })
      }
      const rows = yield* sql`DELETE FROM contracts WHERE slug = ${slug} RETURNING *`.pipe(Effect.orDie, Effect.flatMap(decode))
      if (rows[0] === undefined) return yield* new ContractNotFound({ slug })
      yield* audit.record({ actor: actor.id, action: "contract.delete", resource: `contract:${slug}`, before: toView(rows[0]), requestId: actor.requestId })
    }, transactional(sql))

    const listAll = sql`SELECT * FROM contracts ORDER BY slug`.pipe(Effect.orDie, Effect.flatMap(decode), Effect.map((rows) => rows.map(toContract)))
    const listEnabled = Effect.map(listAll, (all) => all.filter((c) => c.enabled))
    const findByAddress = (network: string, address: string) =>
      sql`SELECT * FROM contracts WHERE network = ${network} AND address = ${address.toLowerCase()}`.pipe(
        Effect.orDie,
        Effect.flatMap(decode),
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toContract))
      )

    return { list, listAll, listEnabled, get, findByAddress, view, create, update, remove } as const
  }),
  dependencies: [Audit.Default]
}) {}
