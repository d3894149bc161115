import { Effect } from "effect"
import { serviceActor } from "../src/domain/Actor.ts"
import type { AuditResource } from "../src/domain/AuditLog.ts"
import type { PaymentStatus } from "../src/domain/Payment.ts"
import { Outbox } from "./Outbox.ts"
import { AuditEvents } from "./StreamCodecs.ts"

export interface AuditEntry {
  readonly actor: string
  readonly action: string
  /** `<kind>:<id>`; the kind decides which audit view shows the row (src/domain/AuditLog.ts). */
  readonly resource: AuditResource
  readonly before?: unknown
  readonly after?: unknown
  readonly requestId?: string | undefined
}

/** Who moves payments that no person moved: the processor settling chain events. */
export const PaymentProcessorActor = serviceActor("payment-processor")

export interface PaymentTransition {
  readonly paymentId: string
  /** null when the payment is created. */
  readonly from: PaymentStatus | null
  readonly to: PaymentStatus
  /** Default `PaymentProcessorActor`. */
  readonly actor?: string
  /** More of the state after the move (failure_reason, tx_hash, ...). */
  readonly details?: Readonly<Record<string, unknown>>
  readonly requestId?: string | undefined
}

/**
 * Keys whose values are credentials. A bare `token` is not one: in billing it names an asset ("native" or an
 * ERC-20 address), which the trail must show; credential tokens are named for what they are (`access_token`, ...).
 */
const SECRET_KEYS = /secret|private_?key|password|passphrase|api_?key|authorization|mnemonic|(access|refresh|auth|id|api|session|bearer|jwt)_?token/i

/** Secrets never reach the audit trail: their values are replaced, presence kept. */
export const redactSecrets = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(redactSecrets)
  if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) =>
      SECRET_KEYS.test(k) ? [k, v === null || v === undefined ? v : "[redacted]"] : [k, redactSecrets(v)]
    ))
  }
  return typeof value === "bigint" ? value.toString() : value
}


/**
 * Writes through the caller's SQL transaction, so the row commits or rolls back with the change; the same row is
 * enqueued on the outbox as `audit.<resource kind>` (published after commit by the OutboxRelay).
 */
export class Audit extends Effect.Service<Audit>()("billing/Audit", {
  effect: Effect.gen(function*() {
    const outbox = yield* Outbox
    const clean = (v: unknown) => (v === undefined ? null : redactSecrets(v))
    const json = (v: unknown) => (v === undefined ? null : JSON.stringify(redactSecrets(v)))

    const record = Effect.fn("Audit.record")(function*(entry: AuditEntry) {
      const row = {
        actor: entry.actor,
        action: entry.action,
        resource: entry.resource,
        before: json(entry.before),
        after: json(entry.after),
        request_id: entry.requestId ?? null
      }
      yield* outbox.addRow("audit_log", row, AuditEvents, (id, createdAt) => ({
        id,
        actor: entry.actor,
        action: entry.action,
        resource: entry.resource,
        before: clean(entry.before),
        after: clean(entry.after),
        request_id: entry.requestId ?? null,
        created_at: createdAt.toISOString()
      }))
    })

    /** `payment.<to>` on `payment:<id>`, before and after as statuses. */
    const paymentTransition = (t: PaymentTransition) =>
      record({
        actor: t.actor ?? PaymentProcessorActor,
        action: `payment.${t.to}`,
        resource: `payment:${t.paymentId}`,
        before: t.from === null ? undefined : { status: t.from },
        after: { status: t.to, ...t.details },
        requestId: t.requestId
      })

    return { record, paymentTransition } as const
  }),
  dependencies: [Outbox.Default]
}) {}
