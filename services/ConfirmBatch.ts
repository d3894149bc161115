import type { SqlClient } from "@effect/sql"
import { Cause, Effect, Either, Exit } from "effect"
import { type ChainView, type Height, prefetchedView } from "./ChainView.ts"
import type { Checked, ConfirmationError, Hint } from "./PaymentConfirmation.ts"
import { collected } from "./BatchWrites.ts"
import type { Rpc } from "./Rpc.ts"

/** One event to check: a hint, and whether a reorg removed its log. */
export interface Target {
  readonly hint: Hint
  readonly removed: boolean
}

/** Runs an effect in some trace (a message's remote parent span). */
export type Tracing = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>

export type ItemResult = Exit.Exit<Checked, ConfirmationError>

export interface BatchResult {
  /** One per entry, in order. */
  readonly results: ReadonlyArray<ItemResult>
  /** The heads the batch read, per network. */
  readonly heads: ReadonlyMap<string, bigint>
}

/**
 * A batch of events confirmed together: their chain reads made together before any SQL (ChainView), then every check
 * in ONE SQL transaction, so a batch costs one commit instead of one per payment. A defect or SQL failure anywhere rolls the
 * whole batch back and each event is then checked alone, in its own transactions, so a poison event fails by itself.
 * An event's own typed failure (not found, not ours) is its result and does not fail the batch: its writes were in a
 * savepoint of their own (Rows.transactional), so they are rolled back alone.
 */
export const confirmBatch = (
  sql: SqlClient.SqlClient,
  rpc: Rpc,
  check: (target: Target, view: ChainView) => Effect.Effect<Checked, ConfirmationError>,
  options: {
    /** Blocks the checks will ask for besides their receipts' (read before the transaction too). */
    readonly heights?: (targets: ReadonlyArray<Target>) => Effect.Effect<ReadonlyArray<Height>>
    /** Wraps the checks inside the transaction, outside their savepoints (locks the whole batch holds). */
    readonly hold?: (targets: ReadonlyArray<Target>) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  } = {}
) =>
(
  entries: ReadonlyArray<Either.Either<Target, ConfirmationError>>,
  /** Per entry: runs its check in the trace of the message it came from. */
  traces: ReadonlyArray<Tracing> = []
): Effect.Effect<BatchResult> =>
  Effect.gen(function*() {
    const targets = entries.flatMap((e) => (Either.isRight(e) ? [e.right] : []))
    const deferred: Array<Effect.Effect<void>> = []
    const wanted = targets.map((t) => ({ network: t.hint.contract.network, txHash: t.hint.txHash }))
    const view = yield* prefetchedView(rpc, wanted, deferred, options.heights === undefined ? [] : yield* options.heights(targets))
    const hold = options.hold?.(targets) ?? ((self) => self)
    const failed = (e: ConfirmationError): ItemResult => Exit.fail(e)

    const traced = (i: number) => traces[i] ?? ((effect) => effect)
    const checks = Effect.forEach(entries, (e, i) =>
      Either.isLeft(e) ? Effect.succeed(failed(e.left)) : Effect.either(traced(i)(check(e.right, view))).pipe(
        Effect.map(Either.match({ onLeft: failed, onRight: (c): ItemResult => Exit.succeed(c) }))
      ))
    // each check's own transaction is a savepoint in the batch's (a typed failure leaves no partial writes); their
    // append-only rows (audit, notifications, outcomes, outbox) are a few multi-row statements at the end
    const together = yield* sql.withTransaction(collected(sql)(hold(checks))).pipe(Effect.exit)
    if (Exit.isSuccess(together)) {
      yield* Effect.forEach(deferred, (effect) => effect, { discard: true })
      return { results: together.value, heads: view.heads }
    }
    if (Cause.isInterruptedOnly(together.cause)) return yield* Effect.interrupt
    yield* Effect.logWarning("batch transaction failed; checking its events one by one", together.cause)
    const alone: ChainView = { ...view, defer: (effect) => effect }
    const results = yield* Effect.forEach(entries, (e, i) => Either.isLeft(e) ? Effect.succeed(failed(e.left)) : Effect.exit(traced(i)(check(e.right, alone))))
    return { results, heads: view.heads }
  }).pipe(Effect.withSpan("PaymentConfirmation.batch", { attributes: { size: entries.length } }))
