/**
 * Every JetStream stream, subject and durable consumer name, declared once and derived from one
 * prefix (`BILLING_NATS_PREFIX`, default `BILLING`) so that several instances or test runs can share
 * one NATS server without seeing each other's messages.
 *
 * Stream and durable names use the prefix upper-cased (`BILLING_WEBHOOKS`), subjects use it
 * lower-cased (`billing.webhooks.<contract>`). Two prefixes that differ only in case therefore
 * collide: pick prefixes that differ in letters, not in case.
 */
import { Schema } from "effect"

const prefixRule = () => "must be 1-64 characters of [A-Za-z0-9_-] (it becomes part of stream and subject names)"

/** A validated prefix: it becomes part of stream, consumer and subject names. */
export const Prefix = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]+$/, { message: prefixRule }),
  Schema.maxLength(64, { message: prefixRule }),
  Schema.brand("billing/NatsPrefix")
)
export type Prefix = typeof Prefix.Type

export const DefaultPrefix: Prefix = Prefix.make("BILLING")

export interface Subjects {
  readonly prefix: Prefix
  /** Stream names. */
  readonly streams: {
    readonly webhooks: string
    readonly chain: string
    /** Outbox events: plan changes, notifications, audit. */
    readonly events: string
    readonly dlq: string
  }
  /** The subject filter each stream captures. */
  readonly streamSubjects: {
    readonly webhooks: string
    readonly chain: string
    /** What downstream consumes, named as DESIGN.md does: billing.plan.changed.v1, billing.notifications.<user>, billing.audit.<kind>. */
    readonly events: ReadonlyArray<string>
    readonly dlq: string
  }
  /** Durable consumer names. */
  readonly durables: {
    readonly paymentProcessorWebhooks: string
    readonly paymentProcessorChain: string
  }
  /**
   * Subject builders. Each argument must be one subject token (no `.`, `*`, `>` or whitespace);
   * slugs, chain ids and event names validated by the domain schemas are.
   */
  readonly webhook: (contractSlug: string) => string
  readonly chain: (chainId: number | bigint) => string
  /** `event("plan.changed.v1")` -> `billing.plan.changed.v1`; one of the EVENTS stream's subjects. */
  readonly event: (name: string) => string
  /** Dead letters of one source (a durable consumer name). */
  readonly dlq: (source: string) => string
  /** Core NATS (not JetStream) signals between instances, e.g. `control("crypto-config")`. */
  readonly control: (name: string) => string
}

export const make = (prefix: Prefix): Subjects => {
  const P = prefix.toUpperCase()
  const p = prefix.toLowerCase()
  return {
    prefix,
    streams: {
      webhooks: `${P}_WEBHOOKS`,
      chain: `${P}_CHAIN`,
      events: `${P}_EVENTS`,
      dlq: `${P}_DLQ`
    },
    streamSubjects: {
      webhooks: `${p}.webhooks.>`,
      chain: `${p}.chain.>`,
      events: [`${p}.plan.changed.v1`, `${p}.notifications.>`, `${p}.audit.>`],
      dlq: `${p}.dlq.>`
    },
    durables: {
      paymentProcessorWebhooks: `${P}_payment_processor_webhooks`,
      paymentProcessorChain: `${P}_payment_processor_chain`
    },
    webhook: (contractSlug) => `${p}.webhooks.${contractSlug}`,
    chain: (chainId) => `${p}.chain.${chainId.toString()}`,
    event: (name) => `${p}.${name}`,
    dlq: (source) => `${p}.dlq.${source}`,
    control: (name) => `${p}.control.${name}`
  }
}

/** Where operators see a dead letter (its id is its sequence in the DLQ stream). */
export const deadLetterPath = (id: number) => `/v1/billing/admin/dead-letters/${id}`

/** Headers written on every dead letter, next to the original payload and headers. */
export const DeadLetterHeaders = {
  reason: "Billing-Dead-Letter-Reason",
  sourceStream: "Billing-Source-Stream",
  sourceSubject: "Billing-Source-Subject",
  sourceSeq: "Billing-Source-Seq",
  sourceConsumer: "Billing-Source-Consumer",
  sourceMsgId: "Billing-Source-Msg-Id",
  deliveryCount: "Billing-Delivery-Count",
  /** When this instance first saw the message fail (absent when another instance saw its first failures). */
  firstFailedAt: "Billing-First-Failed-At"
} as const
