import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { type Abi, decodeEventLog, erc20Abi } from "viem"
import { Address, NATIVE } from "../src/domain/Ids.ts"
import { RefundRejected, type RefundRequest, type RefundView } from "../src/domain/Refund.ts"
import { type Contract, Contracts } from "./Contracts.ts"
import { Ledger, refundOf } from "./Ledger.ts"
import { Notifications } from "./Notifications.ts"
import { type PaymentRow, Payments } from "./Payments.ts"
import { Rpc } from "./Rpc.ts"
import { decodeRow, transactional } from "./Rows.ts"
import { Subscriptions } from "./Subscriptions.ts"

const reject = (reason: RefundRejected["reason"], message: string) => Effect.fail(new RefundRejected({ reason, message }))

const Claimed = Schema.UndefinedOr(Schema.Struct({ payment_id: Schema.String }))
const decodeClaimed = decodeRow(Claimed)
const decodeAddress = Schema.decodeUnknown(Address)

/**
 * finance_ops records a refund that was paid on chain. The transaction is verified like a payment: on the payment's
 * network, successful, at least `confirmations` deep on the canonical chain, moving exactly what the payment paid
 * (`paid_amount`: only whole refunds) of its token from the contract's `treasury()` to the payer's wallet. Then, in
 * one SQL transaction: the payment's live posting is taken back as a `refund` ledger transaction, the payment moves
 * to `refunded`, the subscription loses exactly what the payment bought (and any credit it funded), the payer and
 * finance_ops are told. The refund transaction is claimed once: repeating the request answers the same, and the
 * same transaction cannot refund another payment.
 */
export class Refunds extends Effect.Service<Refunds>()("billing/Refunds", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rpc = yield* Rpc
    const contracts = yield* Contracts
    const payments = yield* Payments
    const ledger = yield* Ledger
    const subscriptions = yield* Subscriptions
    const notifications = yield* Notifications

    const keyOf = (p: PaymentRow, txHash: string) => `refund:${p.chain_id}:${txHash.toLowerCase()}`

    const viewOf = (p: PaymentRow, txHash: string): RefundView => ({
      transaction_id: p.id,
      status: p.status,
      refund_tx_hash: txHash.toLowerCase(),
      amount: (p.paid_amount ?? 0n).toString(),
      network: p.network,
      token: p.token
    })

    const treasuryOf = (contract: Contract) =>
      rpc.readContract(contract.network, { address: contract.address, abi: contract.abi as Abi, functionName: "treasury" }).pipe(
        Effect.flatMap(decodeAddress),
        Effect.catchAll(() => reject("refund_unverified", `contract ${contract.slug} does not tell its treasury (treasury())`))
      )

    /** The chain's word on the refund transaction, or a rejection saying what does not hold. */
    const verify = (p: PaymentRow, txHash: `0x${string}`, paid: bigint) =>
      Effect.gen(function*() {
        const net = yield* rpc.networkConfig(p.network)
        const found = yield* rpc.receipt(p.network, txHash)
        if (Option.isNone(found)) return yield* reject("refund_unverified", `transaction ${txHash} is not on ${p.network}`)
        const receipt = found.value
        if (receipt.status !== "success") return yield* reject("refund_unverified", `transaction ${txHash} reverted`)
        const block = yield* rpc.block(p.network, receipt.blockNumber)
        const head = yield* rpc.blockNumber(p.network)
        const depth = head - receipt.blockNumber + 1n
        if (block.hash !== receipt.blockHash || depth < BigInt(net.confirmations)) {
          return yield* reject("refund_unverified", `transaction ${txHash} is not final yet (${depth} of ${net.confirmations} confirmations)`)
        }
        const contract = yield* contracts.get(p.contract_slug).pipe(
          Effect.catchTag("ContractNotFound", () => reject("refund_unverified", `contract ${p.contract_slug} is not registered`))
        )
        const treasury = yield* treasuryOf(contract)
        const moved = p.token === NATIVE
          ? Option.exists(yield* rpc.transaction(p.network, txHash), (tx) =>
            tx.from.toLowerCase() === treasury && tx.to?.toLowerCase() === p.wallet_address && tx.value === paid)
          : receipt.logs.some((log) => {
            if (log.address.toLowerCase() !== p.token) return false
            try {
              const t = decodeEventLog({ abi: erc20Abi, eventName: "Transfer", data: log.data, topics: log.topics })
              return t.args.from.toLowerCase() === treasury && t.args.to.toLowerCase() === p.wallet_address && t.args.value === paid
            } catch {
              return false
            }
          })
        if (!moved) {
          return yield* reject("refund_unverified", `transaction ${txHash} does not pay ${paid} of ${p.token} from the treasury to the payer`)
        }
      }).pipe(
        Effect.catchTags({
          RpcError: (e) => reject("refund_unverified", `the chain could not be read (${e.method} on ${e.network})`),
          UnknownNetwork: (e) => reject("refund_unverified", `network ${e.network} has no RPC configuration`)
        })
      )

    const claimedBy = (key: string) =>
      sql`SELECT payment_id::text AS payment_id FROM processed_events WHERE dedupe_key = ${key}`.pipe(
        Effect.flatMap((rows) => decodeClaimed(rows[0]))
      )

    /**
     * A refund whose transaction has been verified on chain, in one SQL transaction: claimed once, the payment's live
     * posting taken back as `refund`, the payment `refunded`, the subscription's grant revoked, payer and finance_ops told.
     */
    const applyVerified = Effect.fn("Refunds.applyVerified")(function*(paymentId: string, req: RefundRequest, actor: string) {
      const p = yield* payments.lock(paymentId)
      const key = keyOf(p, req.tx_hash)
      const claimed = yield* sql`INSERT INTO processed_events (dedupe_key, source, payment_id, outcome)
        VALUES (${key}, ${`finance_ops:${actor}`}, ${p.id}, 'refunded') ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key`
      if (claimed.length === 0) return yield* reject("refund_tx_used", `transaction ${req.tx_hash} was just used for a refund`)
      if (p.status !== "confirmed") return yield* reject("payment_not_refundable", `payment ${paymentId} is ${p.status}`)
      const live = yield* ledger.unreversedPaymentOf(p.id)
      if (live === undefined) return yield* Effect.dieMessage(`confirmed payment ${p.id} has no live posting`)
      // What the subscription loses first: revoking a payment that funded an upgrade's credit takes that credit back.
      yield* subscriptions.revokePayment(p.id).pipe(Effect.orDie)
      const original = yield* ledger.postingsOf(live)
      yield* ledger.post({
        id: refundOf(live),
        paymentId: p.id,
        kind: "refund",
        postings: original.map((x) => ({ ...x, amount: -x.amount }))
      })
      yield* payments.transition({
        paymentId: p.id,
        from: "confirmed",
        to: "refunded",
        actor,
        details: { refund_tx_hash: req.tx_hash.toLowerCase(), reason: req.reason, amount: p.paid_amount }
      }).pipe(Effect.orDie)
      const view = viewOf({ ...p, status: "refunded" }, req.tx_hash)
      const details = { transaction_id: p.id, plan_slug: p.plan_slug, amount: view.amount, token: p.token, network: p.network, refund_tx_hash: view.refund_tx_hash }
      yield* notifications.notify(p.user_id, "payment.refunded", details)
      yield* notifications.notifyFinanceOps("payment.refunded", { ...details, user_id: p.user_id, actor, reason: req.reason })
      return view
    }, transactional(sql))

    const record = Effect.fn("Refunds.record")(function*(paymentId: string, req: RefundRequest, actor: string) {
      const before = yield* payments.get(paymentId)
      const earlier = yield* claimedBy(keyOf(before, req.tx_hash)).pipe(Effect.orDie)
      if (earlier !== undefined) {
        return earlier.payment_id === paymentId
          ? viewOf(before, req.tx_hash)
          : yield* reject("refund_tx_used", `transaction ${req.tx_hash} already refunded another payment`)
      }
      if (before.status !== "confirmed" || before.paid_amount === null) {
        return yield* reject("payment_not_refundable", `payment ${paymentId} is ${before.status}: only a confirmed payment can be refunded`)
      }
      yield* verify(before, req.tx_hash as `0x${string}`, before.paid_amount)

      return yield* applyVerified(paymentId, req, actor)
    })

    return { record, applyVerified } as const
  }),
  dependencies: [Contracts.Default, Payments.Default, Ledger.Default, Subscriptions.Default, Notifications.Default]
}) {}
