import { Data, Schema } from "effect"

export const PaymentStatus = Schema.Literal("pending", "seen", "confirmed", "failed", "expired", "reversed", "refunded")
export type PaymentStatus = typeof PaymentStatus.Type

export const FailureReason = Schema.Literal("underpaid", "wrong_token", "wrong_network", "expired", "reverted", "wrong_payer", "wrong_contract")
export type FailureReason = typeof FailureReason.Type

/**
 * The only moves a payment may make (migration 011 enforces the same table). `expired` is a presumption ("nothing
 * on chain by the deadline"), so chain evidence of a payment mined before the deadline may still confirm it; a
 * reversed payment whose transaction is mined again, deep enough, is confirmed again; failed and refunded are final.
 */
const allowed: Record<PaymentStatus, ReadonlyArray<PaymentStatus>> = {
  pending: ["seen", "confirmed", "failed", "expired"],
  seen: ["pending", "confirmed", "failed", "expired"],
  confirmed: ["reversed", "refunded"],
  failed: [],
  expired: ["confirmed"],
  reversed: ["confirmed"],
  refunded: []
}

export const canTransition = (from: PaymentStatus, to: PaymentStatus): boolean => allowed[from].includes(to)

/** Every move the table allows, as pairs: what the database trigger must accept, and nothing more. */
export const paymentTransitions: ReadonlyArray<readonly [PaymentStatus, PaymentStatus]> = Object.entries(allowed).flatMap(
  ([from, tos]) => tos.map((to) => [from as PaymentStatus, to] as const)
)

/** A move the transition table forbids, or from a status the row no longer has (a concurrent writer won). */
export class IllegalPaymentTransition extends Data.TaggedError("IllegalPaymentTransition")<{
  readonly paymentId: string
  readonly from: PaymentStatus
  readonly to: PaymentStatus
}> {}

export class PaymentNotFound extends Data.TaggedError("PaymentNotFound")<{ readonly paymentId: string }> {}
