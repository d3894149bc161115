import { Config, Duration, Effect, Option, Ref, Stream, SubscriptionRef } from "effect"
import { Rpc } from "./Rpc.ts"

export const ChainHeadsConfig = Config.all({
  /** How often the shared head poll asks each network with waiting payments for its block number. */
  poll: Config.duration("BILLING_CHAIN_HEAD_POLL").pipe(Config.withDefault(Duration.millis(500)))
})

/**
 * The latest head per network, one watcher for the process: payments not deep enough yet wait here for a head,
 * so every waiting payment is woken by the same new block instead of each polling on a timer of its own. The
 * shared poll runs only while something waits (tests count RPC traffic); heads read elsewhere are fed in too.
 */
export class ChainHeads extends Effect.Service<ChainHeads>()("billing/ChainHeads", {
  scoped: Effect.gen(function*() {
    const rpc = yield* Rpc
    const config = yield* ChainHeadsConfig
    const heads = yield* SubscriptionRef.make<ReadonlyMap<string, bigint>>(new Map())
    const waiting = yield* Ref.make<ReadonlyMap<string, number>>(new Map())
    const someoneWaits = yield* Effect.makeLatch(false)

    /** A head read anywhere (a poll, a batch of confirmations): the latest reading wins, a reorg may lower it. */
    const observe = (network: string, head: bigint) =>
      SubscriptionRef.update(heads, (m) => (m.get(network) === head ? m : new Map(m).set(network, head)))

    const count = (network: string, delta: number) =>
      Ref.updateAndGet(waiting, (m) => {
        const next = new Map(m)
        const n = (m.get(network) ?? 0) + delta
        if (n > 0) next.set(network, n)
        else next.delete(network)
        return next
      }).pipe(Effect.flatMap((m) => (m.size > 0 ? someoneWaits.open : someoneWaits.close)))

    const pollOnce = Effect.gen(function*() {
      const networks = [...(yield* Ref.get(waiting)).keys()]
      yield* Effect.forEach(networks, (network) =>
        rpc.blockNumber(network).pipe(
          Effect.flatMap((head) => observe(network, head)),
          Effect.catchAll((e) => Effect.logWarning("head poll failed; trying again next tick").pipe(Effect.annotateLogs({ network, error: e._tag })))
        ), { concurrency: "unbounded", discard: true })
    })
    yield* Effect.forkScoped(Effect.forever(someoneWaits.await.pipe(Effect.zipRight(pollOnce), Effect.zipRight(Effect.sleep(config.poll)))))

    /** Returns once the network's head is at least `head` (counted as waiting, so the shared poll runs meanwhile). */
    const awaitHead = (network: string, head: bigint) =>
      Effect.acquireUseRelease(
        count(network, 1),
        () => heads.changes.pipe(Stream.filter((m) => (m.get(network) ?? -1n) >= head), Stream.take(1), Stream.runDrain),
        () => count(network, -1)
      )

    const latest = (network: string) => Effect.map(SubscriptionRef.get(heads), (m) => Option.fromNullable(m.get(network)))

    return { observe, awaitHead, latest } as const
  })
}) {}
