import { Schema } from "effect"

export const Slug = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,62}$/, { message: () => "must be lower-case letters, digits, '-' or '_' (max 63)" }),
  Schema.annotations({ identifier: "Slug" })
)

/** An EVM address, normalised to lower case. */
export const Address = Schema.transform(
  Schema.String.pipe(Schema.pattern(/^0x[0-9a-fA-F]{40}$/, { message: () => "must be a 0x-prefixed 20-byte hex address" })),
  Schema.String,
  { strict: true, decode: (s) => s.toLowerCase(), encode: (s) => s }
).pipe(Schema.annotations({ identifier: "Address" }))

export const Hex32 = Schema.transform(
  Schema.String.pipe(Schema.pattern(/^0x[0-9a-fA-F]{64}$/, { message: () => "must be a 0x-prefixed 32-byte hex string" })),
  Schema.String,
  { strict: true, decode: (s) => s.toLowerCase(), encode: (s) => s }
)

export const TxHash = Hex32.pipe(Schema.annotations({ identifier: "TxHash" }))
export const OrderId = Hex32.pipe(Schema.annotations({ identifier: "OrderId" }))

/** "native" for the chain's coin, else an ERC-20 address. */
export const Token = Schema.Union(Schema.Literal("native"), Address).pipe(
  Schema.annotations({ identifier: "Token", description: "\"native\" or an ERC-20 contract address" })
)

export const NATIVE = "native"
export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

/** The on-chain token address the contract sees for a token. */
export const tokenAddress = (token: string): `0x${string}` =>
  (token === NATIVE ? ZERO_ADDRESS : token) as `0x${string}`

export const tokenFromAddress = (address: string): string =>
  address.toLowerCase() === ZERO_ADDRESS ? NATIVE : address.toLowerCase()
