/**
 * The payer's side of the e2e run: sends the checkout's wallet transactions from an anvil dev account with viem,
 * finds the contract's event in the receipt, and mines blocks when the node is a devnet.
 */
import { Data, Effect } from "effect"
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  decodeEventLog,
  type Hex,
  http,
  type PrivateKeyAccount,
  type TransactionReceipt
} from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { SubscriptionPassAbi } from "../../contracts/abi.ts"
import { awaitReceipt, DevAccounts, devnetChain } from "../../devnet/Deploy.ts"
import type { CheckoutView } from "../../domain/Checkout.ts"

export class ChainFailure extends Data.TaggedError("ChainFailure")<{ readonly message: string }> {}

const describe = (cause: unknown) =>
  cause instanceof Error ? (("shortMessage" in cause && typeof cause.shortMessage === "string") ? cause.shortMessage : cause.message) : String(cause)

const call = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new ChainFailure({ message: `${what}: ${describe(cause)}` }) })

/** Anvil's well-known development account `index` (0..9); public keys, devnets only. */
export const devAccount = (index: number): Effect.Effect<PrivateKeyAccount, ChainFailure> => {
  const key = DevAccounts[index]
  return key === undefined
    ? Effect.fail(new ChainFailure({ message: `--account must be an anvil dev account 0..9, got ${index}` }))
    : Effect.succeed(privateKeyToAccount(key))
}

export const chainIdOf = (rpcUrl: string) =>
  call(`eth_chainId on ${rpcUrl}`, () => createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }).getChainId())

/** anvil, hardhat and ganache mine on request; other nodes are waited for. */
export const isDevnetNode = (rpcUrl: string) =>
  call("web3_clientVersion", () =>
    createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }).request({ method: "web3_clientVersion" })).pipe(
      Effect.map((version) => /anvil|hardhat|ganache/i.test(String(version))),
      Effect.orElseSucceed(() => false)
    )

export const chainClients = (rpcUrl: string, chainId: number) => {
  const chain = devnetChain(rpcUrl, chainId)
  const transport = http(rpcUrl, { retryCount: 0 })
  const publicClient = createPublicClient({ chain, transport })
  const testClient = createTestClient({ mode: "anvil", chain, transport })

  /** Sends the payload's transactions in order (ERC-20 approve, then mint) and returns their receipts. */
  const sendPayload = (checkout: CheckoutView, account: PrivateKeyAccount) =>
    Effect.forEach(checkout.payload.transactions, (tx, i) =>
      Effect.gen(function*() {
        const wallet = createWalletClient({ chain, transport, account })
        const hash = yield* call(`transaction ${i + 1}`, () =>
          wallet.sendTransaction({ to: tx.to as Hex, data: tx.data as Hex, value: BigInt(tx.value), gas: BigInt(tx.gas), chain }))
        const receipt: TransactionReceipt = yield* awaitReceipt(() => publicClient.getTransactionReceipt({ hash })).pipe(
          Effect.mapError((cause) => new ChainFailure({ message: `no receipt for ${hash}: ${describe(cause)}` }))
        )
        if (receipt.status !== "success") return yield* new ChainFailure({ message: `transaction ${hash} reverted` })
        return receipt
      }))

  /** The SubscriptionPass `Minted` log of a receipt. */
  const mintedLog = (receipt: TransactionReceipt, contract: string) => {
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== contract.toLowerCase()) continue
      try {
        const event = decodeEventLog({ abi: SubscriptionPassAbi, data: log.data, topics: log.topics })
        if (event.eventName === "Minted") return Effect.succeed({ logIndex: log.logIndex, args: event.args })
      } catch {
        // another event of the contract
      }
    }
    return Effect.fail(new ChainFailure({ message: `no Minted event of ${contract} in ${receipt.transactionHash}` }))
  }

  const mine = (blocks: number) => call(`anvil_mine ${blocks}`, () => testClient.mine({ blocks }))
  const blockNumber = call("eth_blockNumber", () => publicClient.getBlockNumber())

  return { chain, sendPayload, mintedLog, mine, blockNumber } as const
}
export type ChainClients = ReturnType<typeof chainClients>
