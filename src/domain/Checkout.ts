import { Data, Schema } from "effect"
import { NetworkName } from "./Network.ts"
import { Address, Slug, Token } from "./Ids.ts"
import { FailureReason, PaymentStatus } from "./Payment.ts"

export const CheckoutRequest = Schema.Struct({
  plan_slug: Slug,
  wallet_address: Address,
  network: Schema.optional(NetworkName),
  /** Which of the plan's prices on that network: "native" or a token address (default: the first price). */
  token: Schema.optional(Token),
  /** Use the customer's credit in that network and token: the quote asks for the price minus it (at least 1 base unit). */
  apply_credit: Schema.optional(Schema.Boolean)
})
export type CheckoutRequest = typeof CheckoutRequest.Type

/** One transaction for the wallet to send; amounts and gas are decimal strings. */
export const WalletTransaction = Schema.Struct({
  chain_id: Schema.Number,
  to: Schema.String,
  data: Schema.String,
  value: Schema.String,
  gas: Schema.String
})
export type WalletTransaction = typeof WalletTransaction.Type

export const CheckoutPayload = Schema.Struct({
  deadline: Schema.String,
  transactions: Schema.Array(WalletTransaction)
})
export type CheckoutPayload = typeof CheckoutPayload.Type

export const CheckoutView = Schema.Struct({
  transaction_id: Schema.String,
  order_id: Schema.String,
  status: PaymentStatus,
  network: Schema.String,
  chain_id: Schema.Number,
  token: Schema.String,
  /** What to pay on chain: the price minus `credit_applied`. */
  amount: Schema.String,
  credit_applied: Schema.String,
  expires_at: Schema.String,
  quote_signature: Schema.String,
  payload: CheckoutPayload
})
export type CheckoutView = typeof CheckoutView.Type

export const HistoryItem = Schema.Struct({
  transaction_id: Schema.String,
  plan_slug: Schema.String,
  status: PaymentStatus,
  order_id: Schema.String,
  tx_hash: Schema.NullOr(Schema.String),
  network: Schema.String,
  token: Schema.String,
  amount: Schema.String,
  paid_amount: Schema.NullOr(Schema.String),
  failure_reason: Schema.NullOr(FailureReason),
  created_at: Schema.String,
  confirmed_at: Schema.NullOr(Schema.String)
})
export type HistoryItem = typeof HistoryItem.Type

export class CheckoutRejected extends Data.TaggedError("CheckoutRejected")<{
  readonly reason:
    | "network_not_offered"
    | "gateway_disabled"
    | "contract_disabled"
    | "network_unavailable"
    | "idempotency_key_reused"
    | "credit_changed"
  readonly message: string
}> {}
