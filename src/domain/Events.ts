import { Schema } from "effect"
import { NetworkName } from "./Network.ts"
import { OrderId, Slug, TxHash } from "./Ids.ts"

/** The body a relayer posts; only a hint: the processor reads the chain before acting. */
export const WebhookEvent = Schema.Struct({
  type: Schema.Literal("payment.minted", "pass.burned"),
  contract: Slug,
  network: NetworkName,
  tx_hash: TxHash,
  log_index: Schema.Int.pipe(Schema.between(0, 1_000_000)),
  block_number: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  order_id: Schema.optional(OrderId)
})
export type WebhookEvent = typeof WebhookEvent.Type

/** What goes onto the webhooks stream. */
export const QueuedWebhook = Schema.Struct({
  source: Schema.Literal("webhook"),
  webhook_id: Schema.String,
  received_at: Schema.String,
  event: WebhookEvent
})
export type QueuedWebhook = typeof QueuedWebhook.Type

/** A contract event the ChainListener read from the chain; `removed` when a reorg dropped it. */
export const ChainEvent = Schema.Struct({
  source: Schema.Literal("chain"),
  network: NetworkName,
  chain_id: Schema.Int,
  contract: Schema.String,
  event: Schema.Literal("Minted", "Burned"),
  tx_hash: TxHash,
  log_index: Schema.Int,
  block_number: Schema.Int,
  block_hash: Schema.String,
  removed: Schema.Boolean
})
export type ChainEvent = typeof ChainEvent.Type

/** A notification as the EVENTS stream carries it (`billing.notifications.<user>`); `data` is the redacted payload. */
export const NotificationMessage = Schema.Struct({
  id: Schema.String,
  user_id: Schema.String,
  audience: Schema.Literal("user", "finance_ops"),
  kind: Schema.String,
  title: Schema.String,
  body: Schema.String,
  data: Schema.Unknown,
  created_at: Schema.String
})
export type NotificationMessage = typeof NotificationMessage.Type
