/**
 * The EIP-712 quote the billing signer issues at checkout and SubscriptionPass.mint verifies.
 * Field names and order must match QUOTE_TYPEHASH in SubscriptionPass.sol.
 */
import type { Address, Hex, LocalAccount, TypedDataDefinition } from "viem"
import { hashTypedData, recoverTypedDataAddress } from "viem"

export const QuoteDomainName = "SubscriptionPass"
export const QuoteDomainVersion = "1"

export const QuoteTypes = {
  Quote: [
    { name: "orderId", type: "bytes32" },
    { name: "payer", type: "address" },
    { name: "token", type: "address" },
    { name: "amount", type: "uint256" },
    { name: "deadline", type: "uint256" }
  ]
} as const

/** Everything a quote binds: the domain (chain, contract) and the message. `token` 0x0 = native coin. */
export interface QuoteInput {
  readonly chainId: number
  readonly contract: Address
  readonly orderId: Hex
  readonly payer: Address
  readonly token: Address
  readonly amount: bigint
  readonly deadline: bigint
}

export type QuoteTypedData = TypedDataDefinition<typeof QuoteTypes, "Quote">

export const quoteDomain = (chainId: number, contract: Address) =>
  ({ name: QuoteDomainName, version: QuoteDomainVersion, chainId, verifyingContract: contract }) as const

export const quoteTypedData = (q: QuoteInput): QuoteTypedData => ({
  domain: quoteDomain(q.chainId, q.contract),
  types: QuoteTypes,
  primaryType: "Quote",
  message: { orderId: q.orderId, payer: q.payer, token: q.token, amount: q.amount, deadline: q.deadline }
})

/** The digest the contract passes to ecrecover. */
export const hashQuote = (q: QuoteInput): Hex => hashTypedData(quoteTypedData(q))

/** 65-byte r‖s‖v signature (v = 27/28, low s), the form SubscriptionPass accepts. */
export const signQuote = (account: LocalAccount, q: QuoteInput): Promise<Hex> =>
  account.signTypedData(quoteTypedData(q))

export const recoverQuoteSigner = (q: QuoteInput, signature: Hex): Promise<Address> =>
  recoverTypedDataAddress({ ...quoteTypedData(q), signature })
