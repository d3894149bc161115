import { Schema } from "effect"

export const PaymentStatus = Schema.Literal("pending", "seen", "confirmed", "failed", "expired", "reversed", "refunded")
export type PaymentStatus = typeof PaymentStatus.Type

export const FailureReason = Schema.Literal("underpaid", "wrong_token", "wrong_network", "expired", "reverted", "wrong_payer", "wrong_contract")
export type FailureReason = typeof FailureReason.Type

/**
 * The only moves a payment may make. `expired` is a presumption ("nothing on chain by the deadline"), so chain
 * evidence of a payment mined before the deadline may still confirm it; failed, reversed and refunded are final.
 */
const allowed: Record<PaymentStatus, ReadonlyArray<PaymentStatus>> = {
  pending: ["seen", "confirmed", "failed", "expired"],
  seen: ["pending", "confirmed", "failed", "expired"],
  confirmed: ["reversed", "refunded"],
  failed: [],
  expired: ["confirmed"],
  reversed: [],
  refunded: []
}

export const canTransition = (from: PaymentStatus, to: PaymentStatus): boolean => allowed[from].includes(to)
