/**
 * A real anvil devnet with the reference contracts deployed, one per test file, plus viem clients.
 *
 *   layer(TestDevnet.layer)("SubscriptionPass", (it) => {
 *     it.effect("...", () => Effect.gen(function*() { const devnet = yield* TestDevnet }))
 *   })
 */
import { Context, Data, Effect, Layer, type Scope } from "effect"
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createTestClient,
  createWalletClient,
  type Hash,
  type Hex,
  http,
  type PrivateKeyAccount,
  type TransactionReceipt
} from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { freePort } from "../../src/devnet/Anvil.ts"
import { awaitReceipt, DEV_SIGNER_PRIVATE_KEY, DevAccounts, devnetChain } from "../../src/devnet/Deploy.ts"
import { Devnet, type DevnetInfo } from "../../src/devnet/Devnet.ts"

/** A chain call (viem promise) that failed; `cause` is viem's error. */
export class ChainCallError extends Data.TaggedError("ChainCallError")<{ readonly cause: unknown }> {}

export const chainCall = <A>(f: () => Promise<A>): Effect.Effect<A, ChainCallError> =>
  Effect.tryPromise({ try: f, catch: (cause) => new ChainCallError({ cause }) })

/** Anvil dev account by index (0 = deployer/operator, 8 = quote signer, 9 = treasury). */
export const devAccount = (index: number): PrivateKeyAccount => {
  const key = DevAccounts[index]
  if (key === undefined) throw new Error(`anvil has dev accounts 0..9, not ${index}`)
  return privateKeyToAccount(key)
}

const clientsFor = (info: DevnetInfo) => {
  const chain = devnetChain(info.rpc_url, info.chain_id)
  // Every call goes to the node once: a flaky devnet should fail the test, not be retried.
  const transport = http(info.rpc_url, { retryCount: 0 })
  return {
    info,
    chain,
    signer: privateKeyToAccount(DEV_SIGNER_PRIVATE_KEY),
    publicClient: createPublicClient({ chain, transport }),
    testClient: createTestClient({ mode: "anvil", chain, transport }),
    wallet: (account: number | PrivateKeyAccount) =>
      createWalletClient({ chain, transport, account: typeof account === "number" ? devAccount(account) : account })
  }
}

export type TestDevnetHandle = ReturnType<typeof clientsFor>

/**
 * A fresh devnet on a free port, stopped with the scope. A port taken between `freePort` and
 * anvil's bind makes anvil exit; then we try another port.
 */
export const startTestDevnet: Effect.Effect<TestDevnetHandle, never, Scope.Scope> = Effect.gen(function*() {
  const port = yield* freePort
  return yield* Devnet.start({ port })
}).pipe(
  Effect.retry({ times: 3, while: (e) => e._tag === "AnvilError" && e.reason === "Exited" }),
  Effect.map(clientsFor),
  Effect.orDie
)

export class TestDevnet extends Context.Tag("test/TestDevnet")<TestDevnet, TestDevnetHandle>() {
  static readonly layer = Layer.scoped(TestDevnet, startTestDevnet)
}

/** Runs `f` against its own devnet, stopped afterwards. */
export const withDevnet = <A, E, R>(f: (devnet: TestDevnetHandle) => Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.flatMap(startTestDevnet, f))

/** Runs `effect` and reverts the chain to the state before it (anvil snapshot), so tests stay independent. */
export const withSnapshot = <A, E, R>(devnet: TestDevnetHandle, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    chainCall(() => devnet.testClient.snapshot()).pipe(Effect.orDie),
    () => effect,
    (id: Hex) => chainCall(() => devnet.testClient.revert({ id })).pipe(Effect.orDie)
  )

/** Sends a transaction and waits for its receipt. */
export const sendTx = (devnet: TestDevnetHandle, send: () => Promise<Hash>): Effect.Effect<TransactionReceipt, ChainCallError> =>
  chainCall(send).pipe(
    Effect.flatMap((hash) =>
      awaitReceipt(() => devnet.publicClient.getTransactionReceipt({ hash })).pipe(
        Effect.mapError((cause) => new ChainCallError({ cause }))
      )
    )
  )

/** The custom error name a contract call reverted with; dies if it did not revert. */
export const revertName = <A>(effect: Effect.Effect<A, ChainCallError>): Effect.Effect<string> =>
  effect.pipe(
    Effect.matchEffect({
      onSuccess: () => Effect.dieMessage("expected the call to revert, it succeeded"),
      onFailure: ({ cause }) => {
        const reverted = cause instanceof BaseError
          ? cause.walk((e) => e instanceof ContractFunctionRevertedError)
          : null
        return reverted instanceof ContractFunctionRevertedError
          ? Effect.succeed(reverted.data?.errorName ?? reverted.reason ?? "unknown revert")
          : Effect.die(cause)
      }
    })
  )

export const latestTimestamp = (devnet: TestDevnetHandle): Effect.Effect<bigint, ChainCallError> =>
  chainCall(() => devnet.publicClient.getBlock()).pipe(Effect.map((block) => block.timestamp))
