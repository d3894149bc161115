import { SqlClient } from "@effect/sql"
import { Config, Effect, Option } from "effect"
import { redactSecrets } from "./Audit.ts"

export const FinanceOpsUser = Config.option(Config.string("APP_BILLING_FINANCE_OPS_USER_ID"))

/** Notifications are rows written in the caller's SQL transaction, so they exist exactly when the change does. */
export class Notifications extends Effect.Service<Notifications>()("billing/Notifications", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const financeOps = yield* FinanceOpsUser

    const notify = Effect.fn("Notifications.notify")(function*(userId: string, kind: string, payload: Record<string, unknown>) {
      yield* sql`INSERT INTO notifications (user_id, kind, payload)
        VALUES (${userId}, ${kind}, ${JSON.stringify(redactSecrets(payload))}::jsonb)`
    })

    /** To APP_BILLING_FINANCE_OPS_USER_ID; without it the incident is only logged. */
    const notifyFinanceOps = (kind: string, payload: Record<string, unknown>) =>
      Option.match(financeOps, {
        onNone: () => Effect.logWarning(`finance_ops notification ${kind} dropped: APP_BILLING_FINANCE_OPS_USER_ID is unset`),
        onSome: (user) => notify(user, kind, payload)
      })

    return { notify, notifyFinanceOps } as const
  })
}) {}
