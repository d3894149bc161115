/**
 * The suite's chain: anvil with the reference contracts (quote signer: a fresh key, as a production start demands),
 * viem clients talking to anvil directly, a block mined every interval, and anvil_reorg for the reorg scenario.
 */
import { Data, type Duration, Effect, Schema, type Scope } from "effect"
import { createPublicClient, createTestClient, createWalletClient, type Hex, http, type TransactionReceipt } from "viem"
import { generatePrivateKey } from "viem/accounts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { freePort } from "../../src/devnet/Anvil.ts"
import { devnetChain } from "../../src/devnet/Deploy.ts"
import { Devnet, type DevnetInfo } from "../../src/devnet/Devnet.ts"
import { devAccount } from "../support/anvil.ts"

export class ChainError extends Data.TaggedError("ChainError")<{ readonly cause: unknown }> {}

const call = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new ChainError({ cause }) })

export const startChain = Effect.gen(function*() {
  const signerKey = generatePrivateKey()
  const info: DevnetInfo = yield* Devnet.start({ port: yield* freePort, signerPrivateKey: signerKey }).pipe(Effect.orDie)
  const chain = devnetChain(info.rpc_url, info.chain_id)
  const transport = http(info.rpc_url, { retryCount: 0, timeout: 10_000 })
  const publicClient = createPublicClient({ chain, transport })
  const testClient = createTestClient({ mode: "anvil", chain, transport })
  const wallets = new Map<number, ReturnType<typeof walletOf>>()
  const walletOf = (account: number) => createWalletClient({ chain, transport, account: devAccount(account) })
  const wallet = (account: number) => {
    const w = wallets.get(account) ?? walletOf(account)
    wallets.set(account, w)
    return w
  }

  /** Signs the checkout's mint without sending it, so the same transaction can be mined again after a reorg. */
  const signMint = (account: number, tx: { readonly to: string; readonly data: string; readonly value: string; readonly gas: string }) =>
    call(async () => {
      const w = wallet(account)
      const request = await w.prepareTransactionRequest({
        to: tx.to as Hex,
        data: tx.data as Hex,
        value: BigInt(tx.value),
        gas: BigInt(tx.gas),
        chain
      })
      return w.signTransaction(request)
    })

  // anvil was seen to leave a height without a block (its head past it) after many anvil_reorg calls racing blocks
  // mined by sends (automine) and keepMining: what changes the chain goes one at a time, as on a real node
  const changing = yield* Effect.makeSemaphore(1)
  const change = <A>(f: () => Promise<A>) => changing.withPermits(1)(call(f))

  const sendRaw = (raw: Hex) => change(() => publicClient.sendRawTransaction({ serializedTransaction: raw }))

  /** The receipt once mined; none if it is not mined within `timeoutMs` (a reorg may have dropped it). */
  const receipt = (hash: Hex, timeoutMs: number): Effect.Effect<TransactionReceipt | undefined> =>
    call(() => publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50, timeout: timeoutMs, retryCount: 0 })).pipe(
      Effect.orElseSucceed(() => undefined)
    )

  const mine = (blocks = 1) => change(() => testClient.mine({ blocks }))

  const head = call(() => publicClient.getBlockNumber())

  const TxPool = Schema.Struct({ pending: Schema.String, queued: Schema.String })
  const pool = call(() => testClient.request<{ Parameters: []; ReturnType: unknown }>({ method: "txpool_status", params: [] })).pipe(
    Effect.flatMap(Schema.decodeUnknown(TxPool)),
    Effect.mapError((cause) => new ChainError({ cause })),
    Effect.map((p) => ({ pending: BigInt(p.pending), queued: BigInt(p.queued) }))
  )
  const reorgRaw = (depth: number, raws: ReadonlyArray<Hex>) =>
    call(() =>
      testClient.request<{ Parameters: [number, Array<readonly [Hex, number]>]; ReturnType: null }>({
        method: "anvil_reorg",
        params: [depth, raws.map((raw) => [raw, 0] as const)]
      })
    )
  /**
   * anvil_reorg: the `depth` newest blocks are replaced; what `again` picks (given the head) is mined again in the
   * first new block, or, when anvil refuses that set, nothing. anvil_reorg with a transaction pending in anvil's pool
   * left heights without a block (reproduced alone: a reorg of depth 1 over head 670 with one pending gave head 672 and
   * no block 670; none in 600 reorgs once the pool was mined first), so pending transactions are mined first.
   */
  const reorg = (depth: number, again: (head: bigint) => Effect.Effect<ReadonlyArray<Hex>>) =>
    changing.withPermits(1)(Effect.gen(function*() {
      for (let i = 0; i < 10 && (yield* pool).pending > 0n; i++) yield* call(() => testClient.mine({ blocks: 1 }))
      const raws = yield* again(yield* call(() => publicClient.getBlockNumber({ cacheTime: 0 })))
      yield* reorgRaw(depth, raws).pipe(Effect.orElse(() => reorgRaw(depth, [])))
    }))

  /** What the chain says: has the contract used this order id (a successful mint on the canonical chain)? */
  const orderUsed = (orderId: string) =>
    call(() =>
      publicClient.readContract({
        address: info.contract_address,
        abi: SubscriptionPassAbi,
        functionName: "usedOrders",
        args: [orderId as Hex]
      })
    )

  /**
   * Makes the chain final for the checks: what the mempool holds is mined, and what can never be (a nonce gap left by
   * a reorg) is dropped, so no order becomes paid after the scenario has read the chain.
   */
  const drainMempool = Effect.gen(function*() {
    for (let i = 0; i < 20; i++) {
      const p = yield* pool
      if (p.pending + p.queued === 0n) return
      yield* mine(1)
    }
    yield* change(() => testClient.request<{ Parameters: []; ReturnType: unknown }>({ method: "anvil_dropAllTransactions", params: [] }))
  })

  /**
   * Whether the canonical chain holds this transaction as a success: its receipt, in the block now at that height. What
   * billing reads (receipts and logs), and after anvil_reorg sometimes not what anvil's contract state says (see Checks).
   */
  const minted = (hash: Hex) =>
    call(() => publicClient.getTransactionReceipt({ hash })).pipe(
      Effect.flatMap((r) =>
        r.status !== "success" ? Effect.succeed(false) : call(() => publicClient.getBlock({ blockNumber: r.blockNumber })).pipe(
          Effect.map((b) => b.hash === r.blockHash && b.transactions.includes(hash))
        )
      ),
      Effect.orElseSucceed(() => false)
    )

  /** Heights at or below the head with no block: a real chain has none; anvil was seen with one (see `change`). */
  const holes = Effect.gen(function*() {
    const top = yield* head
    const heights = Array.from({ length: Number(top) + 1 }, (_, i) => BigInt(i))
    const found = yield* Effect.forEach(heights, (blockNumber) =>
      call(() => publicClient.getBlock({ blockNumber })).pipe(Effect.as(true), Effect.orElseSucceed(() => false)), { concurrency: 16 })
    return heights.filter((_, i) => !found[i])
  })

  /** The final chain's word on one order's transaction, for the evidence file; the block at `recorded` if given. */
  const inspect = (hash: Hex, orderId: string, recorded: bigint | undefined) =>
    Effect.all({
      used: orderUsed(orderId),
      receipt: call(() => publicClient.getTransactionReceipt({ hash })).pipe(
        Effect.map((r) => ({ block: r.blockNumber.toString(), block_hash: r.blockHash, status: r.status })),
        Effect.orElseSucceed(() => null)
      ),
      recorded_block: recorded === undefined ? Effect.succeed(null) : call(() => publicClient.getBlock({ blockNumber: recorded })).pipe(
        Effect.map((b) => ({ hash: b.hash, holds_tx: b.transactions.includes(hash) })),
        Effect.orElseSucceed(() => null)
      )
    }).pipe(Effect.orElseSucceed(() => null))

  return { info, drainMempool, signerKey, wallet, signMint, sendRaw, receipt, mine, head, holes, reorg, orderUsed, minted, inspect } as const
})

export type Chain = Effect.Effect.Success<typeof startChain>

/** Mines a block every `interval` until the scope closes, so confirmations keep coming between payments. */
export const keepMining = (chain: Chain, interval: Duration.DurationInput): Effect.Effect<void, never, Scope.Scope> =>
  chain.mine().pipe(
    Effect.ignore,
    Effect.zipRight(Effect.sleep(interval)),
    Effect.forever,
    Effect.forkScoped,
    Effect.asVoid
  )
