import { SqlClient } from "@effect/sql"
import { Clock, Config, Duration, Effect, Layer, Metric, Option } from "effect"
import type { TransactionReceipt } from "viem"
import { decodePassEvent } from "../src/contracts/PassEvents.ts"
import { type Contract, Contracts } from "../services/Contracts.ts"
import { labelled, transactionsNetworkFailedTotal, transactionsTotal, webhookToConfirmationSeconds } from "../services/Metrics.ts"
import { Nats } from "../services/Nats.ts"
import { Notifications } from "../services/Notifications.ts"
import { type PaymentRow, Payments } from "../services/Payments.ts"
import { Rpc } from "../services/Rpc.ts"
import type { RpcError, UnknownNetwork } from "../services/RpcError.ts"
import { transactional } from "../services/Rows.ts"
import { Settlement } from "../services/Settlement.ts"
import { ChainStream, WebhookStream } from "../services/StreamCodecs.ts"
import type { ChainEvent, QueuedWebhook } from "../src/domain/Events.ts"
import { tokenFromAddress } from "../src/domain/Ids.ts"
import { checkPayment } from "../src/domain/PaymentCheck.ts"
import * as Consumer from "./Consumer.ts"
import { HandlerFailure, Outcome } from "./Disposition.ts"

export const ProcessorConfig = Config.all({
  maxDeliveries: Config.integer("BILLING_PROCESSOR_MAX_DELIVERIES").pipe(Config.withDefault(8)),
  baseDelay: Config.duration("BILLING_PROCESSOR_RETRY_BASE_DELAY").pipe(Config.withDefault(Duration.seconds(1))),
  maxDelay: Config.duration("BILLING_PROCESSOR_RETRY_MAX_DELAY").pipe(Config.withDefault(Duration.minutes(1))),
  confirmationPoll: Config.duration("BILLING_CONFIRMATION_POLL").pipe(Config.withDefault(Duration.seconds(2))),
  ackWait: Config.duration("BILLING_PROCESSOR_ACK_WAIT").pipe(Config.withDefault(Duration.seconds(30)))
})

const rpcFailure = (e: RpcError | UnknownNetwork) =>
  e._tag === "RpcError"
    ? new HandlerFailure({ retryable: e.retryable, reason: `rpc ${e.method} on ${e.network}[${e.endpoint}]: ${e.message}` })
    : HandlerFailure.retryable(`network ${e.network} has no RPC configuration`)

/** What an event says, whichever its source: the webhook's or the listener's; only a pointer into the chain. */
export interface Hint {
  readonly source: string
  readonly contract: Contract
  readonly txHash: `0x${string}`
  readonly logIndex: number
  readonly orderId: string | undefined
}

/**
 * Turns a queued event into effects. Every event is only a hint: the receipt and log are read from the chain,
 * checked against the checkout, and settled once deep enough, in one SQL transaction (see Settlement).
 */
export const makeHandler = Effect.gen(function*() {
  const contracts = yield* Contracts
  const rpc = yield* Rpc
  const payments = yield* Payments
  const settlement = yield* Settlement
  const config = yield* ProcessorConfig
  const sql = yield* SqlClient.SqlClient
  const later = (reason: string) => Outcome.Later({ delay: config.confirmationPoll, reason })

  const paymentFor = (orderId: string) =>
    Effect.flatMap(payments.byOrderId(orderId), Option.match({
      onNone: () => Effect.fail(HandlerFailure.permanent(`no checkout has order id ${orderId}`)),
      onSome: (p: PaymentRow) => Effect.succeed(p)
    }))
  const paymentWithTx = (txHash: string) => payments.findOne(sql`t.tx_hash = ${txHash.toLowerCase()}`)

  /** Depth of the receipt's block on the canonical chain, or none when a reorg replaced that block. */
  const depthOf = (network: string, receipt: TransactionReceipt) =>
    Effect.gen(function*() {
      const block = yield* rpc.block(network, receipt.blockNumber)
      if (block.hash !== receipt.blockHash) return Option.none<bigint>()
      const head = yield* rpc.blockNumber(network)
      return Option.some(head - receipt.blockNumber + 1n)
    })

  const reverted = (hint: Hint) =>
    Effect.gen(function*() {
      if (hint.orderId === undefined) return yield* HandlerFailure.permanent("reverted transaction and no order_id to attribute it to")
      const payment = yield* paymentFor(hint.orderId)
      const tx = yield* rpc.transaction(hint.contract.network, hint.txHash)
      const attributable = Option.exists(tx, (t) =>
        t.from.toLowerCase() === payment.wallet_address && t.to?.toLowerCase() === payment.contract_address)
      if (!attributable) return yield* HandlerFailure.permanent("reverted transaction was not sent by the payer to the contract")
      yield* settlement.failWithoutTransfer({
        dedupeKey: `${payment.chain_id}:${hint.txHash}:reverted`,
        source: hint.source,
        paymentId: payment.id,
        txHash: hint.txHash,
        reason: "reverted"
      })
      return Outcome.Done()
    })

  /**
   * The log is gone from the canonical chain (a reorg). Unless the transaction is back in another block, a payment
   * that was only seen returns to pending and a confirmed one is reversed.
   */
  const dropped = (hint: Hint) =>
    Effect.gen(function*() {
      const payment = yield* paymentWithTx(hint.txHash)
      if (Option.isNone(payment)) return Outcome.Done()
      const receipt = yield* rpc.receipt(hint.contract.network, hint.txHash)
      if (Option.isSome(receipt) && Option.isSome(yield* depthOf(hint.contract.network, receipt.value))) return Outcome.Done()
      const p = payment.value
      if (p.status === "seen") yield* settlement.unsee(p.id, hint.txHash)
      if (p.status === "confirmed") {
        // Reversal is final: it needs positive evidence that the recorded block was replaced at its height by a
        // block that is itself final, not just a missing receipt (a lagging endpoint, or a reorg still in progress
        // that may yet include the transaction again, answers that too).
        const net = yield* rpc.networkConfig(hint.contract.network)
        const head = yield* rpc.blockNumber(hint.contract.network)
        const settled = p.block_number !== null && head - p.block_number + 1n >= BigInt(net.confirmations)
        const replaced = settled && p.block_hash !== null && (yield* rpc.block(hint.contract.network, p.block_number!).pipe(
          Effect.map((b) => b.hash !== p.block_hash),
          Effect.catchTag("RpcError", () => Effect.succeed(false))
        ))
        if (!replaced) return later(`reorg of ${hint.txHash} not yet final at block ${p.block_number}`)
        const again = yield* rpc.receipt(hint.contract.network, hint.txHash)
        if (Option.isSome(again)) return Outcome.Done()
        const outcome = yield* settlement.reverse({
          source: hint.source,
          paymentId: p.id,
          chainId: p.chain_id,
          txHash: hint.txHash,
          logIndex: p.log_index ?? hint.logIndex
        })
        yield* Effect.logWarning(`deep reorg: payment ${outcome}`).pipe(Effect.annotateLogs({ order_id: p.order_id, user_id: p.user_id }))
      }
      return Outcome.Done()
    })

  const settle = (hint: Hint) =>
    Effect.gen(function*() {
      const { contract } = hint
      const net = yield* rpc.networkConfig(contract.network)
      const found = yield* rpc.receipt(contract.network, hint.txHash)
      if (Option.isNone(found)) {
        const seen = yield* paymentWithTx(hint.txHash)
        if (Option.exists(seen, (p) => p.status === "seen" || p.status === "confirmed")) return yield* dropped(hint)
        return yield* HandlerFailure.retryable(`transaction ${hint.txHash} not found on ${contract.network}`)
      }
      const receipt = found.value
      const depth = yield* depthOf(contract.network, receipt)
      if (Option.isNone(depth)) return later("receipt block is no longer canonical")
      const deep = depth.value >= BigInt(net.confirmations)
      if (receipt.status === "reverted") return deep ? yield* reverted(hint) : later("reverted transaction not final yet")

      const log = receipt.logs.find((l) => l.logIndex === hint.logIndex)
      if (log === undefined || log.address.toLowerCase() !== contract.address) {
        return yield* HandlerFailure.permanent(`no log of contract ${contract.slug} at index ${hint.logIndex}`)
      }
      const decoded = decodePassEvent(contract.abi, log)
      if (Option.isNone(decoded)) return yield* HandlerFailure.permanent("log is neither Minted nor Burned")
      const payment = yield* paymentFor(decoded.value.args.orderId)
      // The payment's own chain id, never the current config's: its keys must not move if the config ever does.
      // Keyed per inclusion (block hash): the same transaction mined again after a reorg is news, not a duplicate.
      const dedupeKey = `${payment.chain_id}:${receipt.transactionHash}:${log.logIndex}:${receipt.blockHash}`
      const logRef = { txHash: receipt.transactionHash, logIndex: log.logIndex, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash }

      if (decoded.value.eventName === "Burned") {
        if (!deep) return later("burn not final yet")
        yield* settlement.burn({ dedupeKey, source: hint.source, paymentId: payment.id })
        return Outcome.Done()
      }
      const minted = decoded.value.args
      if (!deep) {
        yield* settlement.markSeen(payment.id, logRef)
        return later(`${depth.value} of ${net.confirmations} confirmations`)
      }
      const block = yield* rpc.block(contract.network, receipt.blockNumber)
      const token = tokenFromAddress(minted.token)
      const verdict = checkPayment({
        network: payment.network,
        chainId: payment.chain_id,
        contractAddress: payment.contract_address,
        walletAddress: payment.wallet_address,
        token: payment.token,
        amount: payment.amount,
        expiresAtSeconds: BigInt(Math.floor(payment.expires_at.getTime() / 1000))
      }, {
        network: contract.network,
        chainId: net.chain_id,
        contract: log.address,
        orderId: minted.orderId,
        payer: minted.payer,
        token,
        amount: minted.amount,
        blockTimestamp: block.timestamp
      })
      const outcome = yield* settlement.settleMint({
        dedupeKey,
        source: hint.source,
        paymentId: payment.id,
        verdict,
        log: { ...logRef, network: contract.network, chainId: payment.chain_id, token, amount: minted.amount }
      })
      yield* Effect.logInfo(`payment ${outcome}`).pipe(Effect.annotateLogs({ order_id: payment.order_id, user_id: payment.user_id }))
      if (outcome === "confirmed" || outcome === "failed") {
        yield* Metric.increment(labelled(transactionsTotal, { status: outcome, network: payment.network, token: payment.token }))
      }
      if (outcome === "confirmed") {
        const now = yield* Clock.currentTimeMillis
        yield* Metric.update(webhookToConfirmationSeconds, (now - payment.created_at.getTime()) / 1000)
      }
      return Outcome.Done()
    })

  const networkFailed = (network: string) => Metric.increment(labelled(transactionsNetworkFailedTotal, { network }))

  const run = (hint: Hint, removed: boolean) =>
    (removed ? dropped(hint) : settle(hint)).pipe(
      Effect.catchTags({
        RpcError: (e) => Effect.zipRight(networkFailed(e.network), Effect.fail(rpcFailure(e))),
        UnknownNetwork: (e) => Effect.zipRight(networkFailed(e.network), Effect.fail(rpcFailure(e)))
      }),
      Effect.annotateLogs({ tx_hash: hint.txHash, contract_slug: hint.contract.slug }),
      Effect.withSpan("PaymentProcessor.handle", { attributes: { tx_hash: hint.txHash, source: hint.source } })
    )

  const unknownContract = (what: string) => Effect.fail(HandlerFailure.permanent(`contract ${what} is not registered`))

  const onWebhook = (q: QueuedWebhook) =>
    contracts.get(q.event.contract).pipe(
      Effect.catchTag("ContractNotFound", () => unknownContract(q.event.contract)),
      Effect.flatMap((contract) =>
        run({
          source: `webhook:${q.webhook_id}`,
          contract,
          txHash: q.event.tx_hash as `0x${string}`,
          logIndex: q.event.log_index,
          orderId: q.event.order_id
        }, false))
    )

  const onChain = (e: ChainEvent) =>
    contracts.findByAddress(e.network, e.contract).pipe(
      Effect.flatMap(Option.match({ onNone: () => unknownContract(`${e.contract} on ${e.network}`), onSome: Effect.succeed })),
      Effect.flatMap((contract) =>
        run({
          source: `chain:${e.chain_id}:${e.block_hash}`,
          contract,
          txHash: e.tx_hash as `0x${string}`,
          logIndex: e.log_index,
          orderId: undefined
        }, e.removed))
    )

  /** The janitor's re-check of a payment stuck in pending/seen although its transaction is known. */
  const recheck = (p: PaymentRow) =>
    contracts.get(p.contract_slug).pipe(
      Effect.catchTag("ContractNotFound", () => unknownContract(p.contract_slug)),
      Effect.flatMap((contract) =>
        run({
          source: `janitor:${p.id}`,
          contract,
          txHash: p.tx_hash as `0x${string}`,
          logIndex: p.log_index ?? 0,
          orderId: p.order_id
        }, false))
    )

  return { onWebhook, onChain, recheck } as const
})

/**
 * Durable consumers of the webhooks and chain streams, supervised fibers for the life of the layer.
 * A dead letter is reported to finance_ops (a notification in its own SQL transaction).
 */
export const PaymentProcessorLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const handler = yield* makeHandler
  const config = yield* ProcessorConfig
  const sql = yield* SqlClient.SqlClient
  const notifications = yield* Notifications
  const policy = { maxDeliveries: config.maxDeliveries, baseDelay: config.baseDelay, maxDelay: config.maxDelay }
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
    handle: handler.onWebhook,
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
    handle: handler.onChain,
    onDeadLetter: onDeadLetter("payment-processor-chain"),
    ackWait: config.ackWait,
    policy
  })
})).pipe(Layer.provide([Settlement.Default, Payments.Default, Contracts.Default, Notifications.Default]))
