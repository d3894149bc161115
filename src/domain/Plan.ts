import { Data, Schema } from "effect"
import { NetworkName } from "./Network.ts"
import { Slug, Token } from "./Ids.ts"
import { PositiveAmount } from "./Money.ts"

export const Interval = Schema.Literal("month", "year")
export type Interval = typeof Interval.Type

export const Price = Schema.Struct({ network: NetworkName, token: Token, amount: PositiveAmount })
export type Price = typeof Price.Type

const Prices = Schema.Array(Price).pipe(
  Schema.minItems(1, { message: () => "a plan needs at least one price" }),
  Schema.maxItems(64, { message: () => "a plan has at most 64 prices" }),
  Schema.filter((prices) =>
    new Set(prices.map((p) => `${p.network}:${p.token}`)).size === prices.length || "one price per network and token"
  )
)
const Limits = Schema.Record({ key: Schema.String, value: Schema.Number })
const Features = Schema.Array(Schema.String)
// What a request may set: copied into every plan.changed event, so bounded in count and length.
const LimitsInput = Schema.Record({
  key: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  value: Schema.Number.pipe(Schema.finite())
}).pipe(Schema.filter((limits) => Object.keys(limits).length <= 64 || "at most 64 monthly limits"))
const FeaturesInput = Schema.Array(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100))).pipe(
  Schema.maxItems(64, { message: () => "at most 64 features" })
)
const Title = Schema.Trim.pipe(Schema.minLength(1), Schema.maxLength(200))

export const PlanCreate = Schema.Struct({
  slug: Slug,
  title: Title,
  interval: Interval,
  prices: Prices,
  contract_slug: Slug,
  monthly_limits: Schema.optionalWith(LimitsInput, { default: () => ({}) }),
  features: Schema.optionalWith(FeaturesInput, { default: () => [] }),
  is_active: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
export type PlanCreate = typeof PlanCreate.Type

export const PlanUpdate = Schema.Struct({
  title: Schema.optional(Title),
  interval: Schema.optional(Interval),
  prices: Schema.optional(Prices),
  contract_slug: Schema.optional(Slug),
  monthly_limits: Schema.optional(LimitsInput),
  features: Schema.optional(FeaturesInput),
  is_active: Schema.optional(Schema.Boolean)
})
export type PlanUpdate = typeof PlanUpdate.Type

export const PlanView = Schema.Struct({
  slug: Schema.String,
  title: Schema.String,
  interval: Interval,
  prices: Schema.Array(Price),
  contract_slug: Schema.String,
  monthly_limits: Limits,
  features: Features,
  is_active: Schema.Boolean
})
export type PlanView = typeof PlanView.Type

export class PlanNotFound extends Data.TaggedError("PlanNotFound")<{ readonly slug: string }> {}

export class PlanExists extends Data.TaggedError("PlanExists")<{ readonly slug: string }> {}

export class PlanInvalid extends Data.TaggedError("PlanInvalid")<{ readonly message: string }> {}
