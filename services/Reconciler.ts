import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import type { Log } from "viem"
import { decodePassEvent } from "../src/contracts/PassEvents.ts"
import type { ChainEvent } from "../src/domain/Events.ts"
import { ChainLogs } from "./ChainLogs.ts"
import { Contracts } from "./Contracts.ts"
import { Nats } from "./Nats.ts"
import { PaymentConfirmation } from "./PaymentConfirmation.ts"
import { Payments } from "./Payments.ts"
import { Rpc } from "./Rpc.ts"
import { ChainStream } from "./StreamCodecs.ts"
import { decodeRows } from "./Rows.ts"

const decodeTotal = decodeRows(Schema.Struct({ total: Schema.BigInt }))
const decodeConfirmed = decodeRows(Schema.Struct({ order_id: Schema.String, tx_hash: Schema.String, log_index: Schema.Number }))

export type MismatchKind = "missing" | "extra" | "wrong_amount" | "wrong_status" | "unknown_order"

export interface Mismatch {
  readonly kind: MismatchKind
  readonly order_id: string | null
  readonly tx_hash: string | null
  readonly detail: string
}

export interface ReconcileReport {
  readonly network: string
  readonly from_block: string
  readonly to_block: string
  readonly scanned_logs: number
  readonly republished: number
  readonly mismatches: ReadonlyArray<Mismatch>
}

export interface ReconcileOptions {
  readonly network: string
  readonly fromBlock?: bigint
  readonly toBlock?: bigint
  /** How long to wait for re-published events to be processed before the final comparison. */
  readonly wait: Duration.DurationInput
  readonly onProgress?: (done: bigint, total: bigint) => Effect.Effect<void>
}

/**
 * Compares the chain with the ledger over a block range: every final Minted log of a registered contract must
 * have taken effect exactly as the chain says. What is missing is re-published to the chain stream (the processor
 * settles it through its usual path); a payment left pending or seen is re-checked through PaymentConfirmation, as
 * the janitor does; what still disagrees afterwards is reported.
 */
export class Reconciler extends Effect.Service<Reconciler>()("billing/Reconciler", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rpc = yield* Rpc
    const chainLogs = yield* ChainLogs
    const contracts = yield* Contracts
    const payments = yield* Payments
    const nats = yield* Nats
    const confirmation = yield* PaymentConfirmation

    const treasuryReceived = (paymentId: string, network: string) =>
      sql`SELECT coalesce(sum(p.amount), 0)::text AS total FROM ledger_postings p
        JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
        WHERE t.payment_id = ${paymentId} AND t.kind = 'payment' AND p.account = ${`treasury:${network}`}`.pipe(
        Effect.orDie,
        Effect.flatMap(decodeTotal),
        Effect.map((rows) => rows[0]?.total ?? 0n)
      )

    const processed = (key: string) =>
      Effect.map(sql`SELECT 1 FROM processed_events WHERE dedupe_key = ${key}`.pipe(Effect.orDie), (rows) => rows.length > 0)

    const run = Effect.fn("Reconciler.run")(function*(options: ReconcileOptions) {
      const net = yield* rpc.networkConfig(options.network)
      const head = yield* rpc.blockNumber(options.network)
      const to = options.toBlock ?? head
      const from = options.fromBlock ?? 0n
      const final = head - BigInt(net.confirmations) + 1n
      const registered = (yield* contracts.listAll).filter((c) => c.network === options.network)
      const logs = yield* chainLogs.scan(options.network, registered.map((c) => c.address), from, to, 2000n, options.onProgress)
      const minted = logs.flatMap((log) => {
        const contract = registered.find((c) => c.address === log.address.toLowerCase())
        const event = contract ? decodePassEvent(contract.abi, log) : Option.none()
        return Option.isSome(event) && event.value.eventName === "Minted" && log.blockNumber! <= final
          ? [{ log, args: event.value.args }]
          : []
      })
      // Keyed by the payment's own chain id, as the processor keys it: never by the current config.
      const keyOf = (chainId: number, log: Log) => `${chainId}:${log.transactionHash}:${log.logIndex}:${log.blockHash}`

      const compare = Effect.fn("Reconciler.compare")(function*(republish: boolean) {
        const found: Array<Mismatch> = []
        const resent: Array<string> = []
        const rechecked: Array<string> = []
        for (const { args, log } of minted) {
          const mismatch = (kind: MismatchKind, detail: string) =>
            found.push({ kind, order_id: args.orderId, tx_hash: log.transactionHash, detail })
          const payment = yield* payments.byOrderId(args.orderId)
          if (Option.isNone(payment)) {
            mismatch("unknown_order", "a Minted event for an order no checkout issued")
            continue
          }
          const key = keyOf(payment.value.chain_id, log)
          if (!(yield* processed(key))) {
            mismatch("missing", "on chain, not in the ledger")
            if (republish) {
              const event: ChainEvent = {
                source: "chain",
                network: options.network,
                chain_id: net.chain_id,
                contract: log.address.toLowerCase(),
                event: "Minted",
                tx_hash: log.transactionHash!,
                log_index: log.logIndex!,
                block_number: Number(log.blockNumber),
                block_hash: log.blockHash!,
                removed: false
              }
              yield* nats.publishMessage(ChainStream, event, { msgIdSuffix: ":reconcile" })
              resent.push(key)
            }
            continue
          }
          // By payment, not by this log's ledger id: a reorg may have moved the log to another index after posting.
          const received = yield* treasuryReceived(payment.value.id, options.network)
          if (received !== args.amount) mismatch("wrong_amount", `chain ${args.amount}, ledger ${received}`)
          const p = payment.value
          if (p.tx_hash === log.transactionHash && (p.status === "pending" || p.status === "seen")) {
            mismatch("wrong_status", `processed on chain, payment still ${p.status}`)
            if (republish) {
              // What the check cannot settle stays a mismatch in the second comparison.
              yield* confirmation.recheck(p, `reconcile:${p.id}`).pipe(
                Effect.catchTag("ConfirmationError", (e) =>
                  Effect.logWarning(`re-check of payment ${p.id} failed: ${e.reason}`).pipe(Effect.annotateLogs({ order_id: p.order_id })))
              )
              rechecked.push(p.id)
            }
          }
        }
        // The other way: confirmed in the ledger, in this range, but no such log on the chain.
        const onChain = new Set(minted.map(({ log }) => `${log.transactionHash}:${log.logIndex}`))
        const confirmed = yield* sql`SELECT order_id, tx_hash, log_index
          FROM payment_transactions WHERE network = ${options.network} AND status = 'confirmed'
            AND block_number BETWEEN ${from.toString()} AND ${(to < final ? to : final).toString()}`.pipe(Effect.orDie, Effect.flatMap(decodeConfirmed))
        for (const row of confirmed) {
          if (!onChain.has(`${row.tx_hash}:${row.log_index}`)) {
            found.push({ kind: "extra", order_id: row.order_id, tx_hash: row.tx_hash, detail: "confirmed in the ledger, no such log on the canonical chain" })
          }
        }
        return { found, resent, rechecked }
      })

      const first = yield* compare(true)
      if (first.resent.length === 0 && first.rechecked.length === 0) {
        return { network: options.network, from_block: from.toString(), to_block: to.toString(), scanned_logs: logs.length, republished: 0, mismatches: first.found } satisfies ReconcileReport
      }
      yield* Effect.forEach(first.resent, (key) => processed(key).pipe(Effect.filterOrFail((ok) => ok)), { discard: true }).pipe(
        Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo(options.wait))),
        Effect.catchAll(() => Effect.logWarning("re-published events not all processed in time"))
      )
      const second = yield* compare(false)
      return {
        network: options.network,
        from_block: from.toString(),
        to_block: to.toString(),
        scanned_logs: logs.length,
        republished: first.resent.length,
        mismatches: second.found
      } satisfies ReconcileReport
    })

    return { run } as const
  }),
  dependencies: [ChainLogs.Default, Contracts.Default, Payments.Default, PaymentConfirmation.Default]
}) {}
