import { Config, Duration, Effect, FiberMap, Layer, Metric, Option, Schedule } from "effect"
import { decodePassEvent } from "../src/contracts/PassEvents.ts"
import { ChainLogs } from "../services/ChainLogs.ts"
import { ChainState, type Cursor, type PublishedLog } from "../services/ChainState.ts"
import { Contracts } from "../services/Contracts.ts"
import { Leases } from "../services/Leases.ts"
import { chainListenerLagBlocks, chainReorgsTotal, contractEventsTotal, labelled } from "../services/Metrics.ts"
import { Nats } from "../services/Nats.ts"
import { Rpc } from "../services/Rpc.ts"
import { ChainStream, chainMsgId } from "../services/StreamCodecs.ts"
import type { RpcError, UnknownNetwork } from "../services/RpcError.ts"
import type { ChainEvent } from "../src/domain/Events.ts"
import { makeShortChainGuard } from "./ShortChain.ts"

export const ListenerConfig = Config.all({
  poll: Config.duration("BILLING_LISTENER_POLL").pipe(Config.withDefault(Duration.seconds(2))),
  maxRange: Config.integer("BILLING_LISTENER_MAX_RANGE").pipe(Config.withDefault(2000)),
  lookback: Config.integer("BILLING_LISTENER_LOOKBACK").pipe(Config.withDefault(1000)),
  reorgWindow: Config.integer("BILLING_LISTENER_REORG_WINDOW").pipe(Config.withDefault(256)),
  networkCheck: Config.duration("BILLING_LISTENER_NETWORK_CHECK").pipe(Config.withDefault(Duration.seconds(10))),
  shortChainTimeout: Config.duration("BILLING_LISTENER_SHORT_CHAIN_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(60)),
    Config.validate({
      message: "BILLING_LISTENER_SHORT_CHAIN_TIMEOUT must be at most 24 hours",
      validation: (d) => Duration.lessThanOrEqualTo(d, Duration.hours(24))
    })
  )
})

/**
 * One network's listener: a stateless `eth_getLogs` poller over the registered contracts with a cursor in
 * PostgreSQL. A block whose parent hash does not match the cursor is a reorg: the listener walks back to the
 * common ancestor, publishes `removed` for every log it had published and every payment settled above it, and scans
 * again. A head below the cursor is a reorg too, once confirmed (see ShortChain).
 */
export const makeListener = (network: string) =>
  Effect.gen(function*() {
    const rpc = yield* Rpc
    const state = yield* ChainState
    const contracts = yield* Contracts
    const chainLogs = yield* ChainLogs
    const nats = yield* Nats
    const config = yield* ListenerConfig
    const shortChain = yield* makeShortChainGuard(network, config.shortChainTimeout)

    const publish = (event: ChainEvent) => nats.publishMessage(ChainStream, event)

    const blockAt = (n: bigint): Effect.Effect<Cursor, RpcError | UnknownNetwork> =>
      Effect.map(rpc.block(network, n), (b) => ({ blockNumber: n, blockHash: b.hash! }))

    /** The highest remembered block still on the canonical chain. */
    const commonAncestor = (from: bigint) =>
      Effect.gen(function*() {
        for (const candidate of yield* state.blocksBelow(network, from, config.reorgWindow)) {
          const canonical = yield* blockAt(candidate.blockNumber)
          if (canonical.blockHash === candidate.blockHash) return candidate
        }
        const floor = from > BigInt(config.reorgWindow) ? from - BigInt(config.reorgWindow) : 0n
        return yield* blockAt(floor)
      })

    /** The event for one log the listener read (or, with `removed`, one a reorg dropped). */
    const eventOf = (chainId: number, removed: boolean) => (log: PublishedLog): ChainEvent => ({
      source: "chain",
      network,
      chain_id: chainId,
      contract: log.contract,
      event: log.event,
      tx_hash: log.txHash,
      log_index: log.logIndex,
      block_number: Number(log.blockNumber),
      block_hash: log.blockHash,
      removed
    })
    const removal = (chainId: number) => eventOf(chainId, true)

    const handleReorg = (cursor: Cursor, head: bigint, chainId: number) =>
      Effect.gen(function*() {
        // Blocks above the head cannot be the ancestor: on a shorter chain they do not exist.
        const ancestor = yield* commonAncestor(cursor.blockNumber <= head ? cursor.blockNumber : head + 1n)
        const dropped = (yield* state.logsAbove(network, ancestor.blockNumber)).map(removal(chainId))
        // A payment settled from a webhook may have no log of ours: the processor re-checks it against the chain.
        const published = new Set(dropped.map(chainMsgId))
        const unrecorded = (yield* state.paymentLogsAbove(network, ancestor.blockNumber)).map(removal(chainId))
          .filter((e) => !published.has(chainMsgId(e)))
        yield* Effect.forEach([...dropped, ...unrecorded], publish, { discard: true })
        yield* state.rewind(network, ancestor)
        yield* Metric.increment(labelled(chainReorgsTotal, { network }))
        yield* Effect.logWarning("reorg: rewound to the common ancestor").pipe(Effect.annotateLogs({
          network,
          from_block: cursor.blockNumber.toString(),
          ancestor_block: ancestor.blockNumber.toString(),
          removed_logs: dropped.length,
          rechecked_payments: unrecorded.length
        }))
      })

    const tick = Effect.gen(function*() {
      const watched = (yield* contracts.listEnabled).filter((c) => c.network === network)
      const net = yield* rpc.networkConfig(network)
      const head = yield* rpc.blockNumber(network)
      const stored = yield* state.cursor(network)
      if (Option.isNone(stored)) {
        const start = head > BigInt(config.lookback) ? head - BigInt(config.lookback) : 0n
        yield* state.advance(network, yield* blockAt(start))
        return
      }
      const cursor = stored.value
      if (head < cursor.blockNumber) {
        if (Option.isNone(yield* shortChain.confirmed(head, cursor))) return
        yield* handleReorg(cursor, head, net.chain_id)
        return yield* shortChain.clear
      }
      yield* shortChain.clear
      if (head > cursor.blockNumber) {
        const next = yield* rpc.block(network, cursor.blockNumber + 1n)
        if (next.parentHash !== cursor.blockHash) return yield* handleReorg(cursor, head, net.chain_id)
      } else {
        const current = yield* blockAt(cursor.blockNumber)
        if (current.blockHash !== cursor.blockHash) return yield* handleReorg(cursor, head, net.chain_id)
        return
      }
      const from = cursor.blockNumber + 1n
      const to = head < from + BigInt(config.maxRange) - 1n ? head : from + BigInt(config.maxRange) - 1n
      const logs = watched.length === 0 ? [] : yield* chainLogs.split(network, watched.map((c) => c.address), from, to)
      const end = yield* blockAt(to)
      // A log from a block that is no longer the one at its height means a reorg mid-scan: try again next tick.
      const heights = [...new Set(logs.map((l) => l.blockNumber!))]
      const canonical = new Map(yield* Effect.forEach(heights, (n) => Effect.map(blockAt(n), (b) => [n, b.blockHash] as const)))
      if (logs.some((l) => canonical.get(l.blockNumber!) !== l.blockHash)) return
      // A payment settled from a webhook in a block not scanned yet may sit on a fork that has since lost, with no
      // rewind to notice it: its removal goes out now and the processor re-checks it against the chain.
      const settled = yield* state.paymentLogsAbove(network, cursor.blockNumber, to)
      for (const n of new Set(settled.map((p) => p.blockNumber))) {
        if (!canonical.has(n)) canonical.set(n, (yield* blockAt(n)).blockHash)
      }
      const orphaned = settled.filter((p) => canonical.get(p.blockNumber) !== p.blockHash).map(removal(net.chain_id))
      yield* Effect.forEach(orphaned, publish, { discard: true })
      for (const log of [...logs].sort((a, b) => Number(a.blockNumber! - b.blockNumber!) || a.logIndex! - b.logIndex!)) {
        const contract = watched.find((c) => c.address === log.address.toLowerCase())
        const decoded = contract ? decodePassEvent(contract.abi, log) : Option.none()
        if (contract === undefined || Option.isNone(decoded)) continue
        const name = decoded.value.eventName
        const read: PublishedLog = {
          blockNumber: log.blockNumber!,
          blockHash: log.blockHash!,
          txHash: log.transactionHash!,
          logIndex: log.logIndex!,
          contract: contract.address,
          event: name
        }
        yield* publish(eventOf(net.chain_id, false)(read))
        yield* state.recordLog(network, read)
        yield* Metric.increment(labelled(contractEventsTotal, { contract: contract.slug, event: name }))
      }
      yield* state.advance(network, end)
      yield* state.trim(network, to - BigInt(config.reorgWindow))
      yield* Metric.set(labelled(chainListenerLagBlocks, { network }), Number(head - to))
    }).pipe(Effect.withSpan("ChainListener.tick", { attributes: { network } }))

    return { tick, poll: config.poll } as const
  }).pipe(Effect.provide(ChainLogs.DefaultWithoutDependencies))

/**
 * A listener per configured network, each leading only while it holds that network's lease. Networks added live
 * (crypto-config) get their listener at the next check, without a restart.
 */
export const ChainListenerLive = Layer.scopedDiscard(Effect.gen(function*() {
  const rpc = yield* Rpc
  const leases = yield* Leases
  const running = yield* FiberMap.make<string>()
  const config = yield* ListenerConfig

  const start = (network: string) =>
    Effect.gen(function*() {
      const { poll, tick } = yield* makeListener(network)
      const forever = Effect.forever(Effect.zipRight(
        tick.pipe(Effect.catchAllCause((cause) => Effect.logWarning("listener tick failed", cause))),
        Effect.sleep(poll)
      ))
      yield* FiberMap.run(running, network, leases.whileLeader(`chain-listener:${network}`, forever).pipe(Effect.annotateLogs("network", network)), {
        onlyIfMissing: true
      })
    })

  const sync = Effect.flatMap(rpc.networks, (networks) => Effect.forEach(networks, ({ network }) => start(network), { discard: true }))
  yield* sync
  yield* Effect.forkScoped(sync.pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("listener network check failed", cause)),
    Effect.repeat(Schedule.spaced(config.networkCheck))
  ))
})).pipe(Layer.provide([ChainState.Default, Leases.Default, Contracts.Default]))
