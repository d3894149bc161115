import { Schema } from "effect"
import { NetworkName } from "./Network.ts"
import { HistoryItem } from "./Checkout.ts"
import { Slug, Token } from "./Ids.ts"
import { PaymentStatus } from "./Payment.ts"

/**
 * What finance_ops reads under /v1/billing/overview. Every amount is a decimal string of base units; counts and
 * seconds are numbers. Figures are computed in PostgreSQL numeric or in bigint, never in a JS number.
 */

const Amount = Schema.String.pipe(Schema.annotations({ description: "base units as a decimal string" }))
const Count = Schema.Int.pipe(Schema.nonNegative())
const PerAsset = { network: Schema.String, token: Schema.String }

/** Zero-filled counts of payment transactions per status. */
export const StatusCounts = Schema.Record({ key: PaymentStatus, value: Count })
export type StatusCounts = typeof StatusCounts.Type

export const Mrr = Schema.Struct({
  ...PerAsset,
  subscriptions: Count,
  arr: Amount.annotations({ description: "exact: 12 x the monthly prices + the yearly prices" }),
  mrr: Amount.annotations({ description: "arr / 12 rounded down to a whole base unit" }),
  mrr_remainder_twelfths: Amount.annotations({ description: "0-11: arr = 12 x mrr + mrr_remainder_twelfths, exactly" })
}).annotations({
  description: "Active subscriptions priced at their plan's current price in the network/token of their last payment " +
    "(the last payment's amount when that price no longer exists)."
})

export const Arpu = Schema.Struct({
  ...PerAsset,
  revenue: Amount.annotations({ description: "net revenue postings in the window (reversals and refunds subtract)" }),
  paying_users: Count.annotations({ description: "distinct users whose payment posted revenue in the window" }),
  arpu: Schema.NullOr(Amount).annotations({
    description: "revenue / paying_users rounded half away from zero to a whole base unit; null with no paying user"
  })
})

export const Churn = Schema.Struct({
  active_at_start: Count.annotations({ description: "users with an active or past_due subscription at the window start" }),
  churned: Count.annotations({
    description: "of those, users whose subscription ended (canceled or expired) in the window and who have none current now"
  }),
  rate: Schema.NullOr(Schema.String).annotations({ description: "churned / active_at_start, 4 decimals, rounded half up" })
})

export const RevenueDay = Schema.Struct({ day: Schema.String, ...PerAsset, amount: Amount })

export const ConfirmationTime = Schema.Struct({
  payments: Count.annotations({ description: "payments confirmed in the window (whatever their status now)" }),
  average_seconds: Schema.NullOr(Schema.Number).annotations({ description: "mean of confirmed_at - created_at, ms precision" }),
  p95_seconds: Schema.NullOr(Schema.Number).annotations({ description: "nearest-rank 95th percentile (an observed value)" })
})

export const Volume = Schema.Struct({
  ...PerAsset,
  payments: Count,
  amount: Amount.annotations({ description: "sum of the amounts received (paid_amount) of confirmed payments, all time" })
})

export const Dashboard = Schema.Struct({
  as_of: Schema.String,
  window: Schema.Struct({ from: Schema.String, to: Schema.String }).annotations({
    description: "the 30 days before as_of, [from, to): ARPU, churn, revenue per day and confirmation times use it"
  }),
  mrr: Schema.Array(Mrr),
  mrr_unpriced_subscriptions: Count.annotations({ description: "active subscriptions without a payment to price them" }),
  arpu: Schema.Array(Arpu),
  subscriptions: Schema.Struct({ active: Count, past_due: Count, canceled: Count, expired: Count }),
  churn: Churn,
  revenue_per_day: Schema.Array(RevenueDay).annotations({
    description: "net revenue postings per UTC day and network/token; days without postings are omitted"
  }),
  confirmation_time: ConfirmationTime,
  payments: StatusCounts,
  volume: Schema.Array(Volume)
})
export type Dashboard = typeof Dashboard.Type

export const EndpointHealth = Schema.Struct({ index: Count, healthy: Schema.Boolean, benched: Schema.Boolean })

export const NetworkOverview = Schema.Struct({
  network: Schema.String,
  chain_id: Schema.Number,
  confirmations: Count,
  rpc_endpoints: Count,
  rpc_health: Schema.Array(EndpointHealth).annotations({
    description: "per endpoint by priority index (URLs are never shown here); empty when this instance has not loaded the network"
  }),
  payments: StatusCounts,
  volume: Schema.Array(Schema.Struct({ token: Schema.String, payments: Count, amount: Amount }))
})
export type NetworkOverview = typeof NetworkOverview.Type
export const Networks = Schema.Struct({ networks: Schema.Array(NetworkOverview) })

/** JavaScript rolls 2025-02-30 over to March 2nd: the day must exist in its month. */
const realDay = (s: string) => {
  const [y = 0, m = 0, d = 0] = s.slice(0, 10).split("-").map(Number)
  return new Date(Date.UTC(y, m - 1, d)).getUTCMonth() === m - 1
}

/** An ISO 8601 date or date-time with an explicit zone (a zone-less time would be read in the server's zone). */
const IsoDate = Schema.compose(
  Schema.String.pipe(Schema.pattern(
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/,
    { message: () => "must be an ISO 8601 date or date-time with a zone (2025-03-01 or 2025-03-01T00:00:00Z)" }
  ), Schema.filter((s) => realDay(s) || "is not a calendar date")),
  Schema.Date
)

export const PayoutsParams = Schema.Struct({
  status: Schema.optional(PaymentStatus),
  network: Schema.optional(NetworkName),
  token: Schema.optional(Token),
  contract: Schema.optional(Slug),
  from: Schema.optional(IsoDate).annotations({ description: "created at or after (inclusive)" }),
  to: Schema.optional(IsoDate).annotations({ description: "created before (exclusive)" }),
  cursor: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 100)))
}).pipe(Schema.filter((p) =>
  p.from === undefined || p.to === undefined || p.from.getTime() < p.to.getTime() || {
    path: ["from"],
    message: "must be before to"
  }
))
export type PayoutsParams = typeof PayoutsParams.Type

export const PayoutItem = Schema.Struct({ ...HistoryItem.fields, user_id: Schema.String, contract_slug: Schema.String })
export type PayoutItem = typeof PayoutItem.Type
export const PayoutsPage = Schema.Struct({ items: Schema.Array(PayoutItem), next_cursor: Schema.NullOr(Schema.String) })
export type PayoutsPage = typeof PayoutsPage.Type

export const UserPath = Schema.Struct({ user_id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)) })
