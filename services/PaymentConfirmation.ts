import { SqlClient } from "@effect/sql"
import { Clock, Data, Effect, Either, Metric, Option } from "effect"
import type { TransactionReceipt } from "viem"
import { mintOrderId } from "../src/contracts/MintCall.ts"
import { decodePassEvent } from "../src/contracts/PassEvents.ts"
import type { ChainEvent, QueuedWebhook } from "../src/domain/Events.ts"
import { tokenFromAddress } from "../src/domain/Ids.ts"
import { checkPayment } from "../src/domain/PaymentCheck.ts"
import { type Contract, Contracts } from "./Contracts.ts"
import {
  labelled,
  paymentAttemptsTotal,
  transactionsNetworkFailedTotal,
  transactionsTotal,
  webhookToConfirmationSeconds
} from "./Metrics.ts"
import { type PaymentRow, Payments } from "./Payments.ts"
import { Rpc } from "./Rpc.ts"
import type { RpcError, UnknownNetwork } from "./RpcError.ts"
import { ChainState } from "./ChainState.ts"
import { Settlement } from "./Settlement.ts"
import { type ChainView, directView } from "./ChainView.ts"
import { confirmBatch, type Target, type Tracing } from "./ConfirmBatch.ts"

/** What an event says, whichever its source: only a pointer into the chain. */
export interface Hint {
  readonly source: string
  readonly contract: Contract
  readonly txHash: `0x${string}`
  readonly logIndex: number
  /** What the sender claims; never trusted, the chain says which order a transaction paid. */
  readonly orderId: string | undefined
}

/** How far a hint got: acted on (or nothing to do), or not final yet and worth looking at again. */
export type Checked = Data.TaggedEnum<{
  Done: {}
  /** `until`: the head of `network` worth looking again at (the block that makes it deep enough). */
  Later: { readonly reason: string; readonly until?: { readonly network: string; readonly head: bigint } }
}>
export const Checked = Data.taggedEnum<Checked>()

/** The hint cannot be acted on; `retryable` says whether looking again later may help. */
export class ConfirmationError extends Data.TaggedError("ConfirmationError")<{ readonly retryable: boolean; readonly reason: string }> {
  static retryable(reason: string): ConfirmationError {
    return new ConfirmationError({ retryable: true, reason })
  }
  static permanent(reason: string): ConfirmationError {
    return new ConfirmationError({ retryable: false, reason })
  }
}

const rpcFailure = (e: RpcError | UnknownNetwork) =>
  e._tag === "RpcError"
    ? new ConfirmationError({ retryable: e.retryable, reason: `rpc ${e.method} on ${e.network}[${e.endpoint}]: ${e.message}` })
    : ConfirmationError.retryable(`network ${e.network} has no RPC configuration`)

/**
 * Chain verification of payments: every event is only a hint, so the receipt and log are read from the chain,
 * checked against the checkout, and settled once deep enough (see Settlement). One transaction may pay several
 * orders: each is looked up by its own log. The processor, the janitor and the reconciler all come through here.
 */
export class PaymentConfirmation extends Effect.Service<PaymentConfirmation>()("billing/PaymentConfirmation", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const contracts = yield* Contracts
    const rpc = yield* Rpc
    const payments = yield* Payments
    const settlement = yield* Settlement
    const chainState = yield* ChainState

    const found = (orderId: string) =>
      Option.match({
        onNone: () => Effect.fail(ConfirmationError.permanent(`no checkout has order id ${orderId}`)),
        onSome: (p: PaymentRow) => Effect.succeed(p)
      })
    const paymentFor = (orderId: string) => Effect.flatMap(payments.byOrderId(orderId), found(orderId))
    /** Locked in the batch's transaction (Settlement.settleMint then reads it no more). */
    const lockedPaymentFor = (orderId: string) => Effect.flatMap(Effect.orDie(payments.lockByOrderId(orderId)), found(orderId))
    /** The order whose log this is: the transaction hash alone may name several. */
    const paymentAt = (txHash: string, logIndex: number) =>
      payments.findOne(sql.and([sql`t.tx_hash = ${txHash.toLowerCase()}`, sql`t.log_index = ${logIndex}`]))

    /** Depth of the receipt's block on the canonical chain, or none when a reorg replaced that block. */
    const depthOf = (network: string, receipt: TransactionReceipt, view: ChainView) =>
      Effect.gen(function*() {
        const block = yield* view.block(network, receipt.blockNumber)
        if (Option.isNone(block) || block.value.hash !== receipt.blockHash) return Option.none<bigint>()
        const head = yield* view.head(network)
        return Option.some(head - receipt.blockNumber + 1n)
      })
    const direct = directView(rpc)

    /**
     * The contract's log a hint names. A log index counts from the start of its block, so a transaction mined again
     * in another block (a reorg) has moved its logs: a hint from before still names the transaction's only pass
     * event, or among several the one of the order it claims (each is on chain; the claim only picks).
     */
    const namedLog = (receipt: TransactionReceipt, hint: Hint) => {
      const ours = receipt.logs.filter((l) => l.address.toLowerCase() === hint.contract.address)
      const exact = ours.find((l) => l.logIndex === hint.logIndex)
      if (exact !== undefined) return { log: exact, decoded: decodePassEvent(hint.contract.abi, exact) }
      const passes = ours.flatMap((log) => Option.match(decodePassEvent(hint.contract.abi, log), { onNone: () => [], onSome: (e) => [{ log, decoded: Option.some(e) }] }))
      if (passes.length === 1) return passes[0]
      const claimed = hint.orderId?.toLowerCase()
      return passes.find((p) => Option.exists(p.decoded, (e) => e.args.orderId.toLowerCase() === claimed))
    }
    /** Worth looking at again once the receipt's block has `confirmations` blocks. */
    const deepAt = (network: string, blockNumber: bigint, confirmations: number) => ({ network, head: blockNumber + BigInt(confirmations) - 1n })

    /** A final reverted transaction: an attempt on the order its calldata names, if the payer sent it to the contract. */
    const reverted = (hint: Hint, view: ChainView) =>
      Effect.gen(function*() {
        const { contract } = hint
        const found = yield* rpc.transaction(contract.network, hint.txHash)
        if (Option.isNone(found)) return yield* ConfirmationError.retryable(`transaction ${hint.txHash} not found on ${contract.network}`)
        const tx = found.value
        const orderId = tx.to?.toLowerCase() === contract.address ? mintOrderId(contract.abi, contract.mintMethod, tx.input) : Option.none()
        if (Option.isNone(orderId)) {
          return yield* ConfirmationError.permanent(`reverted transaction is not a ${contract.mintMethod} call of contract ${contract.slug}`)
        }
        if (hint.orderId !== undefined && hint.orderId.toLowerCase() !== orderId.value) {
          yield* Effect.logDebug("the hint names another order than the calldata; the calldata's is used").pipe(
            Effect.annotateLogs({ hinted_order_id: hint.orderId, order_id: orderId.value })
          )
        }
        const payment = yield* paymentFor(orderId.value)
        if (tx.from.toLowerCase() !== payment.wallet_address || tx.to?.toLowerCase() !== payment.contract_address) {
          return yield* ConfirmationError.permanent("reverted transaction was not sent by the payer to the contract")
        }
        const outcome = yield* settlement.recordAttempt({
          dedupeKey: `${payment.chain_id}:${hint.txHash}:reverted`,
          source: hint.source,
          paymentId: payment.id,
          txHash: hint.txHash,
          reason: "reverted",
          expiresAt: payment.expires_at
        })
        yield* view.defer(Effect.gen(function*() {
          if (outcome === "recorded") yield* Metric.increment(labelled(paymentAttemptsTotal, { outcome: "reverted", network: payment.network }))
          yield* Effect.logInfo(`payment attempt ${outcome}`).pipe(Effect.annotateLogs({ order_id: payment.order_id, user_id: payment.user_id }))
        }))
        return Checked.Done()
      })

    /**
     * The log is gone from the canonical chain (a reorg). Unless the transaction is back in another block, its order's
     * payment, if only seen, returns to pending, and if confirmed is reversed.
     */
    const dropped = (hint: Hint, view: ChainView): Effect.Effect<Checked, ConfirmationError | RpcError | UnknownNetwork> =>
      Effect.gen(function*() {
        const payment = yield* paymentAt(hint.txHash, hint.logIndex)
        if (Option.isNone(payment)) return Checked.Done()
        const { network } = hint.contract
        const receipt = yield* view.receipt(network, hint.txHash)
        // Mined again in another block: settled from there, so the payment records where it is now and a later reorg
        // is checked against that block (the listener may not report the new inclusion if it already scanned past).
        if (Option.isSome(receipt) && Option.isSome(yield* depthOf(network, receipt.value, view))) return yield* settle(hint, view)
        const p = payment.value
        if (p.status === "seen") yield* settlement.unsee(p.id, hint.txHash)
        if (p.status === "confirmed") {
          // Reversal is final: it needs positive evidence that the recorded block was replaced at its height by a
          // block that is itself final, not just a missing receipt (a lagging endpoint, or a reorg still in progress
          // that may yet include the transaction again, answers that too).
          const net = yield* rpc.networkConfig(network)
          const head = yield* view.head(network)
          const settled = p.block_number !== null && head - p.block_number + 1n >= BigInt(net.confirmations)
          const current = settled && p.block_hash !== null ? yield* Effect.either(view.block(network, p.block_number!)) : undefined
          // No block at that height is not proof of a replacement: the chain may be mid-reorg.
          const replaced = current !== undefined && Either.isRight(current) && Option.exists(current.right, (b) => b.hash !== p.block_hash)
          // Not final yet is waiting, not failing: it must not use up the message's deliveries.
          if (!replaced) {
            const why = current === undefined
              ? "not deep enough"
              : Either.isLeft(current)
              ? `block unreadable: ${current.left.message}`
              : Option.isNone(current.right) ? "no block at that height" : "block still the recorded one"
            return Checked.Later({
              reason: `reorg of ${hint.txHash} not yet final at block ${p.block_number} (${why})`,
              ...(p.block_number === null ? {} : { until: deepAt(network, p.block_number, net.confirmations) })
            })
          }
          // The node still has a receipt, in a block that is not canonical (checked above): it is mid-reorg or mined the
          // transaction again. A new inclusion is news that comes by itself; the listener's recheck covers the rest.
          if (Option.isSome(receipt)) return Checked.Done()
          const outcome = yield* settlement.reverse({
            source: hint.source,
            paymentId: p.id,
            chainId: p.chain_id,
            txHash: hint.txHash,
            logIndex: p.log_index ?? hint.logIndex
          })
          yield* view.defer(Effect.logWarning(`deep reorg: payment ${outcome}`).pipe(Effect.annotateLogs({ order_id: p.order_id, user_id: p.user_id })))
        }
        return Checked.Done()
      })

    /**
     * Where the payments that removals name were recorded: the blocks `dropped` compares, read before the batch (a
     * payment that moved since is read from the node inside, as before).
     */
    const recordedHeights = (targets: ReadonlyArray<Target>) =>
      Effect.forEach(targets.filter((t) => t.removed), (t) =>
        Effect.map(paymentAt(t.hint.txHash, t.hint.logIndex), (p) =>
          Option.match(Option.flatMap(p, (row) => Option.fromNullable(row.block_number)), {
            onNone: () => [],
            onSome: (blockNumber) => [{ network: t.hint.contract.network, blockNumber }]
          }))).pipe(Effect.map((found) => found.flat()))

    const settle = (hint: Hint, view: ChainView) =>
      Effect.gen(function*() {
        const { contract } = hint
        const net = yield* rpc.networkConfig(contract.network)
        const found = yield* view.receipt(contract.network, hint.txHash)
        if (Option.isNone(found)) {
          const seen = yield* paymentAt(hint.txHash, hint.logIndex)
          if (Option.exists(seen, (p) => p.status === "seen" || p.status === "confirmed")) return yield* dropped(hint, view)
          return yield* ConfirmationError.retryable(`transaction ${hint.txHash} not found on ${contract.network}`)
        }
        const receipt = found.value
        const depth = yield* depthOf(contract.network, receipt, view)
        if (Option.isNone(depth)) {
          // the next block may settle the reorg
          const head = yield* view.head(contract.network)
          return Checked.Later({ reason: "receipt block is no longer canonical", until: { network: contract.network, head: head + 1n } })
        }
        const deep = depth.value >= BigInt(net.confirmations)
        const until = deepAt(contract.network, receipt.blockNumber, net.confirmations)
        if (receipt.status === "reverted") return deep ? yield* reverted(hint, view) : Checked.Later({ reason: "reverted transaction not final yet", until })

        const named = namedLog(receipt, hint)
        if (named === undefined) return yield* ConfirmationError.permanent(`no log of contract ${contract.slug} at index ${hint.logIndex}`)
        const { decoded, log } = named
        if (Option.isNone(decoded)) return yield* ConfirmationError.permanent("log is neither Minted nor Burned")
        const payment = yield* lockedPaymentFor(decoded.value.args.orderId)
        // The payment's own chain id, never the current config's: its keys must not move if the config ever does.
        // Keyed per inclusion (block hash): the same transaction mined again after a reorg is news, not a duplicate.
        const dedupeKey = `${payment.chain_id}:${receipt.transactionHash}:${log.logIndex}:${receipt.blockHash}`
        const logRef = {
          txHash: receipt.transactionHash,
          logIndex: log.logIndex,
          orderId: decoded.value.args.orderId,
          blockNumber: receipt.blockNumber,
          blockHash: receipt.blockHash
        }

        if (decoded.value.eventName === "Burned") {
          if (!deep) return Checked.Later({ reason: "burn not final yet", until })
          yield* settlement.burn({ dedupeKey, source: hint.source, paymentId: payment.id })
          return Checked.Done()
        }
        const minted = decoded.value.args
        if (!deep) {
          yield* settlement.markSeen(payment.id, logRef)
          return Checked.Later({ reason: `${depth.value} of ${net.confirmations} confirmations`, until })
        }
        const block = yield* view.block(contract.network, receipt.blockNumber)
        if (Option.isNone(block)) {
          return Checked.Later({ reason: "receipt block is no longer canonical", until: { network: contract.network, head: receipt.blockNumber + 1n } })
        }
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
          blockTimestamp: block.value.timestamp
        })
        const outcome = yield* settlement.settleMint({
          dedupeKey,
          source: hint.source,
          paymentId: payment.id,
          locked: payment,
          verdict,
          log: { ...logRef, network: contract.network, chainId: payment.chain_id, token, amount: minted.amount },
          stillCanonical: Effect.map(rpc.blockIfAny(contract.network, receipt.blockNumber), Option.exists((b) => b.hash === receipt.blockHash))
        })
        if (outcome === "stale") {
          const head = yield* view.head(contract.network)
          return Checked.Later({ reason: `block ${receipt.blockNumber} was replaced since the receipt was read`, until: { network: contract.network, head: head + 1n } })
        }
        yield* view.defer(Effect.gen(function*() {
          yield* Effect.logInfo(`payment ${outcome}`).pipe(Effect.annotateLogs({ order_id: payment.order_id, user_id: payment.user_id }))
          if (outcome === "confirmed" || outcome === "failed") {
            yield* Metric.increment(labelled(transactionsTotal, { status: outcome, network: payment.network, token: payment.token }))
          }
          if (outcome === "confirmed") {
            const now = yield* Clock.currentTimeMillis
            yield* Metric.update(webhookToConfirmationSeconds, (now - payment.created_at.getTime()) / 1000)
          }
        }))
        return Checked.Done()
      })

    const networkFailed = (e: RpcError | UnknownNetwork) =>
      Effect.zipRight(Metric.increment(labelled(transactionsNetworkFailedTotal, { network: e.network })), Effect.fail(rpcFailure(e)))

    const check = (hint: Hint, removed: boolean, view: ChainView = direct) =>
      (removed ? dropped(hint, view) : settle(hint, view)).pipe(
        Effect.catchTags({ RpcError: networkFailed, UnknownNetwork: networkFailed }),
        Effect.annotateLogs({ tx_hash: hint.txHash, contract_slug: hint.contract.slug }),
        Effect.withSpan("PaymentConfirmation.check", { attributes: { tx_hash: hint.txHash, source: hint.source } })
      )

    const unknownContract = (what: string) => Effect.fail(ConfirmationError.permanent(`contract ${what} is not registered`))
    const registered = (slug: string) => contracts.get(slug).pipe(Effect.catchTag("ContractNotFound", () => unknownContract(slug)))

    const webhookTarget = (q: QueuedWebhook, contract: Contract): Target => ({
      hint: {
        source: `webhook:${q.webhook_id}`,
        contract,
        txHash: q.event.tx_hash as `0x${string}`,
        logIndex: q.event.log_index,
        orderId: q.event.order_id
      },
      removed: false
    })
    const chainContract = (e: ChainEvent) =>
      Effect.flatMap(contracts.findByAddress(e.network, e.contract), Option.match({ onNone: () => unknownContract(`${e.contract} on ${e.network}`), onSome: Effect.succeed }))
    const chainTarget = (e: ChainEvent, contract: Contract): Target => ({
      hint: {
        source: `chain:${e.chain_id}:${e.block_hash}`,
        contract,
        txHash: e.tx_hash as `0x${string}`,
        logIndex: e.log_index,
        orderId: undefined
      },
      removed: e.removed
    })
    /** Each message's target, its contract looked up once per distinct key of the batch. */
    const targets = <M>(messages: ReadonlyArray<M>, key: (m: M) => string, lookup: (m: M) => Effect.Effect<Contract, ConfirmationError>, target: (m: M, c: Contract) => Target) =>
      Effect.gen(function*() {
        const found = new Map<string, Either.Either<Contract, ConfirmationError>>()
        for (const m of messages) if (!found.has(key(m))) found.set(key(m), yield* Effect.either(lookup(m)))
        return messages.map((m) => Either.map(found.get(key(m))!, (c) => target(m, c)))
      })
    const checkTarget = (t: Target, view?: ChainView) => check(t.hint, t.removed, view)
    const batch = confirmBatch(sql, rpc, checkTarget, {
      heights: recordedHeights,
      hold: (targets) => chainState.holdingCursors(targets.map((t) => t.hint.contract.network))
    })

    /** A relayer's webhook. */
    const webhook = (q: QueuedWebhook) => Effect.flatMap(registered(q.event.contract), (c) => checkTarget(webhookTarget(q, c)))
    /** A log the ChainListener read, or one a reorg removed. */
    const chainEvent = (e: ChainEvent) => Effect.flatMap(chainContract(e), (c) => checkTarget(chainTarget(e, c)))
    /** Webhooks of one batch, confirmed together (see confirmBatch). */
    const webhooks = (qs: ReadonlyArray<QueuedWebhook>, traces?: ReadonlyArray<Tracing>) =>
      Effect.flatMap(targets(qs, (q) => q.event.contract, (q) => registered(q.event.contract), webhookTarget), (entries) => batch(entries, traces))
    const chainEvents = (es: ReadonlyArray<ChainEvent>, traces?: ReadonlyArray<Tracing>) =>
      Effect.flatMap(targets(es, (e) => `${e.network}:${e.contract.toLowerCase()}`, chainContract, chainTarget), (entries) => batch(entries, traces))

    /** A payment stuck in pending/seen although its transaction is known: look at its log again. */
    const recheck = (p: PaymentRow, source: string) => {
      const txHash = p.tx_hash
      if (txHash === null) return Effect.succeed(Checked.Done())
      return Effect.flatMap(registered(p.contract_slug), (contract) =>
        check({ source, contract, txHash: txHash as `0x${string}`, logIndex: p.log_index ?? 0, orderId: p.order_id }, false))
    }

    return { webhook, chainEvent, webhooks, chainEvents, recheck } as const
  }),
  dependencies: [Contracts.Default, Payments.Default, Settlement.Default, ChainState.Default]
}) {}
