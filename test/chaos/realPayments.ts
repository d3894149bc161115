/**
 * Real payments for a chaos scenario: checkouts over HTTP paid on anvil from several dev accounts at once (one
 * account's transactions in order), each with the `payment.minted` event a relayer would send for it.
 */
import { Effect } from "effect"
import { type Harness, PASS } from "../support/app.ts"
import { mintedEvent, nativeCheckout, sendPayload } from "../support/payments.ts"

export interface RealPayment {
  /** The checkout's transaction id (payment_transactions.id). */
  readonly transactionId: string
  readonly event: Record<string, unknown>
}

/** Dev accounts that pay: 0 deploys and operates, 8 signs quotes, 9 is the treasury. */
export const PAYERS = [1, 2, 3, 4, 5, 6, 7] as const

/** Checks out and pays `count` orders of `plan`, for users `<prefix>-<n>`; returns them in order of n. */
export const payOrders = (app: Harness, plan: string, prefix: string, count: number, from = 0) =>
  Effect.forEach(PAYERS, (account, a) =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => from + i).filter((n) => n % PAYERS.length === a),
      (n) =>
        Effect.gen(function*() {
          const { checkout } = yield* nativeCheckout(app, plan, `${prefix}-${n}`, account)
          const receipts = yield* sendPayload(app, checkout, account)
          const mint = receipts[receipts.length - 1]!
          return { n, payment: { transactionId: checkout.transaction_id, event: mintedEvent(PASS, mint) } }
        })
    ), { concurrency: PAYERS.length }).pipe(
    Effect.map((perAccount) => perAccount.flat().sort((x, y) => x.n - y.n).map((x): RealPayment => x.payment))
  )
