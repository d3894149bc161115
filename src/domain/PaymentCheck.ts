import type { FailureReason } from "./Payment.ts"

/** What the chain says about one Minted log. */
export interface MintObservation {
  readonly network: string
  /** The chain the log was read from (the network's chain id, which every trusted endpoint proved). */
  readonly chainId: number
  readonly contract: string
  readonly orderId: string
  readonly payer: string
  readonly token: string
  readonly amount: bigint
  readonly blockTimestamp: bigint
}

/** What the checkout promised. */
export interface Expected {
  readonly network: string
  /** Recorded on the payment at checkout: the quote was signed for this chain. */
  readonly chainId: number
  readonly contractAddress: string
  readonly walletAddress: string
  readonly token: string
  readonly amount: bigint
  readonly expiresAtSeconds: bigint
}

export type Verdict =
  | { readonly _tag: "Match"; readonly excess: bigint }
  | { readonly _tag: "Mismatch"; readonly reason: FailureReason }

/** Invariant 5: chain, contract, payer, token, deadline and amount must match; an overpayment is an excess. */
export const checkPayment = (expected: Expected, seen: MintObservation): Verdict => {
  const mismatch = (reason: FailureReason): Verdict => ({ _tag: "Mismatch", reason })
  if (seen.network !== expected.network || seen.chainId !== expected.chainId) return mismatch("wrong_network")
  if (seen.contract.toLowerCase() !== expected.contractAddress.toLowerCase()) return mismatch("wrong_contract")
  if (seen.payer.toLowerCase() !== expected.walletAddress.toLowerCase()) return mismatch("wrong_payer")
  if (seen.token.toLowerCase() !== expected.token.toLowerCase()) return mismatch("wrong_token")
  if (seen.blockTimestamp > expected.expiresAtSeconds) return mismatch("expired")
  if (seen.amount < expected.amount) return mismatch("underpaid")
  return { _tag: "Match", excess: seen.amount - expected.amount }
}
