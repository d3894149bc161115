import { Data, Schema } from "effect"
import { NetworkName } from "./Network.ts"
import { Slug } from "./Ids.ts"

export const GatewayCreate = Schema.Struct({
  slug: Slug,
  title: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(200)), { default: () => "" }),
  networks: Schema.Array(NetworkName).pipe(Schema.maxItems(64)),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
export type GatewayCreate = typeof GatewayCreate.Type

export const GatewayUpdate = Schema.Struct({
  title: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  networks: Schema.optional(Schema.Array(NetworkName).pipe(Schema.maxItems(64))),
  enabled: Schema.optional(Schema.Boolean)
})
export type GatewayUpdate = typeof GatewayUpdate.Type

export const GatewayView = Schema.Struct({
  slug: Schema.String,
  title: Schema.String,
  networks: Schema.Array(Schema.String),
  enabled: Schema.Boolean
})
export type GatewayView = typeof GatewayView.Type

export class GatewayNotFound extends Data.TaggedError("GatewayNotFound")<{ readonly slug: string }> {}

export class GatewayExists extends Data.TaggedError("GatewayExists")<{ readonly slug: string }> {}
