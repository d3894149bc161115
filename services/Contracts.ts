import { SqlClient, type Statement } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { SubscriptionPassAbi } from "../src/contracts/abi.ts"
import { type ContractCreate, ContractExists, ContractInUse, ContractNotFound, type ContractUpdate, type ContractView } from "../src/domain/Contract.ts"
import { Audit } from "./Audit.ts"
import { countOf, decodeRows, IsoDate, transactional, uniqueAs } from "./Rows.ts"
import { insertSealed, retireOthers, type SealedSecret } from "./WebhookSecrets.ts"

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
  has_webhook_secret: Schema.Boolean,
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
}

const toContract = (r: Row): Contract => ({
  slug: r.slug,
  network: r.network,
  address: r.address as `0x${string}`,
  abi: r.abi,
  mintMethod: r.mint_method,
  burnMethod: r.burn_method,
  enabled: r.enabled
})

export const toView = (r: Row): ContractView => r

/** Secrets are write-only: a contract row shows only whether one is active now. */
const HAS_SECRET = `EXISTS (SELECT 1 FROM contract_webhook_secrets s WHERE s.contract_slug = c.slug
  AND s.retired_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())) AS has_webhook_secret`

export class Contracts extends Effect.Service<Contracts>()("billing/Contracts", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const audit = yield* Audit

    const rowsWhere = (where: Statement.Fragment) =>
      sql`SELECT c.*, ${sql.literal(HAS_SECRET)} FROM contracts c WHERE ${where} ORDER BY c.slug`.pipe(Effect.orDie, Effect.flatMap(decode))
    const findRow = (slug: string) => Effect.map(rowsWhere(sql`c.slug = ${slug}`), (r) => Option.fromNullable(r[0]))
    const getRow = (slug: string) =>
      Effect.flatMap(findRow(slug), Option.match({
        onNone: () => Effect.fail(new ContractNotFound({ slug })),
        onSome: Effect.succeed
      }))

    const list = Effect.map(rowsWhere(sql`true`), (rows) => rows.map(toView))

    const get = (slug: string) => Effect.map(getRow(slug), toContract)
    const view = (slug: string) => Effect.map(getRow(slug), toView)

    /** `secret` is sealed by the caller (WebhookSecrets.seal) and becomes the contract's first webhook secret. */
    const create = Effect.fn("Contracts.create")(function*(input: Omit<ContractCreate, "webhook_secret">, actor: Actor, secret?: SealedSecret) {
      yield* sql`INSERT INTO contracts (slug, network, address, abi, mint_method, burn_method, enabled)
        VALUES (${input.slug}, ${input.network}, ${input.address}, ${JSON.stringify(input.abi ?? SubscriptionPassAbi)}::jsonb,
          ${input.mint_method}, ${input.burn_method}, ${input.enabled})`.pipe(
        uniqueAs(() => new ContractExists({ message: `contract ${input.slug} or address ${input.address} on ${input.network} already exists` }))
      )
      if (secret !== undefined) yield* insertSealed(sql, input.slug, secret)
      const created = toView(yield* Effect.orDie(getRow(input.slug)))
      yield* audit.record({ actor: actor.id, action: "contract.create", resource: `contract:${input.slug}`, after: created, requestId: actor.requestId })
      return created
    }, transactional(sql))

    /** A sealed `secret` replaces every other secret at once (no overlap: use the webhook-secrets routes for that); null retires them all. */
    const update = Effect.fn("Contracts.update")(function*(
      slug: string,
      patch: Omit<ContractUpdate, "webhook_secret">,
      actor: Actor,
      secret?: SealedSecret | null
    ) {
      const before = yield* sql`SELECT c.*, ${sql.literal(HAS_SECRET)} FROM contracts c WHERE c.slug = ${slug} FOR UPDATE OF c`.pipe(
        Effect.orDie,
        Effect.flatMap(decode)
      )
      if (before[0] === undefined) return yield* new ContractNotFound({ slug })
      const b = before[0]
      yield* sql`UPDATE contracts SET
          network = ${patch.network ?? b.network},
          address = ${patch.address ?? b.address},
          abi = ${JSON.stringify(patch.abi ?? b.abi)}::jsonb,
          mint_method = ${patch.mint_method ?? b.mint_method},
          burn_method = ${patch.burn_method ?? b.burn_method},
          enabled = ${patch.enabled ?? b.enabled},
          updated_at = now()
        WHERE slug = ${slug}`.pipe(uniqueAs(() => new ContractExists({ message: "another contract has that address on that network" })))
      if (secret !== undefined) {
        if (secret !== null) yield* insertSealed(sql, slug, secret)
        yield* retireOthers(sql, slug, secret === null ? null : secret.id)
      }
      const after = toView(yield* getRow(slug))
      yield* audit.record({ actor: actor.id, action: "contract.update", resource: `contract:${slug}`, before: toView(b), after, requestId: actor.requestId })
      return after
    }, transactional(sql))

    /** A contract that live plans or open checkouts use cannot go: disable it instead. */
    const remove = Effect.fn("Contracts.remove")(function*(slug: string, actor: Actor) {
      const uses = yield* sql`SELECT
          (SELECT count(*) FROM plans WHERE contract_slug = ${slug} AND deleted_at IS NULL)::int
        + (SELECT count(*) FROM payment_transactions WHERE contract_slug = ${slug} AND status IN ('pending', 'seen'))::int AS n`.pipe(Effect.orDie, Effect.flatMap(countOf))
      if (uses > 0) {
        return yield* new ContractInUse({ message: `contract ${slug} is used by plans or open checkouts; disable it instead` })
      }
      const before = yield* getRow(slug)
      yield* sql`DELETE FROM contracts WHERE slug = ${slug}`.pipe(Effect.orDie)
      yield* audit.record({ actor: actor.id, action: "contract.delete", resource: `contract:${slug}`, before: toView(before), requestId: actor.requestId })
    }, transactional(sql))

    const listAll = Effect.map(rowsWhere(sql`true`), (rows) => rows.map(toContract))
    const listEnabled = Effect.map(listAll, (all) => all.filter((c) => c.enabled))
    const findByAddress = (network: string, address: string) =>
      rowsWhere(sql`c.network = ${network} AND c.address = ${address.toLowerCase()}`).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toContract))
      )

    return { list, listAll, listEnabled, get, findByAddress, view, create, update, remove } as const
  }),
  dependencies: [Audit.Default]
}) {}
