import { Schema } from "effect"

export const PaymentStatus = Schema.Literal("pending", "seen", "confirmed", "failed", "expired", "reversed", "refunded")
export type PaymentStatus = typeof PaymentStatus.Type

export const FailureReason = Schema.Literal("underpaid", "wrong_token", "wrong_network", "expired", "reverted", "wrong_payer", "wrong_contract")
export type FailureReason = typeof FailureReason.Type

/** The only moves a payment may make; terminal states have none but their own corrections. */
const allowed: Record<PaymentStatus, ReadonlyArray<PaymentStatus>> = {
  pending: ["seen", "confirmed", "failed", "expired"],
  seen: ["pending", "confirmed", "failed", "expired"],
  confirmed: ["reversed", "refunded"],
  failed: [],
  expired: [],
  reversed: [],
  refunded: []
}

export const canTransition = (from: PaymentStatus, to: PaymentStatus): boolean => allowed[from].includes(to)
