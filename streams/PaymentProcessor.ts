import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Layer } from "effect"
import { Nats } from "../services/Nats.ts"
import { Notifications } from "../services/Notifications.ts"
import { type Checked, type ConfirmationError, PaymentConfirmation } from "../services/PaymentConfirmation.ts"
import { transactional } from "../services/Rows.ts"
import { ChainStream, WebhookStream } from "../services/StreamCodecs.ts"
import * as Consumer from "./Consumer.ts"
import { HandlerFailure, Outcome } from "./Disposition.ts"

export const ProcessorConfig = Config.all({
  maxDeliveries: Config.integer("BILLING_PROCESSOR_MAX_DELIVERIES").pipe(Config.withDefault(8)),
  baseDelay: Config.duration("BILLING_PROCESSOR_RETRY_BASE_DELAY").pipe(Config.withDefault(Duration.seconds(1))),
  maxDelay: Config.duration("BILLING_PROCESSOR_RETRY_MAX_DELAY").pipe(Config.withDefault(Duration.minutes(1))),
  confirmationPoll: Config.duration("BILLING_CONFIRMATION_POLL").pipe(Config.withDefault(Duration.seconds(2))),
  ackWait: Config.duration("BILLING_PROCESSOR_ACK_WAIT").pipe(Config.withDefault(Duration.seconds(30)))
})

/**
 * Durable consumers of the webhooks and chain streams, supervised fibers for the life of the layer. Each message goes
 * to PaymentConfirmation; its result becomes a disposition (not final yet: look again after the confirmation poll).
 * A dead letter is reported to finance_ops (a notification in its own SQL transaction).
 */
export const PaymentProcessorLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const confirmation = yield* PaymentConfirmation
  const config = yield* ProcessorConfig
  const sql = yield* SqlClient.SqlClient
  const notifications = yield* Notifications
  const policy = { maxDeliveries: config.maxDeliveries, baseDelay: config.baseDelay, maxDelay: config.maxDelay }

  const toOutcome = <R>(checked: Effect.Effect<Checked, ConfirmationError, R>) =>
    checked.pipe(
      Effect.map((c): Outcome => c._tag === "Done" ? Outcome.Done() : Outcome.Later({ delay: config.confirmationPoll, reason: c.reason })),
      Effect.mapError((e) => new HandlerFailure({ retryable: e.retryable, reason: e.reason }))
    )

  const onDeadLetter = (consumer: string) => (meta: Consumer.MessageMeta, reason: string) =>
    notifications.notifyFinanceOps("dead_letter", {
      consumer,
      stream: meta.stream,
      subject: meta.subject,
      seq: meta.seq,
      delivery_count: meta.deliveryCount,
      msg_id: meta.msgId ?? null,
      reason
    }).pipe(transactional(sql))
  yield* Consumer.run({
    name: "payment-processor-webhooks",
    stream: nats.subjects.streams.webhooks,
    durable: nats.subjects.durables.paymentProcessorWebhooks,
    filterSubject: nats.subjects.streamSubjects.webhooks,
    schema: WebhookStream.schema,
    handle: (q) => toOutcome(confirmation.webhook(q)),
    onDeadLetter: onDeadLetter("payment-processor-webhooks"),
    ackWait: config.ackWait,
    policy
  })
  yield* Consumer.run({
    name: "payment-processor-chain",
    stream: nats.subjects.streams.chain,
    durable: nats.subjects.durables.paymentProcessorChain,
    filterSubject: nats.subjects.streamSubjects.chain,
    schema: ChainStream.schema,
    handle: (e) => toOutcome(confirmation.chainEvent(e)),
    onDeadLetter: onDeadLetter("payment-processor-chain"),
    ackWait: config.ackWait,
    policy
  })
})).pipe(Layer.provide([PaymentConfirmation.Default, Notifications.Default]))
