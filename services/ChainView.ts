import { Effect, Either, Option } from "effect"
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

export interface Height {
  readonly network: string
  readonly blockNumber: bigint
}

export interface Wanted {
  readonly network: string
  readonly txHash: `0x${string}`
}

/**
 * Reads for a batch, all made before its SQL transaction so none holds it open: receipts together, then one head per
 * network and each distinct block once (JSON-RPC batches); `heights` are blocks asked for besides the receipts'. The
 * heads are read after every receipt was answered, so a head is never older than a receipt it counts confirmations
 * for. A read that failed is held as its error (the payment is retried later, not read again inside the batch); only a
 * read nobody asked for goes to the node.
 */
export const prefetchedView = (
  rpc: Rpc,
  wanted: ReadonlyArray<Wanted>,
  deferred: Array<Effect.Effect<void>>,
  heights: ReadonlyArray<Height> = []
) =>
  Effect.gen(function*() {
    type Read<A> = Either.Either<A, RpcError | UnknownNetwork>
    const receipts = new Map<string, Read<Option.Option<TransactionReceipt>>>()
    const blocks = new Map<string, Read<Option.Option<Block>>>()
    const heads = new Map<string, Read<bigint>>()
    const key = (network: string, id: string | bigint) => `${network}|${id}`
    const distinct = new Map(wanted.map((w) => [key(w.network, w.txHash.toLowerCase()), w]))
    yield* Effect.forEach(distinct, ([k, w]) => Effect.tap(Effect.either(rpc.receipt(w.network, w.txHash)), (r) => receipts.set(k, r)), {
      concurrency: "unbounded",
      discard: true
    })
    const inBlocks = new Map(heights.map((h) => [key(h.network, h.blockNumber), h]))
    for (const w of distinct.values()) {
      const r = receipts.get(key(w.network, w.txHash.toLowerCase()))
      if (r !== undefined && Either.isRight(r) && Option.isSome(r.right)) {
        inBlocks.set(key(w.network, r.right.value.blockNumber), { network: w.network, blockNumber: r.right.value.blockNumber })
      }
    }
    const networks = new Set([...distinct.values(), ...heights].map((w) => w.network))
    yield* Effect.all([
      Effect.forEach(networks, (network) => Effect.tap(Effect.either(rpc.blockNumber(network)), (h) => heads.set(network, h)), {
        concurrency: "unbounded",
        discard: true
      }),
      Effect.forEach(inBlocks, ([k, b]) => Effect.tap(Effect.either(rpc.blockIfAny(b.network, b.blockNumber)), (block) => blocks.set(k, block)), {
        concurrency: "unbounded",
        discard: true
      })
    ], { concurrency: "unbounded", discard: true })
    const held = <A>(read: Read<A> | undefined, ask: () => Effect.Effect<A, RpcError | UnknownNetwork>) =>
      read === undefined ? ask() : Either.match(read, { onLeft: Effect.fail, onRight: Effect.succeed })
    const view: ChainView = {
      receipt: (network, hash) => held(receipts.get(key(network, hash.toLowerCase())), () => rpc.receipt(network, hash)),
      block: (network, blockNumber) => held(blocks.get(key(network, blockNumber)), () => rpc.blockIfAny(network, blockNumber)),
      head: (network) => held(heads.get(network), () => rpc.blockNumber(network)),
      defer: (effect) => Effect.sync(() => void deferred.push(effect)),
      heads: new Map([...heads].flatMap(([n, h]) => Either.isRight(h) ? [[n, h.right]] : []))
    }
    return view
  })
