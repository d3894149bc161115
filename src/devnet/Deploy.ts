/**
 * Deploys the reference contracts (TestToken, SubscriptionPass) to a devnet with anvil's
 * well-known development accounts.
 */
import { Data, Effect, Schedule } from "effect"
import {
  type Address,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  type Hash,
  type Hex,
  http,
  isHex,
  type PrivateKeyAccount,
  TransactionReceiptNotFoundError
} from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { SubscriptionPassAbi, SubscriptionPassBytecode, TestTokenAbi, TestTokenBytecode } from "../contracts/abi.ts"
import { realTime } from "./Anvil.ts"

/** Private keys of anvil's default accounts 0..9 (mnemonic "test test ... junk"); public, devnets only. */
export const DevAccounts = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
  "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
  "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
  "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
  "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
  "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
  "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
] as const satisfies ReadonlyArray<Hex>

/** Anvil account 0: deploys the contracts and is their operator. */
export const DEV_DEPLOYER_PRIVATE_KEY = DevAccounts[0]

/**
 * Anvil account 8: the development quote signer, used when BILLING_SIGNER_PRIVATE_KEY is unset.
 * Publicly known, so never acceptable outside a devnet.
 */
export const DEV_SIGNER_PRIVATE_KEY = DevAccounts[8]

/** Anvil account 9: the default treasury. */
export const DEV_TREASURY_ADDRESS: Address = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"

export class DeployError extends Data.TaggedError("DeployError")<{
  readonly step: "account" | "TestToken" | "SubscriptionPass"
  readonly message: string
  readonly cause?: unknown
}> {}

export interface DeployOptions {
  readonly rpcUrl: string
  readonly chainId: number
  readonly signerAddress: Address
  readonly treasury?: Address
  readonly deployerKey?: Hex
}

export interface ReferenceDeployment {
  readonly contractAddress: Address
  readonly tokenAddress: Address
  readonly signerAddress: Address
  readonly treasuryAddress: Address
  readonly operatorAddress: Address
}

/** A viem chain for a local node; anvil's native coin is called ETH. */
export const devnetChain = (rpcUrl: string, chainId: number): Chain =>
  defineChain({
    id: chainId,
    name: "anvil",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } }
  })

/** Parses a private key; the error never carries the key or a cause that could echo it. */
export const accountFromKey = (key: string): Effect.Effect<PrivateKeyAccount, DeployError> =>
  Effect.try({
    try: () => {
      if (!isHex(key, { strict: true })) throw new Error("not hex")
      return privateKeyToAccount(key)
    },
    catch: () => new DeployError({ step: "account", message: "invalid private key" })
  })

/**
 * Polls for a receipt (the error is viem's). Even under automine anvil may answer
 * eth_sendRawTransaction before the block holding the transaction is stored.
 */
export const awaitReceipt = <R>(getReceipt: () => Promise<R>): Effect.Effect<R, unknown> =>
  Effect.tryPromise({ try: getReceipt, catch: (cause) => cause }).pipe(
    Effect.retry({
      schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo("30 seconds")),
      while: (cause) => cause instanceof TransactionReceiptNotFoundError
    }),
    realTime
  )

export const deployReference = (options: DeployOptions): Effect.Effect<ReferenceDeployment, DeployError> =>
  Effect.gen(function*() {
    const deployer = yield* accountFromKey(options.deployerKey ?? DEV_DEPLOYER_PRIVATE_KEY)
    const chain = devnetChain(options.rpcUrl, options.chainId)
    const transport = http(options.rpcUrl, { retryCount: 0 })
    const wallet = createWalletClient({ account: deployer, chain, transport })
    const client = createPublicClient({ chain, transport })
    const treasury = options.treasury ?? DEV_TREASURY_ADDRESS

    const deploy = (step: "TestToken" | "SubscriptionPass", send: () => Promise<Hash>) =>
      Effect.gen(function*() {
        const fail = (message: string, cause?: unknown) => new DeployError({ step, message, cause })
        const hash = yield* Effect.tryPromise({ try: send, catch: (cause) => fail("deploy transaction failed", cause) })
        const receipt = yield* awaitReceipt(() => client.getTransactionReceipt({ hash })).pipe(
          Effect.mapError((cause) => fail(`no receipt for ${hash}`, cause))
        )
        if (receipt.status !== "success" || !receipt.contractAddress) {
          return yield* fail(`deployment ${hash} reverted`)
        }
        return getAddress(receipt.contractAddress)
      }).pipe(Effect.withSpan(`Deploy.${step}`))

    const tokenAddress = yield* deploy(
      "TestToken",
      () => wallet.deployContract({ abi: TestTokenAbi, bytecode: TestTokenBytecode })
    )
    const contractAddress = yield* deploy("SubscriptionPass", () =>
      wallet.deployContract({
        abi: SubscriptionPassAbi,
        bytecode: SubscriptionPassBytecode,
        args: [options.signerAddress, treasury, deployer.address]
      }))
    return {
      contractAddress,
      tokenAddress,
      signerAddress: options.signerAddress,
      treasuryAddress: treasury,
      operatorAddress: deployer.address
    }
  }).pipe(realTime, Effect.withSpan("Deploy.deployReference"))
