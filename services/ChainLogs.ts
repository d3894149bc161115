import { Effect } from "effect"
import type { Log } from "viem"
import { Rpc } from "./Rpc.ts"
import type { RpcError, UnknownNetwork } from "./RpcError.ts"

/**
 * `eth_getLogs` over a block range in chunks of `maxRange`, halving a chunk whenever a provider refuses it
 * (too many results, range too large, an answer over the response-size limit); only a single refused block is an error.
 */
export class ChainLogs extends Effect.Service<ChainLogs>()("billing/ChainLogs", {
  effect: Effect.gen(function*() {
    const rpc = yield* Rpc

    const split = (network: string, addresses: ReadonlyArray<`0x${string}`>, from: bigint, to: bigint): Effect.Effect<ReadonlyArray<Log>, RpcError | UnknownNetwork> =>
      rpc.logs(network, { addresses, fromBlock: from, toBlock: to }).pipe(
        Effect.catchTag("RpcError", (e) => {
          if (from >= to) return Effect.fail(e)
          const mid = from + (to - from) / 2n
          return Effect.logDebug("log range refused, splitting").pipe(
            Effect.zipRight(Effect.zipWith(split(network, addresses, from, mid), split(network, addresses, mid + 1n, to), (a, b) => [...a, ...b]))
          )
        })
      )

    const scan = (
      network: string,
      addresses: ReadonlyArray<`0x${string}`>,
      from: bigint,
      to: bigint,
      maxRange: bigint,
      onChunk: (done: bigint, total: bigint) => Effect.Effect<void> = () => Effect.void
    ) =>
      Effect.gen(function*() {
        const out: Array<Log> = []
        if (addresses.length === 0 || to < from) return out
        for (let start = from; start <= to; start += maxRange) {
          const end = start + maxRange - 1n < to ? start + maxRange - 1n : to
          out.push(...(yield* split(network, addresses, start, end)))
          yield* onChunk(end - from + 1n, to - from + 1n)
        }
        return out.sort((a, b) => Number(a.blockNumber! - b.blockNumber!) || a.logIndex! - b.logIndex!)
      })

    /**
     * The logs of the widest prefix of [from, to] the provider answers: a refused range is halved from its top until
     * it is answered, so the caller ends its range there and reads the rest next time, no part asked twice.
     */
    const prefix = (
      network: string,
      addresses: ReadonlyArray<`0x${string}`>,
      from: bigint,
      to: bigint
    ): Effect.Effect<{ readonly logs: ReadonlyArray<Log>; readonly to: bigint }, RpcError | UnknownNetwork> =>
      rpc.logs(network, { addresses, fromBlock: from, toBlock: to }).pipe(
        Effect.map((logs) => ({ logs, to })),
        Effect.catchTag("RpcError", (e) =>
          from >= to ? Effect.fail(e) : Effect.zipRight(
            Effect.logDebug("log range refused, halving").pipe(Effect.annotateLogs({ from: from.toString(), to: to.toString() })),
            prefix(network, addresses, from, from + (to - from) / 2n)
          ))
      )

    return { scan, split, prefix } as const
  }),
  dependencies: [Rpc.Default]
}) {}
