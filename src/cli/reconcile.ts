import { Command, Options } from "@effect/cli"
import { Console, Data, Duration, Effect, Layer, Option } from "effect"
import { PgLive } from "../../services/Database.ts"
import { Nats } from "../../services/Nats.ts"
import { type ReconcileReport, Reconciler } from "../../services/Reconciler.ts"
import { Rpc } from "../../services/Rpc.ts"
import { PaymentProcessorLive } from "../../streams/PaymentProcessor.ts"

const network = Options.text("network").pipe(Options.withDescription("network name, as in crypto_config"))
const fromBlock = Options.integer("from-block").pipe(Options.withDescription("first block (default 0)"), Options.optional)
const toBlock = Options.integer("to-block").pipe(Options.withDescription("last block (default: the head)"), Options.optional)
const json = Options.boolean("json").pipe(Options.withDescription("print the summary as JSON"))
const wait = Options.integer("wait").pipe(
  Options.withDescription("seconds to wait for re-published events to be settled"),
  Options.withDefault(30)
)

export class MismatchesRemain extends Data.TaggedError("MismatchesRemain")<{ readonly count: number }> {
  override get message() {
    return `${this.count} mismatch(es) between the ledger and the chain remain`
  }
}

/** A progress bar on a terminal (stderr), nothing otherwise. */
const progress = (enabled: boolean) => (done: bigint, total: bigint) =>
  enabled
    ? Effect.sync(() => {
      const ratio = total === 0n ? 1 : Number((done * 1000n) / total) / 1000
      const width = 30
      const filled = Math.round(ratio * width)
      process.stderr.write(`\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(ratio * 100).toFixed(0)}% blocks ${done}/${total}`)
      if (done >= total) process.stderr.write("\n")
    })
    : Effect.void

const human = (r: ReconcileReport) =>
  [
    `network ${r.network}, blocks ${r.from_block}..${r.to_block}: ${r.scanned_logs} contract log(s), ${r.republished} re-published`,
    r.mismatches.length === 0 ? "ledger and chain agree" : `${r.mismatches.length} mismatch(es):`,
    ...r.mismatches.map((m) => `  ${m.kind.padEnd(13)} order ${m.order_id ?? "-"} tx ${m.tx_hash ?? "-"}: ${m.detail}`)
  ].join("\n")

/** The playbook's `contracts_listener --reconcile`: the payment processor runs in this process too, so repairs land. */
export const reconcile = Command.make("reconcile", { network, fromBlock, toBlock, json, wait }, (o) =>
  Effect.gen(function*() {
    const reconciler = yield* Reconciler
    const report = yield* reconciler.run({
      network: o.network,
      ...(Option.isSome(o.fromBlock) ? { fromBlock: BigInt(o.fromBlock.value) } : {}),
      ...(Option.isSome(o.toBlock) ? { toBlock: BigInt(o.toBlock.value) } : {}),
      wait: Duration.seconds(o.wait),
      onProgress: progress(!o.json && process.stderr.isTTY === true)
    })
    yield* Console.log(o.json ? JSON.stringify(report) : human(report))
    if (report.mismatches.length > 0) return yield* new MismatchesRemain({ count: report.mismatches.length })
  }).pipe(
    Effect.provide(Layer.mergeAll(Reconciler.Default, PaymentProcessorLive).pipe(
      Layer.provideMerge(Layer.mergeAll(Nats.Default, Rpc.Default)),
      Layer.provideMerge(PgLive)
    ))
  )
).pipe(Command.withDescription("compare the chain with the ledger over a block range, re-publish what is missing, report the rest"))
