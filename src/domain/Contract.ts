import { Data, Schema } from "effect"
import { NetworkName } from "./Network.ts"
import { Address, Slug } from "./Ids.ts"
import { WebhookSecretValue } from "./WebhookSecret.ts"

const MethodName = Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, { message: () => "must be a Solidity function name" }))
/** Create: the first webhook secret. Update: a new secret that replaces the others at once; null retires them all. */
const Secret = WebhookSecretValue

export const MAX_ABI_ENTRIES = 512
export const MAX_ABI_BYTES = 128 * 1024

// The ABI is stored, copied into audit rows and events: bounded in entries and in serialized size.
const Abi = Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown })).pipe(
  Schema.maxItems(MAX_ABI_ENTRIES, { message: () => `an ABI has at most ${MAX_ABI_ENTRIES} entries` }),
  Schema.filter((abi) =>
    new TextEncoder().encode(JSON.stringify(abi)).byteLength <= MAX_ABI_BYTES || `an ABI is at most ${MAX_ABI_BYTES} bytes of JSON`
  ),
  Schema.annotations({ description: `contract ABI (JSON array, at most ${MAX_ABI_ENTRIES} entries and ${MAX_ABI_BYTES} bytes)` })
)

export const ContractCreate = Schema.Struct({
  slug: Slug,
  network: NetworkName,
  address: Address,
  abi: Schema.optional(Abi),
  mint_method: Schema.optionalWith(MethodName, { default: () => "mint" }),
  burn_method: Schema.optionalWith(MethodName, { default: () => "burn" }),
  webhook_secret: Schema.optional(Schema.NullOr(Secret)),
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
export type ContractCreate = typeof ContractCreate.Type

export const ContractUpdate = Schema.Struct({
  network: Schema.optional(NetworkName),
  address: Schema.optional(Address),
  abi: Schema.optional(Abi),
  mint_method: Schema.optional(MethodName),
  burn_method: Schema.optional(MethodName),
  webhook_secret: Schema.optional(Schema.NullOr(Secret)),
  enabled: Schema.optional(Schema.Boolean)
})
export type ContractUpdate = typeof ContractUpdate.Type

/** What the API shows: the webhook secret is write-only; `has_webhook_secret` is true while one is active. */
export const ContractView = Schema.Struct({
  slug: Schema.String,
  network: Schema.String,
  address: Schema.String,
  abi: Schema.Array(Schema.Unknown),
  mint_method: Schema.String,
  burn_method: Schema.String,
  events: Schema.Array(Schema.String),
  has_webhook_secret: Schema.Boolean,
  enabled: Schema.Boolean,
  created_at: Schema.String,
  updated_at: Schema.String
})
export type ContractView = typeof ContractView.Type

export class ContractNotFound extends Data.TaggedError("ContractNotFound")<{ readonly slug: string }> {}

export class ContractInUse extends Data.TaggedError("ContractInUse")<{ readonly message: string }> {}

export class ContractExists extends Data.TaggedError("ContractExists")<{ readonly message: string }> {}
