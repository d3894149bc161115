import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { ResolveView } from "../src/domain/Refund.ts"
import { Audit } from "./Audit.ts"
import { Notifications } from "./Notifications.ts"
import { PaymentConfirmation } from "./PaymentConfirmation.ts"
import { Payments } from "./Payments.ts"
import { transactional } from "./Rows.ts"

/**
 * The playbook's answer to a payment that disagrees with the chain, as a tool: finance_ops asks for a re-check and
 * the payment is moved only by what the chain says, through the same path as every event (confirm, return to
 * pending, reverse once final, or nothing). Never a status chosen by hand, never a ledger UPDATE. The request, its
 * reason and the outcome are audited, and finance_ops and the payer are told.
 */
export class Resolutions extends Effect.Service<Resolutions>()("billing/Resolutions", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const payments = yield* Payments
    const confirmation = yield* PaymentConfirmation
    const audit = yield* Audit
    const notifications = yield* Notifications

    const resolve = Effect.fn("Resolutions.resolve")(function*(paymentId: string, reason: string, actor: string, requestId?: string) {
      const find = payments.get(paymentId)
      const before = yield* find
      const checked = yield* confirmation.recheck(before, `finance_ops:${actor}`).pipe(
        Effect.map((c) => (c._tag === "Done" ? "done" : `waiting: ${c.reason}`)),
        Effect.catchTag("ConfirmationError", (e) => Effect.succeed(`not settled: ${e.reason}`))
      )
      const after = yield* find
      const view: ResolveView = { transaction_id: paymentId, before: before.status, after: after.status, checked }
      yield* Effect.gen(function*() {
        yield* audit.record({
          actor,
          action: "payment.resolved",
          resource: `payment:${paymentId}`,
          before: { status: before.status },
          after: { status: after.status, checked, reason },
          requestId
        })
        yield* notifications.notify(after.user_id, "payment.resolved", { transaction_id: paymentId, status: after.status })
        yield* notifications.notifyFinanceOps("payment.resolved", {
          transaction_id: paymentId,
          user_id: after.user_id,
          actor,
          before: before.status,
          status: after.status,
          checked,
          reason
        })
      }).pipe(transactional(sql))
      return view
    })

    return { resolve } as const
  }),
  dependencies: [Payments.Default, PaymentConfirmation.Default, Audit.Default, Notifications.Default]
}) {}
