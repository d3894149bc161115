import { Clock, Duration, Effect, Metric, Option, Ref } from "effect"
import type { Cursor } from "../services/ChainState.ts"
import { chainShortHeadBlocks, chainShortHeadTotal, labelled } from "../services/Metrics.ts"
import { Rpc } from "../services/Rpc.ts"

export type ShortChainProof = "endpoints" | "timeout"

/**
 * A head below the listener's cursor is a rollback or a node that lost blocks. One endpoint's word is not enough
 * to rewind on: a second endpoint must also answer a head below the cursor, or the condition must last `timeout`.
 * Until then the listener holds its cursor. One guard per listener; its timer lives as long as the listener.
 */
export const makeShortChainGuard = (network: string, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const rpc = yield* Rpc
    const since = yield* Ref.make(Option.none<number>())
    const gauge = labelled(chainShortHeadBlocks, { network })

    /** How the short head is confirmed, if it is yet; the first sighting starts the timer. */
    const confirmed = (head: bigint, cursor: Cursor) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const previous = yield* Ref.get(since)
        const started = Option.getOrElse(previous, () => now)
        const annotations = { network, head: head.toString(), cursor_block: cursor.blockNumber.toString() }
        if (Option.isNone(previous)) {
          yield* Ref.set(since, Option.some(now))
          yield* Metric.increment(labelled(chainShortHeadTotal, { network }))
          yield* Effect.logWarning("chain head below the listener's cursor: a possible reorg, holding until confirmed").pipe(
            Effect.annotateLogs(annotations)
          )
        }
        yield* Metric.set(gauge, Number(cursor.blockNumber - head))
        const timedOut = now - started >= Duration.toMillis(timeout)
        // Two endpoints below the cursor: one node that lost blocks cannot be the only witness.
        const below = timedOut ? 0 : (yield* rpc.heads(network)).filter((h) => h.blockNumber < cursor.blockNumber).length
        const proof: Option.Option<ShortChainProof> = timedOut
          ? Option.some("timeout")
          : below >= 2 ? Option.some("endpoints") : Option.none()
        if (Option.isSome(proof)) {
          yield* Effect.logWarning("short chain confirmed: rewinding").pipe(
            Effect.annotateLogs({ ...annotations, proof: proof.value, endpoints_below: below })
          )
        }
        return proof
      })

    /** The head is at or above the cursor again (or the rewind is done): the next short head starts a new timer. */
    const clear = Effect.zipRight(Ref.set(since, Option.none()), Metric.set(gauge, 0))

    return { confirmed, clear } as const
  })
