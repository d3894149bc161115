import { Array as Arr, Clock, Config, Duration, Effect, Either, Metric, Option, Schema, SynchronizedRef } from "effect"
import {
  type Abi,
  BaseError,
  createPublicClient,
  http,
  numberToHex,
  type PublicClient,
  RpcRequestError,
  BlockNotFoundError,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError
} from "viem"
import { getHttpRpcClient } from "viem/utils"
import { CryptoConfig, type NetworkConfig } from "./CryptoConfig.ts"
import { intBetween } from "./Settings.ts"
import { EndpointGuard } from "./EndpointGuard.ts"
import { labelled, rpcChainMismatchTotal, zeroSeries, rpcEndpointHealthy, rpcErrorsTotal, rpcFailoversTotal, rpcRequestsTotal } from "./Metrics.ts"
import {
  type BenchPolicy,
  type EndpointHealth,
  endpointOrder,
  healthyEndpoint,
  isBenched,
  isRangeRefusal,
  isRetryable,
  isTrusted,
  recordFailure,
  recordRefusal,
  RpcError,
  safeMessage,
  UnknownNetwork,
  unprovenEndpoint
} from "./RpcError.ts"
import { liveSchedule, RetryPolicyState } from "./RetryPolicies.ts"

interface NetworkClients {
  readonly config: NetworkConfig
  readonly clients: ReadonlyArray<PublicClient>
  /** Per endpoint, by index; replaced when the network's endpoint list changes. */
  readonly health: SynchronizedRef.SynchronizedRef<ReadonlyArray<EndpointHealth>>
}

/** One endpoint's state for /readyz and operators: `healthy` = proven (right chain id) and no failure since. */
export interface EndpointStatus {
  readonly index: number
  readonly healthy: boolean
  /** Tried only as a last resort until its cooldown ends. */
  readonly benched: boolean
  readonly consecutiveFailures: number
}

export const RpcRetryConfig = Config.all({
  timeout: Config.duration("BILLING_RPC_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
  cooldown: Config.duration("BILLING_RPC_COOLDOWN").pipe(Config.withDefault(Duration.seconds(5))),
  maxCooldown: Config.duration("BILLING_RPC_COOLDOWN_MAX").pipe(Config.withDefault(Duration.seconds(60))),
  /** JSON-RPC batching per endpoint: calls made together go in one HTTP request (at most `batchSize` calls). */
  batchSize: intBetween("BILLING_RPC_BATCH_SIZE", 100, 1, 1000),
  batchWait: Config.duration("BILLING_RPC_BATCH_WAIT").pipe(Config.withDefault(Duration.millis(1)))
})

const notFound = (error: unknown) =>
  error instanceof BaseError &&
  error.walk((e) => e instanceof TransactionReceiptNotFoundError || e instanceof TransactionNotFoundError || e instanceof BlockNotFoundError) !==
    null

const sameEndpoints = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && a.every((url, i) => url === b[i])

const healthyGauge = (network: string, endpoint: number) =>
  labelled(rpcEndpointHealthy, { network, endpoint: String(endpoint) })

/**
 * Chain reads per network. viem's own retries are off: this service tries the endpoints in priority
 * order with failing ones benched to the back, moves on only on a retryable error, and retries the
 * round on an operator-tunable Schedule. An endpoint serves calls only once it answered the network's
 * chain id (at start-up or reload, and again after any failure): a node of another chain never answers a read.
 */
export class Rpc extends Effect.Service<Rpc>()("billing/Rpc", {
  effect: Effect.gen(function*() {
    const cryptoConfig = yield* CryptoConfig
    const guard = yield* EndpointGuard
    const retry = yield* RpcRetryConfig
    // the `rpc` retry policy (BILLING_RPC_RETRY_* until an operator stores one), read at every retry
    const policies = yield* RetryPolicyState
    const schedule = liveSchedule(policies.current("rpc"), true)
    const timeoutMs = Duration.toMillis(retry.timeout)
    const batch = retry.batchSize > 1 ? { batchSize: retry.batchSize, wait: Duration.toMillis(retry.batchWait) } : false
    const bench: BenchPolicy = {
      cooldownMillis: Duration.toMillis(retry.cooldown),
      maxCooldownMillis: Duration.toMillis(retry.maxCooldown)
    }

    const state = yield* SynchronizedRef.make<ReadonlyMap<string, NetworkClients>>(new Map())

    const network = (name: string) =>
      Effect.flatMap(SynchronizedRef.get(state), (m) => {
        const n = m.get(name)
        return n ? Effect.succeed(n) : Effect.fail(new UnknownNetwork({ network: name }))
      })

    /** Health and its gauge change together, under the network's lock. */
    const setHealth = (name: string, net: NetworkClients, index: number, f: (h: EndpointHealth) => EndpointHealth) =>
      SynchronizedRef.modifyEffect(net.health, (all) => {
        const before = all[index] ?? healthyEndpoint
        const after = f(before)
        return Metric.set(healthyGauge(name, index), isTrusted(after) ? 1 : 0).pipe(
          Effect.as([before, all.map((h, i) => (i === index ? after : h))] as const)
        )
      })

    const succeeded = (name: string, net: NetworkClients, index: number) =>
      Effect.flatMap(setHealth(name, net, index, () => healthyEndpoint), (before) =>
        before.consecutiveFailures === 0 ? Effect.void : Effect.logInfo("rpc endpoint recovered").pipe(
          Effect.annotateLogs({ network: name, endpoint: index, failures: before.consecutiveFailures })
        ))

    const failed = (name: string, net: NetworkClients, index: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => setHealth(name, net, index, (h) => recordFailure(h, now, bench)))

    /** One request to one endpoint; a retryable failure benches it. Success is the caller's to record. */
    const send = <A>(name: string, net: NetworkClients, method: string, index: number, f: (c: PublicClient) => Promise<A>) =>
      Effect.tryPromise({
        try: () => f(net.clients[index]!),
        catch: (error) =>
          new RpcError({
            network: name,
            method,
            endpoint: index,
            retryable: isRetryable(error) && !(method === "eth_getLogs" && isRangeRefusal(error)),
            message: safeMessage(error)
          })
      }).pipe(
        Effect.tapBoth({
          onSuccess: () =>
            Metric.increment(labelled(rpcRequestsTotal, { network: name, endpoint: String(index), method, outcome: "success" })),
          onFailure: (e) =>
            Effect.all([
              Metric.increment(labelled(rpcRequestsTotal, { network: name, endpoint: String(index), method, outcome: "error" })),
              Metric.increment(labelled(rpcErrorsTotal, { network: name, endpoint: String(index), retryable: String(e.retryable) })),
              // A revert or a bad request is an answer: it says nothing about the endpoint's health.
              e.retryable ? failed(name, net, index) : Effect.void
            ], { discard: true })
        })
      )

    /** Refused (another chain, or outside the policy): benched, out of rotation; counted and logged once per probe. */
    const refuse = (name: string, net: NetworkClients, index: number, why: { readonly mismatch?: number; readonly message: string }) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const before = yield* setHealth(name, net, index, (h) => recordRefusal(h, now, bench))
        if (!isBenched(before, now) || before.refused !== true) {
          if (why.mismatch !== undefined) {
            yield* Metric.increment(labelled(rpcChainMismatchTotal, { network: name, endpoint: String(index) }))
          }
          yield* Effect.logError(`rpc endpoint refused: ${why.message}`).pipe(Effect.annotateLogs({
            network: name,
            endpoint: index,
            expected_chain_id: net.config.chain_id,
            ...(why.mismatch === undefined ? {} : { answered_chain_id: why.mismatch })
          }))
        }
        return yield* new RpcError({ network: name, method: "eth_chainId", endpoint: index, retryable: true, message: `endpoint refused: ${why.message}` })
      })

    /**
     * The proof an endpoint must give before it is trusted: inside the endpoint policy (its host resolved again) and
     * answering `eth_chainId` with the network's chain id. Any failure is retryable: the call moves on.
     */
    const probe = (name: string, net: NetworkClients, index: number) =>
      Effect.gen(function*() {
        const expected = net.config.chain_id
        const admitted = yield* Effect.either(guard.admit(net.config.rpc_endpoints[index]!))
        if (Either.isLeft(admitted)) return yield* refuse(name, net, index, { message: admitted.left.message })
        const answered = yield* send(name, net, "eth_chainId", index, (c) => c.getChainId()).pipe(
          Effect.catchIf((e) => !e.retryable, (e) => Effect.zipRight(failed(name, net, index), Effect.fail(new RpcError({ ...e, retryable: true }))))
        )
        if (answered !== expected) {
          return yield* refuse(name, net, index, { mismatch: answered, message: `answered chain id ${answered}, expected ${expected}` })
        }
        yield* succeeded(name, net, index)
      })

    const attempt = <A>(name: string, net: NetworkClients, method: string, index: number, f: (c: PublicClient) => Promise<A>) =>
      Effect.gen(function*() {
        const health = (yield* SynchronizedRef.get(net.health))[index] ?? unprovenEndpoint
        if (!isTrusted(health)) yield* probe(name, net, index)
        const result = yield* send(name, net, method, index, f)
        yield* succeeded(name, net, index)
        return result
      })

    /** Networks whose endpoint list and chain id are unchanged keep their clients and health; others are probed anew. */
    const build = (previous: ReadonlyMap<string, NetworkClients>) => (configs: ReadonlyArray<NetworkConfig>) =>
      Effect.forEach(configs, (config) => {
        const old = previous.get(config.network)
        if (old !== undefined && old.config.chain_id === config.chain_id && sameEndpoints(old.config.rpc_endpoints, config.rpc_endpoints)) {
          return Effect.succeed([config.network, { ...old, config }] as const)
        }
        const clients = config.rpc_endpoints.map((url) =>
          createPublicClient({ transport: http(url, { retryCount: 0, timeout: timeoutMs, batch }) }) as PublicClient
        )
        return SynchronizedRef.make<ReadonlyArray<EndpointHealth>>(clients.map(() => unprovenEndpoint)).pipe(
          Effect.map((health): NetworkClients => ({ config, clients, health })),
          Effect.tap(() => zeroSeries(config.network, clients.length)),
          Effect.tap((net) =>
            Effect.forEach(clients, (_, i) =>
              probe(config.network, net, i).pipe(
                Effect.catchAll((e) => Effect.logWarning("rpc endpoint not trusted yet").pipe(
                  Effect.annotateLogs({ network: config.network, endpoint: i, error: e.message })
                ))
              ), { concurrency: "unbounded", discard: true })),
          Effect.map((net) => [config.network, net] as const)
        )
      }, { concurrency: "unbounded" }).pipe(Effect.map((entries): ReadonlyMap<string, NetworkClients> => new Map(entries)))

    const reload = SynchronizedRef.updateEffect(state, (previous) => Effect.flatMap(cryptoConfig.all, build(previous)))
    yield* reload

    /** One round over the endpoints, healthy ones first; a non-retryable error stops the round at once. */
    const round = <A>(name: string, net: NetworkClients, method: string, f: (c: PublicClient) => Promise<A>) =>
      Effect.gen(function*() {
        const order = endpointOrder(yield* SynchronizedRef.get(net.health), yield* Clock.currentTimeMillis)
        if (order.length === 0) {
          // endpoint -1: none. Every endpoint was refused and waits out its bench before the next probe.
          return yield* new RpcError({ network: name, method, endpoint: -1, retryable: true, message: "no endpoint is trusted: every one was refused" })
        }
        const from = (k: number): Effect.Effect<A, RpcError> =>
          attempt(name, net, method, order[k]!, f).pipe(
            Effect.catchIf((e) => e.retryable && k + 1 < order.length, (e) => {
              const to = order[k + 1]!
              return Metric.increment(labelled(rpcFailoversTotal, { network: name, from: String(e.endpoint), to: String(to) })).pipe(
                Effect.zipRight(Effect.logWarning("rpc endpoint failed, failing over").pipe(
                  Effect.annotateLogs({ network: name, method, from: e.endpoint, to, error: e.message })
                )),
                Effect.zipRight(from(k + 1))
              )
            })
          )
        return yield* from(0)
      })

    const call = <A>(name: string, method: string, f: (c: PublicClient) => Promise<A>) =>
      Effect.flatMap(network(name), (net) =>
        round(name, net, method, f).pipe(Effect.retry({ schedule, while: (e) => e.retryable }))
      ).pipe(Effect.withSpan(`Rpc.${method}`, { attributes: { network: name } }))

    /** Per-endpoint state, by index (never URL). */
    const health = (name: string) =>
      Effect.gen(function*() {
        const net = yield* network(name)
        const now = yield* Clock.currentTimeMillis
        const all = yield* SynchronizedRef.get(net.health)
        return all.map((h, index): EndpointStatus => ({
          index,
          healthy: isTrusted(h),
          benched: isBenched(h, now),
          consecutiveFailures: h.consecutiveFailures
        }))
      })

    /**
     * Every endpoint's head, each asked once (no failover, no retry), benched ones skipped: a second opinion when
     * the head a call got looks wrong. An endpoint that fails is counted like any failure and left out.
     */
    const heads = (name: string) =>
      Effect.gen(function*() {
        const net = yield* network(name)
        const now = yield* Clock.currentTimeMillis
        const health = yield* SynchronizedRef.get(net.health)
        const ready = net.clients.map((_, i) => i).filter((i) => !isBenched(health[i] ?? unprovenEndpoint, now))
        const answers = yield* Effect.forEach(ready, (endpoint) =>
          attempt(name, net, "eth_blockNumber", endpoint, (c) => c.getBlockNumber({ cacheTime: 0 })).pipe(
            Effect.map((blockNumber) => Option.some({ endpoint, blockNumber })),
            Effect.catchTag("RpcError", (e) =>
              Effect.as(
                Effect.logWarning("rpc endpoint did not tell its head").pipe(Effect.annotateLogs({ network: name, endpoint, error: e.message })),
                Option.none()
              ))
          ), { concurrency: "unbounded" })
        return Arr.getSomes(answers)
      }).pipe(Effect.withSpan("Rpc.heads", { attributes: { network: name } }))

    const optional = <A>(name: string, method: string, f: (c: PublicClient) => Promise<A>) =>
      call(name, method, (c) => f(c).then((a) => Option.some(a), (e) => (notFound(e) ? Option.none<A>() : Promise.reject(e))))

    return {
      reload,
      health,
      networkConfig: (name: string) => Effect.map(network(name), (n) => n.config),
      networks: Effect.map(SynchronizedRef.get(state), (m) => [...m.values()].map((n) => n.config)),
      chainId: (name: string) => call(name, "eth_chainId", (c) => c.getChainId()),
      blockNumber: (name: string) => call(name, "eth_blockNumber", (c) => c.getBlockNumber({ cacheTime: 0 })),
      heads,
      block: (name: string, blockNumber: bigint) =>
        call(name, "eth_getBlockByNumber", (c) => c.getBlock({ blockNumber })),
      /** The block at a height, or none when the node has none there (a reorg under way, an endpoint behind). */
      blockIfAny: (name: string, blockNumber: bigint) =>
        optional(name, "eth_getBlockByNumber", (c) => c.getBlock({ blockNumber })),
      receipt: (name: string, hash: `0x${string}`) =>
        optional(name, "eth_getTransactionReceipt", (c) => c.getTransactionReceipt({ hash })),
      transaction: (name: string, hash: `0x${string}`) =>
        optional(name, "eth_getTransactionByHash", (c) => c.getTransaction({ hash })),
      /** Logs of these contracts in [fromBlock, toBlock]; a provider that refuses the range fails retryable. */
      logs: (name: string, q: { addresses: ReadonlyArray<`0x${string}`>; fromBlock: bigint; toBlock: bigint }) =>
        call(name, "eth_getLogs", (c) => c.getLogs({ address: [...q.addresses], fromBlock: q.fromBlock, toBlock: q.toBlock })),
      /** A view function of a contract, by its ABI (the answer is decoded by the caller). */
      readContract: (name: string, q: { address: `0x${string}`; abi: Abi; functionName: string }) =>
        call(name, "eth_call", (c): Promise<unknown> => c.readContract({ address: q.address, abi: q.abi, functionName: q.functionName })),
      estimateGas: (name: string, tx: { account: `0x${string}`; to: `0x${string}`; data: `0x${string}`; value: bigint }) =>
        call(name, "eth_estimateGas", (c) => c.estimateGas(tx)),
      /**
       * Hash and parent hash of these blocks, one JSON-RPC batch per 500 heights; a height the node has no block at
       * is left out. One round trip where the listener's reorg checks would otherwise read block by block.
       */
      blockHeads: (name: string, numbers: ReadonlyArray<bigint>) =>
        Effect.forEach(Arr.chunksOf([...new Set(numbers)], BLOCK_BATCH), (chunk) =>
          call(name, "eth_getBlockByNumber", (c) => batchBlocks(c, chunk, timeoutMs)).pipe(
            Effect.flatMap((raw) =>
              Schema.decodeUnknown(Schema.Array(BlockHeadJson))(raw).pipe(
                Effect.mapError(() =>
                  new RpcError({ network: name, method: "eth_getBlockByNumber", endpoint: -1, retryable: false, message: "malformed block in a batch answer" })
                )
              )
            )
          ), { concurrency: 1 }).pipe(
          Effect.map((chunks) => new Map(chunks.flat().filter((b) => b !== null).map((b) => [b.number, b] as const))),
          Effect.withSpan("Rpc.blockHeads", { attributes: { network: name, blocks: numbers.length } })
        )
    } as const
  }),
  dependencies: [CryptoConfig.Default, EndpointGuard.Default, RetryPolicyState.Default]
}) {}

const BLOCK_BATCH = 500

const HexQuantity = Schema.transform(Schema.String.pipe(Schema.pattern(/^0x[0-9a-f]+$/i)), Schema.BigIntFromSelf, {
  strict: true,
  decode: (hex) => BigInt(hex),
  encode: (n) => `0x${n.toString(16)}`
})

/** The fields of a block the reorg checks use; null is a height the node has no block at. */
const BlockHeadJson = Schema.NullOr(Schema.Struct({ number: HexQuantity, hash: Schema.String, parentHash: Schema.String }))
export type BlockHead = NonNullable<typeof BlockHeadJson.Type>

/**
 * `eth_getBlockByNumber` (no transactions) for each height in one HTTP JSON-RPC batch, answers in request order.
 * An error answer for any of them fails the batch as viem fails a single call, so the one retry table decides.
 */
const batchBlocks = async (client: PublicClient, numbers: ReadonlyArray<bigint>, timeout: number): Promise<ReadonlyArray<unknown>> => {
  const url: unknown = client.transport["url"]
  if (typeof url !== "string") throw new Error("batched block reads need an HTTP endpoint")
  const body = numbers.map((n, id) => ({ jsonrpc: "2.0" as const, id, method: "eth_getBlockByNumber", params: [numberToHex(n), false] }))
  const answers = await getHttpRpcClient(url, { timeout }).request({ body })
  const byId = new Map(answers.map((a) => [a.id, a] as const))
  return body.map((request) => {
    const answer = byId.get(request.id)
    if (answer === undefined) throw new RpcRequestError({ body: request, error: { code: -32603, message: "no answer in the batch" }, url })
    if ("error" in answer && answer.error !== undefined) throw new RpcRequestError({ body: request, error: answer.error, url })
    return "result" in answer ? answer.result : null
  })
}
