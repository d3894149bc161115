import { Config, Duration, Effect, Fiber, FiberMap, Layer, Metric, Option, Ref, Schedule } from "effect"
import type { Log } from "viem"
import { passEventNamer } from "../src/contracts/PassEvents.ts"
import { ChainLogs } from "../services/ChainLogs.ts"
import { ChainState, type Cursor, type PublishedLog } from "../services/ChainState.ts"
import { type Contract, Contracts } from "../services/Contracts.ts"
import { Leases } from "../services/Leases.ts"
import { chainListenerLagBlocks, chainReorgsTotal, contractEventsTotal, labelled } from "../services/Metrics.ts"
import { Nats, type NatsError } from "../services/Nats.ts"
import { Rpc } from "../services/Rpc.ts"
import { ChainStream, chainMsgId } from "../services/StreamCodecs.ts"
import type { RpcError, UnknownNetwork } from "../services/RpcError.ts"
import type { ChainEvent } from "../src/domain/Events.ts"
import { nextSpan } from "./ListenerSpan.ts"
import { intBetween } from "../services/Settings.ts"
import { makeShortChainGuard } from "./ShortChain.ts"

export const ListenerConfig = Config.all({
  poll: Config.duration("BILLING_LISTENER_POLL").pipe(Config.withDefault(Duration.seconds(2))),
  maxRange: intBetween("BILLING_LISTENER_MAX_RANGE", 2000, 1, 1_000_000),
  // Logs a range should hold (the range narrows or widens toward it); chain events in flight to JetStream at once.
  targetLogs: intBetween("BILLING_LISTENER_TARGET_LOGS", 5000, 1, 100_000),
  publishWindow: intBetween("BILLING_LISTENER_PUBLISH_WINDOW", 256, 1, 4096),
  lookback: Config.integer("BILLING_LISTENER_LOOKBACK").pipe(Config.withDefault(1000)),
  reorgWindow: Config.integer("BILLING_LISTENER_REORG_WINDOW").pipe(Config.withDefault(256)),
  // Caught up, the blocks below the head whose settled payments are checked against the chain once more (0: none).
  recheckBlocks: intBetween("BILLING_LISTENER_RECHECK_BLOCKS", 64, 0, 4096),
  networkCheck: Config.duration("BILLING_LISTENER_NETWORK_CHECK").pipe(Config.withDefault(Duration.seconds(10))),
  shortChainTimeout: Config.duration("BILLING_LISTENER_SHORT_CHAIN_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(60)),
    Config.validate({
      message: "BILLING_LISTENER_SHORT_CHAIN_TIMEOUT must be at most 24 hours",
      validation: (d) => Duration.lessThanOrEqualTo(d, Duration.hours(24))
    })
  )
})

/** After a tick: `more` when the head is further on (tick again at once), `idle` to wait a poll. */
export type TickOutcome = "more" | "idle"

/** A log read started ahead of its tick, for the contracts and first block `key` names. */
interface Prefetch {
  readonly key: string
  readonly upTo: bigint
  readonly fiber: Fiber.RuntimeFiber<PinnedLogs, RpcError | UnknownNetwork>
}

/** A range's logs, and the hash at `at` (its last asked-for block) read before them (none: no block there then). */
interface PinnedLogs {
  readonly logs: ReadonlyArray<Log>
  readonly to: bigint
  readonly at: bigint
  readonly pin: string | undefined
}

const rangeKey = (addresses: ReadonlyArray<string>, from: bigint) => `${from}:${addresses.join(",")}`

/**
 * One network's listener: a stateless `eth_getLogs` poller over the registered contracts with a cursor in
 * PostgreSQL. A block whose parent hash does not match the cursor is a reorg: the listener walks back to the
 * common ancestor, publishes `removed` for every log it had published and every payment settled above it, and scans
 * again. A head below the cursor is a reorg too, once confirmed (see ShortChain). A range's logs are published
 * together (a bounded window of awaited acks), then recorded with the cursor's move in one transaction: a crash in
 * between publishes them again, and JetStream drops the repeats by message id.
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
    const policy = { maxRange: BigInt(Math.max(1, config.maxRange)), targetLogs: Math.max(1, config.targetLogs) }
    const span = yield* Ref.make(policy.maxRange)
    const ahead = yield* Ref.make(Option.none<Prefetch>())

    const publishAll = (events: ReadonlyArray<ChainEvent>) =>
      events.length === 0 ? Effect.void : Effect.asVoid(nats.publishMessages(ChainStream, events, config.publishWindow))

    /**
     * The logs of [from, upTo] (or the prefix the provider answers), with the hash at `upTo` read first. The tick
     * reads that hash again after: unchanged, the logs came from that very chain (a block's hash commits to every
     * block before it); changed, a reorg during the read may have replaced blocks with mints the read never saw.
     */
    const pinnedLogs = (addresses: ReadonlyArray<`0x${string}`>, from: bigint, upTo: bigint) =>
      Effect.gen(function*() {
        const pin = (yield* rpc.blockHeads(network, [upTo])).get(upTo)?.hash
        const read = yield* chainLogs.prefix(network, addresses, from, upTo)
        return { ...read, at: upTo, pin } satisfies PinnedLogs
      })

    /**
     * The pinned logs of [from, upTo]: the read started ahead while the previous range was published, when it starts
     * where this one does, or a fresh read. Every check on them comes after, as usual.
     */
    const readLogs = (addresses: ReadonlyArray<`0x${string}`>, from: bigint, upTo: bigint) =>
      Effect.gen(function*() {
        const pending = yield* Ref.getAndSet(ahead, Option.none())
        if (Option.isSome(pending)) {
          const { fiber, key } = pending.value
          if (key === rangeKey(addresses, from) && pending.value.upTo <= upTo) return yield* Fiber.join(fiber)
          yield* Fiber.interrupt(fiber)
        }
        return yield* pinnedLogs(addresses, from, upTo)
      })

    const readAhead = (addresses: ReadonlyArray<`0x${string}`>, from: bigint, upTo: bigint) =>
      Effect.flatMap(Effect.fork(pinnedLogs(addresses, from, upTo)), (fiber) =>
        Ref.set(ahead, Option.some({ key: rangeKey(addresses, from), upTo, fiber })))

    const blockAt = (n: bigint): Effect.Effect<Cursor, RpcError | UnknownNetwork> =>
      Effect.map(rpc.block(network, n), (b) => ({ blockNumber: n, blockHash: b.hash! }))

    /** The highest remembered block still on the canonical chain (the candidates' hashes read in one batch). */
    const commonAncestor = (from: bigint) =>
      Effect.gen(function*() {
        const candidates = yield* state.blocksBelow(network, from, config.reorgWindow)
        const canonical = yield* rpc.blockHeads(network, candidates.map((c) => c.blockNumber))
        const found = candidates.find((c) => canonical.get(c.blockNumber)?.hash === c.blockHash)
        if (found !== undefined) return found
        const floor = from > BigInt(config.reorgWindow) ? from - BigInt(config.reorgWindow) : 0n
        yield* Effect.logWarning("no remembered block is still canonical: rewinding a whole reorg window").pipe(
          Effect.annotateLogs({ remembered: candidates.length, floor_block: floor.toString() })
        )
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
        yield* publishAll([...dropped, ...unrecorded])
        yield* state.rewind(network, ancestor)
        yield* Metric.increment(labelled(chainReorgsTotal, { network }))
        yield* Effect.logWarning("reorg: rewound to the common ancestor").pipe(Effect.annotateLogs({
          network,
          from_block: cursor.blockNumber.toString(),
          ancestor_block: ancestor.blockNumber.toString(),
          removed_logs: dropped.length,
          blocks_back: (cursor.blockNumber - ancestor.blockNumber).toString(),
          rechecked_payments: unrecorded.length
        }))
      })

    /**
     * Caught up: the payments settled in the last `recheckBlocks` blocks, whichever path settled them, are checked
     * against the chain once more (one batch of block reads). A reorg that got past the checks above, however it
     * raced them, still reaches its payments: removals go out for those recorded in a block since replaced.
     */
    const recheckRecent = (to: bigint, chainId: number) =>
      Effect.gen(function*() {
        const depth = BigInt(config.recheckBlocks)
        if (depth === 0n) return
        const blocks = yield* state.settledBlocks(network, to > depth ? to - depth : 0n, to)
        if (blocks.length === 0) return
        const canonical = yield* rpc.blockHeads(network, blocks.map((b) => b.blockNumber))
        const replaced = new Set(blocks.filter((b) => {
          const now = canonical.get(b.blockNumber)
          return now !== undefined && now.hash !== b.blockHash
        }).map((b) => b.blockHash))
        if (replaced.size === 0) return
        const lowest = blocks.filter((b) => replaced.has(b.blockHash)).reduce((m, b) => (b.blockNumber < m ? b.blockNumber : m), to)
        const stale = (yield* state.paymentLogsAbove(network, lowest - 1n, to)).filter((p) => replaced.has(p.blockHash))
        yield* publishAll(stale.map(removal(chainId)))
        yield* Effect.logWarning("payments recorded in blocks since replaced: re-checking them").pipe(
          Effect.annotateLogs({ payments: stale.length, lowest_block: lowest.toString() })
        )
      })

    /** The logs of watched contracts that are pass events, as the listener publishes and records them. */
    const readsOf = (logs: ReadonlyArray<Log>, watched: ReadonlyArray<Contract>) => {
      const byAddress = new Map(watched.map((c) => [c.address as string, { contract: c, nameOf: passEventNamer(c.abi) }] as const))
      const reads: Array<PublishedLog & { readonly slug: string }> = []
      for (const log of [...logs].sort((a, b) => Number(a.blockNumber! - b.blockNumber!) || a.logIndex! - b.logIndex!)) {
        const source = byAddress.get(log.address.toLowerCase())
        const name = source ? source.nameOf(log) : Option.none()
        if (source === undefined || Option.isNone(name)) continue
        reads.push({
          blockNumber: log.blockNumber!,
          blockHash: log.blockHash!,
          txHash: log.transactionHash!,
          logIndex: log.logIndex!,
          contract: source.contract.address,
          event: name.value,
          slug: source.contract.slug
        })
      }
      return reads
    }

    const countEvents = (reads: ReadonlyArray<{ readonly slug: string; readonly event: string }>) => {
      const counts = new Map<string, { slug: string; event: string; n: number }>()
      for (const r of reads) {
        const key = `${r.slug}\u0000${r.event}`
        const seen = counts.get(key)
        if (seen) seen.n++
        else counts.set(key, { slug: r.slug, event: r.event, n: 1 })
      }
      return Effect.forEach(counts.values(), ({ event, n, slug }) =>
        Metric.incrementBy(labelled(contractEventsTotal, { contract: slug, event }), n), { discard: true })
    }

    const tick: Effect.Effect<TickOutcome, RpcError | UnknownNetwork | NatsError> = Effect.gen(function*() {
      const watched = (yield* contracts.listEnabled).filter((c) => c.network === network)
      const net = yield* rpc.networkConfig(network)
      const head = yield* rpc.blockNumber(network)
      const stored = yield* state.cursor(network)
      if (Option.isNone(stored)) {
        const start = head > BigInt(config.lookback) ? head - BigInt(config.lookback) : 0n
        yield* state.advance(network, yield* blockAt(start))
        return "more"
      }
      const cursor = stored.value
      if (head < cursor.blockNumber) {
        if (Option.isNone(yield* shortChain.confirmed(head, cursor))) return "idle"
        yield* handleReorg(cursor, head, net.chain_id)
        yield* shortChain.clear
        return "more"
      }
      yield* shortChain.clear
      if (head === cursor.blockNumber) {
        const current = yield* blockAt(cursor.blockNumber)
        if (current.blockHash !== cursor.blockHash) yield* handleReorg(cursor, head, net.chain_id)
        return "idle"
      }
      const from = cursor.blockNumber + 1n
      const wanted = yield* Ref.get(span)
      const upTo = head < from + wanted - 1n ? head : from + wanted - 1n
      const addresses = watched.map((c) => c.address)
      const read: PinnedLogs = watched.length === 0 ? { logs: [], to: upTo, at: upTo, pin: undefined } : yield* readLogs(addresses, from, upTo)
      const to = read.to
      // A payment settled from a webhook in a block not scanned yet may sit on a fork that has since lost, with no
      // rewind to notice it: its removal goes out now and the processor re-checks it against the chain.
      const settled = yield* state.paymentLogsAbove(network, cursor.blockNumber, to)
      // One batch, read after the logs: the range's first block (its parent must be the cursor), every block holding
      // a log or a settled payment, the range's last block (the next cursor) and the block the read was pinned to.
      const heads = yield* rpc.blockHeads(network, [from, ...read.logs.map((l) => l.blockNumber!), ...settled.map((p) => p.blockNumber), to, read.at])
      const first = heads.get(from)
      const end = heads.get(to)
      // A block gone since the head was read: the chain is moving under us, look again after a poll. Said each time: a
      // node with a hole below its head (seen on anvil after many anvil_reorg calls) holds the listener here for good.
      if (first === undefined || end === undefined) {
        yield* Effect.logWarning("a block below the head is missing at the node: waiting for it").pipe(
          Effect.annotateLogs({ block: (first === undefined ? from : to).toString(), head: head.toString() })
        )
        return "idle"
      }
      if (first.parentHash !== cursor.blockHash) {
        yield* handleReorg(cursor, head, net.chain_id)
        return "more"
      }
      // A reorg mid-scan (the pinned block replaced, or a log's block no longer the one at its height): try again.
      if (addresses.length > 0 && (read.pin === undefined || heads.get(read.at)?.hash !== read.pin)) {
        yield* Effect.logWarning("the chain moved during the log read: reading the range again").pipe(
          Effect.annotateLogs({ from_block: from.toString(), pinned_block: read.at.toString() })
        )
        return "idle"
      }
      if (read.logs.some((l) => heads.get(l.blockNumber!)?.hash !== l.blockHash)) return "idle"
      const next = nextSpan(policy, { span: wanted, answered: to - from + 1n, logs: read.logs.length, refused: to < upTo })
      yield* Ref.set(span, next)
      // Far behind: the next range's logs are read while this one is published and recorded.
      if (to < head && addresses.length > 0) yield* readAhead(addresses, to + 1n, head < to + next ? head : to + next)
      yield* publishAll(settled.filter((p) => heads.get(p.blockNumber)?.hash !== p.blockHash).map(removal(net.chain_id)))
      const reads = readsOf(read.logs, watched)
      yield* publishAll(reads.map(eventOf(net.chain_id, false)))
      const committed = yield* state.commitRange(network, reads, { blockNumber: to, blockHash: end.hash }, {
        from: cursor,
        settled,
        hashAt: (n) => heads.get(n)?.hash
      })
      // Moved meanwhile, or a payment was settled in the range since it was read: the range is scanned again.
      if (!committed) {
        yield* Effect.logWarning("the range changed while it was scanned: scanning it again").pipe(
          Effect.annotateLogs({ from_block: from.toString(), to_block: to.toString() })
        )
        return "more"
      }
      yield* countEvents(reads)
      yield* state.trim(network, to - BigInt(config.reorgWindow))
      yield* Metric.set(labelled(chainListenerLagBlocks, { network }), Number(head - to))
      yield* Effect.logDebug("range scanned").pipe(
        Effect.annotateLogs({ from_block: from.toString(), to_block: to.toString(), logs: read.logs.length, head: head.toString() })
      )
      if (to < head) return "more"
      yield* recheckRecent(to, net.chain_id)
      return "idle"
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
      // Behind the head the next range follows at once; caught up (or after a failure) it waits a poll.
      const forever = Effect.forever(tick.pipe(
        Effect.catchAllCause((cause) => Effect.as(Effect.logWarning("listener tick failed", cause), "idle" as const)),
        Effect.flatMap((next) => (next === "more" ? Effect.yieldNow() : Effect.sleep(poll)))
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
