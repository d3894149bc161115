/**
 * The backfill bench's chain: a fresh anvil holding `events` Minted logs, `perBlock` to a block, emitted by the
 * MintedBurst helper (compiled here with solc-js) so setup takes seconds, not one signed quote per event.
 */
import { Effect, type Scope } from "effect"
import { createRequire } from "node:module"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { type Abi, createPublicClient, createWalletClient, getAddress, type Hex, http } from "viem"
import { freePort, start as startAnvil } from "../../src/devnet/Anvil.ts"
import { devnetChain } from "../../src/devnet/Deploy.ts"
import { DevnetChainId } from "../../src/devnet/Devnet.ts"
import { devAccount } from "../support/anvil.ts"

interface Solc {
  readonly compile: (input: string) => string
}
interface SolcOutput {
  readonly errors?: ReadonlyArray<{ readonly severity: string; readonly formattedMessage: string }>
  readonly contracts?: Record<string, Record<string, { readonly abi: Abi; readonly evm: { readonly bytecode: { readonly object: string } } }>>
}

const compileBurst = Effect.sync(() => {
  const solc: Solc = createRequire(import.meta.url)("solc")
  const source = readFileSync(fileURLToPath(new URL("./MintedBurst.sol", import.meta.url)), "utf8")
  const output = JSON.parse(solc.compile(JSON.stringify({
    language: "Solidity",
    sources: { "MintedBurst.sol": { content: source } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "paris", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } }
  }))) as SolcOutput
  const problems = (output.errors ?? []).filter((e) => e.severity === "error")
  const contract = output.contracts?.["MintedBurst.sol"]?.["MintedBurst"]
  if (problems.length > 0 || contract === undefined) throw new Error(`MintedBurst.sol: ${problems.map((p) => p.formattedMessage).join("\n")}`)
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` as Hex }
})

export interface BackfillChain {
  readonly rpcUrl: string
  readonly chainId: number
  readonly address: `0x${string}`
  /** First and last block holding the bench's logs. */
  readonly fromBlock: bigint
  readonly toBlock: bigint
}

/** Starts anvil (stopped with the scope), deploys MintedBurst and emits `events` Minted logs, `perBlock` a block. */
export const backfillChain = (events: number, perBlock: number): Effect.Effect<BackfillChain, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const anvil = yield* startAnvil({ port, chainId: DevnetChainId })
    const chain = devnetChain(anvil.rpcUrl, anvil.chainId)
    const transport = http(anvil.rpcUrl, { retryCount: 0, timeout: 60_000 })
    const account = devAccount(0)
    const wallet = createWalletClient({ account, chain, transport })
    const client = createPublicClient({ chain, transport })
    const { abi, bytecode } = yield* compileBurst
    const deployed = yield* Effect.promise(() => wallet.deployContract({ abi, bytecode }))
    const receipt = yield* Effect.promise(() => client.waitForTransactionReceipt({ hash: deployed, pollingInterval: 20 }))
    const address = getAddress(receipt.contractAddress!)
    const nonce = yield* Effect.promise(() => client.getTransactionCount({ address: account.address }))
    const fromBlock = (yield* Effect.promise(() => client.getBlockNumber({ cacheTime: 0 }))) + 1n
    // Automine: each burst is a block (anvil may put two in one). Signed locally with explicit nonce and gas, sent without waiting in between.
    const blocks = Math.ceil(events / perBlock)
    const gas = 60_000n + 3_000n * BigInt(perBlock)
    const hashes = yield* Effect.forEach(Array.from({ length: blocks }, (_, i) => i), (i) =>
      Effect.promise(() =>
        wallet.writeContract({
          address,
          abi,
          functionName: "burst",
          args: [BigInt(i * perBlock), BigInt(Math.min(perBlock, events - i * perBlock))],
          nonce: nonce + i,
          gas,
          maxFeePerGas: 10n ** 10n,
          maxPriorityFeePerGas: 1n
        })
      ), { concurrency: 1 })
    // anvil may answer a send before its block is stored: the last receipt means every burst is mined.
    yield* Effect.promise(() => client.waitForTransactionReceipt({ hash: hashes.at(-1)!, pollingInterval: 20 }))
    const toBlock = yield* Effect.promise(() => client.getBlockNumber({ cacheTime: 0 }))
    return { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, address, fromBlock, toBlock }
  })
