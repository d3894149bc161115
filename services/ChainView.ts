import { Effect, Option } from "effect"
import type { TransactionReceipt } from "viem"
import type { Rpc } from "./Rpc.ts"
import type { RpcError, UnknownNetwork } from "./RpcError.ts"

type Block = Effect.Effect.Success<ReturnType<Rpc["block"]>>

/**
 * The chain reads a confirmation makes, and where its after-commit effects (logs, metrics) go. `direct` asks the
 * node each time; `prefetched` reads a batch's receipts together, then one head per network and each distinct block
 * once (JSON-RPC batches), and holds them for the batch: many payments of one transaction read its receipt once.
 */
export interface ChainView {
  readonly receipt: (network: string, hash: `0x${string}`) => Effect.Effect<Option.Option<TransactionReceipt>, RpcError | UnknownNetwork>
  /** None when the node has no block at that height (a reorg under way, an endpoint behind). */
  readonly block: (network: string, blockNumber: bigint) => Effect.Effect<Option.Option<Block>, RpcError | UnknownNetwork>
  readonly head: (network: string) => Effect.Effect<bigint, RpcError | UnknownNetwork>
  /** Runs `effect` once the work is committed (at once outside a batch). */
  readonly defer: (effect: Effect.Effect<void>) => Effect.Effect<void>
  /** The heads this view read, per network. */
  readonly heads: ReadonlyMap<string, bigint>
}

export const directView = (rpc: Rpc): ChainView => ({
  receipt: rpc.receipt,
  block: rpc.blockIfAny,
  head: rpc.blockNumber,
  defer: (effect) => effect,
  heads: new Map()
})

export interface Wanted {
  readonly network: string
  readonly txHash: `0x${string}`
}

/**
 * Reads for a batch. The heads are read after every receipt was answered, so a head is never older than a receipt it
 * counts confirmations for. A read that fails is not held: the payment's own read tries again and reports the error.
 */
export const prefetchedView = (rpc: Rpc, wanted: ReadonlyArray<Wanted>, deferred: Array<Effect.Effect<void>>) =>
  Effect.gen(function*() {
    const receipts = new Map<string, Option.Option<TransactionReceipt>>()
    const blocks = new Map<string, Block>()
    const heads = new Map<string, bigint>()
    const key = (network: string, id: string | bigint) => `${network}|${id}`
    const distinct = new Map(wanted.map((w) => [key(w.network, w.txHash.toLowerCase()), w]))
    yield* Effect.forEach(distinct, ([k, w]) =>
      rpc.receipt(w.network, w.txHash).pipe(
        Effect.tap((r) => receipts.set(k, r)),
        Effect.ignore // not held: the payment's own read fails with the error
      ), { concurrency: "unbounded", discard: true })
    const inBlocks = new Map<string, { network: string; blockNumber: bigint }>()
    for (const w of distinct.values()) {
      const r = receipts.get(key(w.network, w.txHash.toLowerCase()))
      if (r !== undefined && Option.isSome(r)) inBlocks.set(key(w.network, r.value.blockNumber), { network: w.network, blockNumber: r.value.blockNumber })
    }
    const networks = new Set([...distinct.values()].map((w) => w.network))
    yield* Effect.all([
      Effect.forEach(networks, (network) => rpc.blockNumber(network).pipe(Effect.tap((h) => heads.set(network, h)), Effect.ignore), {
        concurrency: "unbounded",
        discard: true
      }),
      Effect.forEach(inBlocks, ([k, b]) => rpc.block(b.network, b.blockNumber).pipe(Effect.tap((block) => blocks.set(k, block)), Effect.ignore), {
        concurrency: "unbounded",
        discard: true
      })
    ], { concurrency: "unbounded", discard: true })
    const view: ChainView = {
      receipt: (network, hash) => {
        const held = receipts.get(key(network, hash.toLowerCase()))
        return held === undefined ? rpc.receipt(network, hash) : Effect.succeed(held)
      },
      block: (network, blockNumber) => {
        const held = blocks.get(key(network, blockNumber))
        return held === undefined ? rpc.blockIfAny(network, blockNumber) : Effect.succeed(Option.some(held))
      },
      head: (network) => {
        const held = heads.get(network)
        return held === undefined ? rpc.blockNumber(network) : Effect.succeed(held)
      },
      defer: (effect) => Effect.sync(() => void deferred.push(effect)),
      heads
    }
    return view
  })
