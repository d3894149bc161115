import { Schema } from "effect"

/**
 * An amount in base units: a decimal string on the wire, a bigint in memory, numeric(78,0) in SQL.
 * A JS number never holds money.
 */
export const Amount = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^(0|[1-9][0-9]{0,77})$/, { message: () => "must be a decimal string of base units" })),
  Schema.BigInt
).pipe(Schema.annotations({ identifier: "Amount", description: "base units as a decimal string" }))

export const PositiveAmount = Amount.pipe(Schema.positiveBigInt({ message: () => "must be greater than zero" }))

/** numeric columns arrive from pg as strings (possibly signed). */
export const SqlAmount = Schema.compose(
  Schema.Union(Schema.String, Schema.Number.pipe(Schema.int())),
  Schema.String.pipe(Schema.pattern(/^-?[0-9]+$/))
).pipe(Schema.compose(Schema.BigInt))
