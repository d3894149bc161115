import { Config, Duration, Effect, Option, Schedule, SynchronizedRef } from "effect"
import {
  BaseError,
  createPublicClient,
  http,
  type PublicClient,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError
} from "viem"
import { CryptoConfig, type NetworkConfig } from "./CryptoConfig.ts"
import { isRetryable, RpcError, safeMessage, UnknownNetwork } from "./RpcError.ts"

interface NetworkClients {
  readonly config: NetworkConfig
  readonly clients: ReadonlyArray<PublicClient>
}

export const RpcRetryConfig = Config.all({
  attempts: Config.integer("BILLING_RPC_RETRY_ATTEMPTS").pipe(Config.withDefault(3)),
  baseDelay: Config.duration("BILLING_RPC_RETRY_BASE_DELAY").pipe(Config.withDefault(Duration.millis(200))),
  timeout: Config.duration("BILLING_RPC_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10)))
})

const notFound = (error: unknown) =>
  error instanceof BaseError &&
  error.walk((e) => e instanceof TransactionReceiptNotFoundError || e instanceof TransactionNotFoundError) !== null

/**
 * Chain reads per network. viem's own retries are off: this service walks the endpoints in priority order,
 * moves on only on a retryable error, and retries the round on an operator-tunable Schedule.
 */
export class Rpc extends Effect.Service<Rpc>()("billing/Rpc", {
  effect: Effect.gen(function*() {
    const cryptoConfig = yield* CryptoConfig
    const retry = yield* RpcRetryConfig
    const schedule = Schedule.exponential(retry.baseDelay).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(Math.max(0, retry.attempts - 1)))
    )
    const timeoutMs = Duration.toMillis(retry.timeout)

    const build = (configs: ReadonlyArray<NetworkConfig>) =>
      new Map(configs.map((config) => [config.network, {
        config,
        clients: config.rpc_endpoints.map((url) =>
          createPublicClient({ transport: http(url, { retryCount: 0, timeout: timeoutMs }) }) as PublicClient
        )
      }]))

    const state = yield* SynchronizedRef.make<ReadonlyMap<string, NetworkClients>>(build(yield* cryptoConfig.all))
    const reload = SynchronizedRef.updateEffect(state, () => Effect.map(cryptoConfig.all, build))

    const network = (name: string) =>
      Effect.flatMap(SynchronizedRef.get(state), (m) => {
        const n = m.get(name)
        return n ? Effect.succeed(n) : Effect.fail(new UnknownNetwork({ network: name }))
      })

    const attempt = <A>(name: string, method: string, index: number, client: PublicClient, f: (c: PublicClient) => Promise<A>) =>
      Effect.tryPromise({
        try: () => f(client),
        catch: (error) => new RpcError({ network: name, method, endpoint: index, retryable: isRetryable(error), message: safeMessage(error) })
      })

    /** One round over the endpoints in order; a non-retryable error stops the round at once. */
    const call = <A>(name: string, method: string, f: (c: PublicClient) => Promise<A>) =>
      Effect.flatMap(network(name), ({ clients }) => {
        const from = (i: number): Effect.Effect<A, RpcError> =>
          attempt(name, method, i, clients[i]!, f).pipe(
            Effect.catchIf((e) => e.retryable && i + 1 < clients.length, (e) =>
              Effect.logWarning("rpc endpoint failed, trying the next").pipe(
                Effect.annotateLogs({ network: name, method, endpoint: e.endpoint, error: e.message }),
                Effect.zipRight(from(i + 1))
              ))
          )
        return from(0).pipe(Effect.retry({ schedule, while: (e) => e.retryable }))
      }).pipe(Effect.withSpan(`Rpc.${method}`, { attributes: { network: name } }))

    const optional = <A>(name: string, method: string, f: (c: PublicClient) => Promise<A>) =>
      call(name, method, (c) => f(c).then((a) => Option.some(a), (e) => (notFound(e) ? Option.none<A>() : Promise.reject(e))))

    return {
      reload,
      networkConfig: (name: string) => Effect.map(network(name), (n) => n.config),
      networks: Effect.map(SynchronizedRef.get(state), (m) => [...m.values()].map((n) => n.config)),
      chainId: (name: string) => call(name, "eth_chainId", (c) => c.getChainId()),
      blockNumber: (name: string) => call(name, "eth_blockNumber", (c) => c.getBlockNumber({ cacheTime: 0 })),
      block: (name: string, blockNumber: bigint) =>
        call(name, "eth_getBlockByNumber", (c) => c.getBlock({ blockNumber })),
      receipt: (name: string, hash: `0x${string}`) =>
        optional(name, "eth_getTransactionReceipt", (c) => c.getTransactionReceipt({ hash })),
      transaction: (name: string, hash: `0x${string}`) =>
        optional(name, "eth_getTransactionByHash", (c) => c.getTransaction({ hash })),
      estimateGas: (name: string, tx: { account: `0x${string}`; to: `0x${string}`; data: `0x${string}`; value: bigint }) =>
        call(name, "eth_estimateGas", (c) => c.estimateGas(tx))
    } as const
  }),
  dependencies: [CryptoConfig.Default]
}) {}
