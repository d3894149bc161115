/**
 * A chain full of `Minted` logs for listener tests and the backfill bench: a fresh anvil with the MintedBurst helper
 * (compiled here with solc-js), one block per burst, so thousands of events take a few seconds to set up instead of a
 * signed quote and a payment each.
 */
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { ConfigProvider, Effect, Layer, Redacted, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { type Abi, createPublicClient, createWalletClient, getAddress, type Hex, http } from "viem"
import { pgLayer } from "../../services/Database.ts"
import { runMigrations } from "../../services/Migrations.ts"
import { seedFromEnvironment } from "../../src/Bootstrap.ts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { freePort, start as startAnvil } from "../../src/devnet/Anvil.ts"
import { devnetChain } from "../../src/devnet/Deploy.ts"
import { DevnetChainId } from "../../src/devnet/Devnet.ts"
import { devAccount } from "./anvil.ts"

interface Solc {
  readonly compile: (input: string) => string
}
interface SolcOutput {
  readonly errors?: ReadonlyArray<{ readonly severity: string; readonly formattedMessage: string }>
  readonly contracts?: Record<string, Record<string, { readonly abi: Abi; readonly evm: { readonly bytecode: { readonly object: string } } }>>
}

const compileMintedBurst = Effect.sync(() => {
  const solc: Solc = createRequire(import.meta.url)("solc")
  const content = readFileSync(new URL("./contracts/MintedBurst.sol", import.meta.url), "utf8")
  const output = JSON.parse(solc.compile(JSON.stringify({
    language: "Solidity",
    sources: { "MintedBurst.sol": { content } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "paris", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } }
  }))) as SolcOutput
  const problems = (output.errors ?? []).filter((e) => e.severity === "error")
  const contract = output.contracts?.["MintedBurst.sol"]?.["MintedBurst"]
  if (problems.length > 0 || contract === undefined) throw new Error(`MintedBurst: ${problems.map((p) => p.formattedMessage).join("\n")}`)
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` as Hex }
})

export interface BurstChain {
  readonly rpcUrl: string
  readonly chainId: number
  /** MintedBurst's address (checksummed); its logs decode with SubscriptionPassAbi. */
  readonly address: `0x${string}`
  /** First and last block holding the bursts' logs. */
  readonly fromBlock: bigint
  readonly toBlock: bigint
  readonly events: number
  /** Mines `n` empty blocks. */
  readonly mine: (n: number) => Effect.Effect<void>
}

/**
 * Starts anvil (stopped with the scope), deploys MintedBurst and mines one block per entry of `bursts`, holding that
 * many Minted logs (order ids and pass ids count up from 0).
 */
export const burstChain = (bursts: ReadonlyArray<number>): Effect.Effect<BurstChain, never, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const anvil = yield* startAnvil({ port, chainId: DevnetChainId })
    const chain = devnetChain(anvil.rpcUrl, anvil.chainId)
    const transport = http(anvil.rpcUrl, { retryCount: 0, timeout: 60_000 })
    const account = devAccount(0)
    const wallet = createWalletClient({ account, chain, transport })
    const client = createPublicClient({ chain, transport })
    const { abi, bytecode } = yield* compileMintedBurst
    const deployed = yield* Effect.promise(() => wallet.deployContract({ abi, bytecode }))
    const receipt = yield* Effect.promise(() => client.waitForTransactionReceipt({ hash: deployed, pollingInterval: 20 }))
    const address = getAddress(receipt.contractAddress!)
    const nonce = yield* Effect.promise(() => client.getTransactionCount({ address: account.address }))
    const mineBlocks = (n: number) =>
      Effect.promise(() => client.request<{ Parameters: [Hex]; ReturnType: null }>({ method: "anvil_mine", params: [`0x${n.toString(16)}`] }))
    // Automine off: each burst is sent, then mined into a block of its own.
    yield* Effect.promise(() => client.request<{ Parameters: [boolean]; ReturnType: null }>({ method: "evm_setAutomine", params: [false] }))
    const fromBlock = (yield* Effect.promise(() => client.getBlockNumber({ cacheTime: 0 }))) + 1n
    let first = 0
    for (const [i, count] of bursts.entries()) {
      yield* Effect.promise(() =>
        wallet.writeContract({
          address,
          abi,
          functionName: "burst",
          args: [BigInt(first), BigInt(count)],
          nonce: nonce + i,
          gas: 60_000n + 3_000n * BigInt(count),
          maxFeePerGas: 10n ** 10n,
          maxPriorityFeePerGas: 1n
        })
      )
      yield* mineBlocks(1)
      first += count
    }
    const toBlock = yield* Effect.promise(() => client.getBlockNumber({ cacheTime: 0 }))
    return {
      rpcUrl: anvil.rpcUrl,
      chainId: anvil.chainId,
      address,
      fromBlock,
      toBlock,
      events: first,
      mine: (n: number) => Effect.asVoid(mineBlocks(n))
    }
  }).pipe(Effect.orDie)

const SERVER = "postgres://postgres@127.0.0.1:5432"

/**
 * A fresh, migrated database for a listener over `chain`: network `anvil`, MintedBurst registered as contract `burst`
 * with the reference ABI, and the cursor at block 0. Dropped with the scope.
 */
export const burstDatabase = (chain: BurstChain) =>
  Effect.gen(function*() {
    const name = `billing_bench_${randomBytes(6).toString("hex")}`
    const admin = PgClient.layer({ url: Redacted.make(`${SERVER}/postgres`), maxConnections: 1 })
    const adminSql = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) => Effect.flatMap(PgClient.PgClient, f).pipe(Effect.provide(admin), Effect.orDie)
    yield* Effect.acquireRelease(adminSql((sql) => sql`CREATE DATABASE ${sql(name)}`), () =>
      adminSql((sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`))
    const url = `${SERVER}/${name}`
    const genesis = yield* Effect.promise(() =>
      createPublicClient({ transport: http(chain.rpcUrl) }).getBlock({ blockNumber: 0n })
    )
    yield* Effect.gen(function*() {
      yield* runMigrations()
      yield* seedFromEnvironment({ anvil: { chain_id: chain.chainId, rpc: [chain.rpcUrl], confirmations: 2, gas_cap: 1_000_000n } })
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO contracts (slug, network, address, abi, mint_method, burn_method, enabled)
        VALUES ('burst', 'anvil', ${chain.address.toLowerCase()}, ${JSON.stringify(SubscriptionPassAbi)}::jsonb, 'mint', 'burn', true)`
      yield* sql`INSERT INTO chain_cursors (network, block_number, block_hash) VALUES ('anvil', 0, ${genesis.hash})`
      yield* sql`INSERT INTO chain_blocks (network, block_number, block_hash) VALUES ('anvil', 0, ${genesis.hash})`
    }).pipe(
      Effect.provide(Layer.mergeAll(pgLayer(url), NodeContext.layer)),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BILLING_RPC_ALLOW_LOOPBACK", "true"]]))),
      Effect.orDie
    )
    return url
  })
