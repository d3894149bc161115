import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect, Exit, Layer } from "effect"
import { ChainHeads } from "../services/ChainHeads.ts"
import type { BatchResult, ItemResult, Tracing } from "../services/ConfirmBatch.ts"
import { Nats } from "../services/Nats.ts"
import { Notifications } from "../services/Notifications.ts"
import { type Checked, PaymentConfirmation } from "../services/PaymentConfirmation.ts"
import { RetryPolicyState } from "../services/RetryPolicies.ts"
import { transactional } from "../services/Rows.ts"
import { ChainStream, WebhookStream } from "../services/StreamCodecs.ts"
import { deadLetterPath } from "../services/Subjects.ts"
import { intBetween } from "../services/Settings.ts"
import * as Consumer from "./Consumer.ts"
import { fromSettings, HandlerFailure, Outcome } from "./Disposition.ts"

export const ProcessorConfig = Config.all({
  confirmationPoll: Config.duration("BILLING_CONFIRMATION_POLL").pipe(Config.withDefault(Duration.seconds(2))),
  ackWait: Config.duration("BILLING_PROCESSOR_ACK_WAIT").pipe(Config.withDefault(Duration.seconds(30))),
  batchSize: intBetween("BILLING_PROCESSOR_BATCH_SIZE", 100, 1, 1000),
  batches: intBetween("BILLING_PROCESSOR_BATCHES", 4, 1, 64),
  maxWaiting: intBetween("BILLING_PROCESSOR_MAX_WAITING", 1000, 0, 100_000)
})

/**
 * Durable consumers of the webhooks and chain streams, supervised fibers for the life of the layer. Messages go to
 * PaymentConfirmation a batch at a time (one SQL transaction per batch); each result becomes a disposition. A payment
 * not deep enough yet waits for its block on the shared head watcher (at most the confirmation poll), then comes back.
 * A dead letter is reported to finance_ops (a notification in its own SQL transaction).
 */
export const PaymentProcessorLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const confirmation = yield* PaymentConfirmation
  const config = yield* ProcessorConfig
  const sql = yield* SqlClient.SqlClient
  const notifications = yield* Notifications
  const policies = yield* RetryPolicyState
  // read at each decision: an operator's change applies to the next retry
  const policyOf = (name: "webhooks" | "chain-events") => Effect.map(policies.current(name), fromSettings)

  const heads = yield* ChainHeads
  const toOutcome = (c: Checked): Outcome =>
    c._tag === "Done" ? Outcome.Done() : Outcome.Later({
      delay: config.confirmationPoll,
      reason: c.reason,
      ...(c.until === undefined ? {} : { wake: heads.awaitHead(c.until.network, c.until.head) })
    })
  const toExit = (result: ItemResult): Exit.Exit<Outcome, HandlerFailure> =>
    Exit.mapBoth(result, { onSuccess: toOutcome, onFailure: (e) => new HandlerFailure({ retryable: e.retryable, reason: e.reason }) })
  const batched = <A>(confirm: (messages: ReadonlyArray<A>, traces: ReadonlyArray<Tracing>) => Effect.Effect<BatchResult>) =>
  (items: ReadonlyArray<Consumer.BatchItem<A>>) =>
    confirm(items.map((i) => i.message), items.map((i) => i.inTrace)).pipe(
      Effect.tap(({ heads: read }) => Effect.forEach(read, ([network, head]) => heads.observe(network, head), { discard: true })),
      Effect.map(({ results }) => results.map(toExit))
    )
  const batching = { batchSize: config.batchSize, batches: config.batches, maxWaiting: config.maxWaiting }

  const onDeadLetter = (consumer: string) => (meta: Consumer.MessageMeta, reason: string, deadLetterId: number) =>
    notifications.notifyFinanceOps("dead_letter", {
      consumer,
      dead_letter_id: deadLetterId,
      link: deadLetterPath(deadLetterId),
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
    handleBatch: batched(confirmation.webhooks),
    ...batching,
    onDeadLetter: onDeadLetter("payment-processor-webhooks"),
    ackWait: config.ackWait,
    policy: policyOf("webhooks")
  })
  yield* Consumer.run({
    name: "payment-processor-chain",
    stream: nats.subjects.streams.chain,
    durable: nats.subjects.durables.paymentProcessorChain,
    filterSubject: nats.subjects.streamSubjects.chain,
    schema: ChainStream.schema,
    handleBatch: batched(confirmation.chainEvents),
    ...batching,
    onDeadLetter: onDeadLetter("payment-processor-chain"),
    ackWait: config.ackWait,
    policy: policyOf("chain-events")
  })
})).pipe(Layer.provide([PaymentConfirmation.Default, Notifications.Default, ChainHeads.Default, RetryPolicyState.Default]))
