import { Data, Schema } from "effect"
import { TxHash } from "./Ids.ts"
import { PaymentStatus } from "./Payment.ts"

/** Why finance_ops acts on a payment: required, bounded, kept in the audit trail and the notices. */
export const Reason = Schema.Trim.pipe(Schema.minLength(3), Schema.maxLength(500))

export const PaymentPath = Schema.Struct({ id: Schema.UUID })

/** `POST /overview/payments/{id}/refund`: the on-chain transaction that paid the money back. */
export const RefundRequest = Schema.Struct({ tx_hash: TxHash, reason: Reason })
export type RefundRequest = typeof RefundRequest.Type

export const RefundView = Schema.Struct({
  transaction_id: Schema.String,
  status: PaymentStatus,
  refund_tx_hash: Schema.String,
  amount: Schema.String.pipe(Schema.annotations({ description: "base units paid back, a decimal string" })),
  network: Schema.String,
  token: Schema.String
})
export type RefundView = typeof RefundView.Type

/** `POST /overview/payments/{id}/resolve`: re-check one payment against the chain and apply what it says. */
export const ResolveRequest = Schema.Struct({ reason: Reason })
export type ResolveRequest = typeof ResolveRequest.Type

export const ResolveView = Schema.Struct({
  transaction_id: Schema.String,
  before: PaymentStatus,
  after: PaymentStatus,
  checked: Schema.String.pipe(Schema.annotations({ description: "what the chain check did: done, or why it must wait" }))
})
export type ResolveView = typeof ResolveView.Type

/** A customer's credit in one asset: what billing holds for them (money that paid for nothing, or unused time). */
export const CreditBalance = Schema.Struct({
  user_id: Schema.String,
  network: Schema.String,
  token: Schema.String,
  amount: Schema.String.pipe(Schema.annotations({ description: "base units held for the customer; negative when spent credit was taken back" }))
})
export const CreditsPage = Schema.Struct({
  items: Schema.Array(CreditBalance),
  totals: Schema.Array(Schema.Struct({ network: Schema.String, token: Schema.String, amount: Schema.String }))
})
export type CreditsPage = typeof CreditsPage.Type

export const CreditsParams = Schema.Struct({
  after: Schema.optional(Schema.String.pipe(Schema.maxLength(256))),
  limit: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 500)), { default: () => 100 })
})

/** Why a refund was not recorded; nothing was written. */
export class RefundRejected extends Data.TaggedError("RefundRejected")<{
  readonly reason: "payment_not_refundable" | "refund_tx_used" | "refund_unverified"
  readonly message: string
}> {}
