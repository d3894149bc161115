import { Config, Duration, Effect, Layer, Option } from "effect"
import { type Abi, decodeEventLog, type Log, type TransactionReceipt } from "viem"
import { type Contract, Contracts } from "../services/Contracts.ts"
import { Nats } from "../services/Nats.ts"
import { type PaymentRow, Payments } from "../services/Payments.ts"
import { Rpc } from "../services/Rpc.ts"
import type { RpcError, UnknownNetwork } from "../services/RpcError.ts"
import { Settlement } from "../services/Settlement.ts"
import { QueuedWebhook } from "../src/domain/Events.ts"
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

type Decoded =
  | { readonly eventName: "Minted"; readonly args: { orderId: `0x${string}`; payer: string; token: string; amount: bigint } }
  | { readonly eventName: "Burned"; readonly args: { passId: bigint; orderId: `0x${string}` } }

const decodeLog = (contract: Contract, log: Log): Option.Option<Decoded> => {
  try {
    const decoded = decodeEventLog({ abi: contract.abi as Abi, data: log.data, topics: log.topics })
    return decoded.eventName === "Minted" || decoded.eventName === "Burned" ? Option.some(decoded as unknown as Decoded) : Option.none()
  } catch {
    return Option.none()
  }
}

/**
 * Turns a queued event into effects. The webhook is only a hint: the receipt and log are read from the chain,
 * checked against the checkout, and settled once deep enough, in one SQL transaction (see Settlement).
 */
export const makeHandler = Effect.gen(function*() {
  const contracts = yield* Contracts
  const rpc = yield* Rpc
  const payments = yield* Payments
  const settlement = yield* Settlement
  const config = yield* ProcessorConfig
  const later = (reason: string) => Outcome.Later({ delay: config.confirmationPoll, reason })

  const paymentFor = (orderId: string) =>
    Effect.flatMap(payments.byOrderId(orderId), Option.match({
      onNone: () => Effect.fail(HandlerFailure.permanent(`no checkout has order id ${orderId}`)),
      onSome: (p: PaymentRow) => Effect.succeed(p)
    }))

  /** Depth of the receipt's block on the canonical chain, or none when a reorg replaced that block. */
  const depthOf = (network: string, receipt: TransactionReceipt) =>
    Effect.gen(function*() {
      const block = yield* rpc.block(network, receipt.blockNumber)
      if (block.hash !== receipt.blockHash) return Option.none<bigint>()
      const head = yield* rpc.blockNumber(network)
      return Option.some(head - receipt.blockNumber + 1n)
    })

  const reverted = (q: QueuedWebhook, contract: Contract, source: string) =>
    Effect.gen(function*() {
      const orderId = q.event.order_id
      if (orderId === undefined) return yield* HandlerFailure.permanent("reverted transaction and no order_id to attribute it to")
      const payment = yield* paymentFor(orderId)
      const tx = yield* rpc.transaction(contract.network, q.event.tx_hash as `0x${string}`)
      const attributable = Option.exists(tx, (t) =>
        t.from.toLowerCase() === payment.wallet_address && t.to?.toLowerCase() === payment.contract_address)
      if (!attributable) return yield* HandlerFailure.permanent("reverted transaction was not sent by the payer to the contract")
      yield* settlement.failWithoutTransfer({
        dedupeKey: `${payment.chain_id}:${q.event.tx_hash}:reverted`,
        source,
        paymentId: payment.id,
        txHash: q.event.tx_hash,
        reason: "reverted"
      })
      return Outcome.Done()
    })

  return (q: QueuedWebhook) =>
    Effect.gen(function*() {
      const { event } = q
      const source = `webhook:${q.webhook_id}`
      const contract = yield* contracts.get(event.contract).pipe(
        Effect.catchTag("ContractNotFound", () => Effect.fail(HandlerFailure.permanent(`contract ${event.contract} is not registered`)))
      )
      const net = yield* rpc.networkConfig(contract.network)
      const found = yield* rpc.receipt(contract.network, event.tx_hash as `0x${string}`)
      if (Option.isNone(found)) return yield* HandlerFailure.retryable(`transaction ${event.tx_hash} not found on ${contract.network}`)
      const receipt = found.value
      const depth = yield* depthOf(contract.network, receipt)
      if (Option.isNone(depth)) return later("receipt block is no longer canonical")
      const deep = depth.value >= BigInt(net.confirmations)
      if (receipt.status === "reverted") return deep ? yield* reverted(q, contract, source) : later("reverted transaction not final yet")

      const log = receipt.logs.find((l) => l.logIndex === event.log_index)
      if (log === undefined || log.address.toLowerCase() !== contract.address) {
        return yield* HandlerFailure.permanent(`no log of contract ${contract.slug} at index ${event.log_index}`)
      }
      const decoded = decodeLog(contract, log)
      if (Option.isNone(decoded)) return yield* HandlerFailure.permanent("log is neither Minted nor Burned")
      const payment = yield* paymentFor(decoded.value.args.orderId)
      const dedupeKey = `${net.chain_id}:${receipt.transactionHash}:${log.logIndex}`
      const logRef = { txHash: receipt.transactionHash, logIndex: log.logIndex, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash }

      if (decoded.value.eventName === "Burned") {
        if (!deep) return later("burn not final yet")
        yield* settlement.burn({ dedupeKey, source, paymentId: payment.id })
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
        contractAddress: payment.contract_address,
        walletAddress: payment.wallet_address,
        token: payment.token,
        amount: payment.amount,
        expiresAtSeconds: BigInt(Math.floor(payment.expires_at.getTime() / 1000))
      }, {
        network: contract.network,
        contract: log.address,
        orderId: minted.orderId,
        payer: minted.payer,
        token,
        amount: minted.amount,
        blockTimestamp: block.timestamp
      })
      const outcome = yield* settlement.settleMint({
        dedupeKey,
        source,
        paymentId: payment.id,
        verdict,
        log: { ...logRef, network: contract.network, chainId: net.chain_id, token, amount: minted.amount }
      })
      yield* Effect.logInfo(`payment ${outcome}`).pipe(Effect.annotateLogs({ order_id: payment.order_id, user_id: payment.user_id }))
      return Outcome.Done()
    }).pipe(
      Effect.catchTags({ RpcError: (e) => Effect.fail(rpcFailure(e)), UnknownNetwork: (e) => Effect.fail(rpcFailure(e)) }),
      Effect.annotateLogs({ tx_hash: q.event.tx_hash, contract_slug: q.event.contract }),
      Effect.withSpan("PaymentProcessor.handle", { attributes: { tx_hash: q.event.tx_hash } })
    )
})

/** The durable consumer of the webhooks stream, a supervised fiber for the life of the layer. */
export const PaymentProcessorLive = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  const handle = yield* makeHandler
  const config = yield* ProcessorConfig
  yield* Consumer.run({
    name: "payment-processor",
    stream: nats.subjects.streams.webhooks,
    durable: nats.subjects.durables.paymentProcessorWebhooks,
    filterSubject: nats.subjects.streamSubjects.webhooks,
    schema: QueuedWebhook,
    handle,
    ackWait: config.ackWait,
    policy: { maxDeliveries: config.maxDeliveries, baseDelay: config.baseDelay, maxDelay: config.maxDelay }
  })
})).pipe(Layer.provide([Settlement.Default, Payments.Default, Contracts.Default]))
