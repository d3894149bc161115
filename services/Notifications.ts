import { Config, Effect, Option } from "effect"
import { redactSecrets } from "./Audit.ts"
import { Outbox } from "./Outbox.ts"
import { NotificationEvents } from "./StreamCodecs.ts"

export const FinanceOpsUser = Config.option(Config.string("APP_BILLING_FINANCE_OPS_USER_ID"))

/**
 * Templates per audience and kind: `{name}` is replaced by the payload's `name`. Amounts are base units as decimal
 * strings (the payload carries the token, which fixes the decimals). The placeholders are checked by the compiler:
 * `notify` and `notifyFinanceOps` do not accept a payload that lacks one.
 */
export const userTemplates = {
  "payment.confirmed": {
    title: "Payment confirmed",
    body: "Your payment of {amount} base units of {token} on {network} for plan {plan_slug} is confirmed " +
      "(transaction {tx_hash}). Your subscription runs until {current_period_end}."
  },
  "payment.failed": {
    title: "Payment failed",
    body: "Your payment for plan {plan_slug} on {network} failed: {failure_reason}. Nothing was activated; if money " +
      "reached us, it is held as credit on your account. Check out again to retry."
  },
  "payment.attempt_failed": {
    title: "Payment attempt failed",
    body: "Your payment attempt {tx_hash} for plan {plan_slug} on {network} did not go through: {detail}; nothing was " +
      "charged; the checkout can still be paid until {expires_at}."
  },
  "payment.credited": {
    title: "Payment held as credit",
    body: "Your payment of {amount} base units of {token} on {network} for plan {plan_slug} was not applied to your " +
      "subscription ({reason}), which stays as it is: the amount is held as credit on your account (transaction {tx_hash})."
  },
  "credit.proration": {
    title: "Unused time credited",
    body: "The unused part of your {plan_slug} subscription, {amount} base units of {token} on {network}, is credited to your account."
  },
  "subscription.next_period_paid": {
    title: "Next period paid",
    body: "Your {plan_slug} period is paid; it starts when your current period ends. You are paid until {current_period_end}."
  },
  "subscription.next_period_started": {
    title: "Plan changed",
    body: "Your paid {plan_slug} period has started; it runs until {current_period_end}."
  },
  "payment.reversed": {
    title: "Payment reversed",
    body: "Your payment {tx_hash} on {network} was dropped by a chain reorganization and has been reversed; " +
      "the period it paid for was withdrawn."
  },
  "subscription.renewal_due": {
    title: "Renewal due",
    body: "Your {plan_slug} subscription ends on {current_period_end}. Pay again to renew it."
  },
  "subscription.past_due": {
    title: "Subscription past due",
    body: "Your {plan_slug} subscription ended on {current_period_end} and is past due. Pay to keep it before it expires."
  },
  "subscription.expired": {
    title: "Subscription expired",
    body: "Your {plan_slug} subscription has expired."
  },
  "payment.refunded": {
    title: "Payment refunded",
    body: "Your payment {transaction_id} for plan {plan_slug} was refunded: {amount} base units of {token} on {network} " +
      "(tx {refund_tx_hash}). The period it paid for was withdrawn."
  },
  "payment.resolved": {
    title: "Payment checked",
    body: "Your payment {transaction_id} was checked against the chain by our team: it is {status}."
  }
} as const

export const financeOpsTemplates = {
  "payment.confirmed": {
    title: "Payment confirmed",
    body: "User {user_id} paid {amount} base units of {token} on {network} for plan {plan_slug} " +
      "(transaction {transaction_id}, tx {tx_hash})."
  },
  "payment.credited": {
    title: "Payment held as credit",
    body: "Payment {transaction_id} of user {user_id} ({amount} base units of {token} on {network}, tx {tx_hash}) for plan " +
      "{plan_slug} was not applied ({reason}) and is held as customer credit."
  },
  "payment.reversed": {
    title: "Payment reversed",
    body: "Payment {transaction_id} of user {user_id} ({tx_hash} on {network}) was reversed after a deep reorg; " +
      "reversing ledger entries were posted."
  },
  "payment.refunded": {
    title: "Payment refunded",
    body: "{actor} refunded payment {transaction_id} of user {user_id}: {amount} base units of {token} on {network} " +
      "(tx {refund_tx_hash}); reason: {reason}."
  },
  "payment.resolved": {
    title: "Payment resolved",
    body: "{actor} re-checked payment {transaction_id} of user {user_id} against the chain: {before} -> {status} ({checked}); reason: {reason}."
  },
  "dead_letter": {
    title: "Message dead-lettered",
    body: "Consumer {consumer} gave up on {subject} (stream {stream}, seq {seq}) after {delivery_count} deliveries: " +
      "{reason}. Once the cause is fixed, replay it: POST {link}/replay (or `npx evm-billing dead-letters replay {dead_letter_id}`)."
  },
  "outbox_dead_letter": {
    title: "Event dead-lettered",
    body: "The outbox relay set aside event {outbox_id} on {subject} ({reason}: {detail}); the events after it went on. " +
      "It stays in the outbox table (dead_lettered_at) with its payload; once the cause is fixed, replay it: {replay}."
  },
  "crypto_config.changed": {
    title: "Crypto config changed",
    body: "{actor} changed the crypto config of {networks}."
  }
} as const

export type UserNotificationKind = keyof typeof userTemplates
export type FinanceOpsNotificationKind = keyof typeof financeOpsTemplates
export type Audience = "user" | "finance_ops"

interface Template {
  readonly title: string
  readonly body: string
}

/** The `{name}` placeholders of a template string. */
type Placeholders<S extends string> = S extends `${string}{${infer K}}${infer Rest}` ? K | Placeholders<Rest> : never

export type TemplateValue = string | number | bigint | boolean | Date | ReadonlyArray<string>

/** A payload with every placeholder of the template, and whatever else the notification should carry. */
export type PayloadOf<T extends Template> =
  & { readonly [K in Placeholders<T["title"]> | Placeholders<T["body"]>]: TemplateValue }
  & Readonly<Record<string, unknown>>

const show = (value: unknown): string | undefined => {
  if (value === null || value === undefined) return undefined
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.map(String).join(", ")
  return String(value)
}

/** Fills a template; `missing` names placeholders the payload had no value for (the types prevent it). */
export const render = (template: Template, payload: Readonly<Record<string, unknown>>) => {
  const missing: Array<string> = []
  const fill = (text: string) =>
    text.replace(/\{([a-z_]+)\}/g, (_, key: string) => {
      const value = show(payload[key])
      if (value === undefined) missing.push(key)
      return value ?? `{${key}}`
    })
  return { title: fill(template.title), body: fill(template.body), missing } as const
}


/**
 * Notifications are rows written in the caller's SQL transaction, so they exist exactly when the change does;
 * each is also enqueued on the outbox as `notifications.<user id>` (published after commit by the OutboxRelay).
 */
export class Notifications extends Effect.Service<Notifications>()("billing/Notifications", {
  effect: Effect.gen(function*() {
    const outbox = yield* Outbox
    const financeOps = yield* FinanceOpsUser

    const write = (audience: Audience, userId: string, kind: string, template: Template, payload: Readonly<Record<string, unknown>>) =>
      Effect.gen(function*() {
        const text = render(template, payload)
        if (text.missing.length > 0) {
          return yield* Effect.dieMessage(`notification ${kind}: no value for ${text.missing.join(", ")}`)
        }
        const data = redactSecrets(payload)
        const stored = JSON.stringify({ ...(data as Record<string, unknown>), title: text.title, body: text.body })
        const row = { user_id: userId, kind, payload: stored }
        yield* outbox.addRow("notifications", row, NotificationEvents, (id, createdAt) => ({
          id,
          user_id: userId,
          audience,
          kind,
          title: text.title,
          body: text.body,
          data,
          created_at: createdAt.toISOString()
        }))
      }).pipe(Effect.withSpan("Notifications.write", { attributes: { audience, kind } }))

    /** To the user; `kind` picks the template. */
    const notify = <K extends UserNotificationKind>(userId: string, kind: K, payload: PayloadOf<(typeof userTemplates)[K]>) =>
      write("user", userId, kind, userTemplates[kind], payload)

    /** To APP_BILLING_FINANCE_OPS_USER_ID; without it the incident is only logged. */
    const notifyFinanceOps = <K extends FinanceOpsNotificationKind>(kind: K, payload: PayloadOf<(typeof financeOpsTemplates)[K]>) =>
      Option.match(financeOps, {
        onNone: () => Effect.logWarning(`finance_ops notification ${kind} dropped: APP_BILLING_FINANCE_OPS_USER_ID is unset`),
        onSome: (user) => write("finance_ops", user, kind, financeOpsTemplates[kind], payload)
      })

    return { notify, notifyFinanceOps } as const
  }),
  dependencies: [Outbox.Default]
}) {}
