/**
 * Invariant 5, wrong_network: a checkout issued on `anvil` paid on a second chain (`anvil2`, chain id 31338,
 * its own SubscriptionPass registered as `pass2`) fails, and the coin that moved there is held as credit.
 */
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createPublicClient, createTestClient, createWalletClient, type Hex, http, zeroAddress } from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { Anvil } from "../../src/devnet/Anvil.ts"
import { DEV_SIGNER_PRIVATE_KEY, deployReference, devnetChain } from "../../src/devnet/Deploy.ts"
import { App, appHarness } from "../support/app.ts"
import { devAccount } from "../support/anvil.ts"
import {
  checkoutNative,
  failedEverywhere,
  mintedEvent,
  mintWithQuote,
  postingsOf,
  settledOverHttp
} from "../support/payments.ts"

const PRICES = { native: 10n ** 16n, token: 25_000_000n }
const CHAIN_ID = 31338
const NETWORK = "anvil2"
const PASS2 = "pass2"

/** A second anvil with the reference contracts, signed for by the same dev quote signer as the devnet. */
const startSecondChain = Effect.gen(function*() {
  const anvil = yield* Effect.flatMap(Anvil.freePort, (port) => Anvil.start({ port, chainId: CHAIN_ID })).pipe(
    Effect.retry({ times: 3, while: (e) => e.reason === "Exited" }) // the port was taken before anvil bound it
  )
  const signer = privateKeyToAccount(DEV_SIGNER_PRIVATE_KEY)
  const deployment = yield* deployReference({ rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, signerAddress: signer.address })
  const chain = devnetChain(anvil.rpcUrl, CHAIN_ID)
  const transport = http(anvil.rpcUrl, { retryCount: 0 })
  return {
    rpcUrl: anvil.rpcUrl,
    deployment,
    chain,
    signer,
    publicClient: createPublicClient({ chain, transport }),
    testClient: createTestClient({ mode: "anvil", chain, transport }),
    wallet: (account: number) => createWalletClient({ chain, transport, account: devAccount(account) })
  }
}).pipe(Effect.orDie)

class SecondChain extends Context.Tag("test/SecondChain")<SecondChain, Effect.Effect.Success<typeof startSecondChain>>() {}

/** The app with `anvil2` seeded into crypto_config; the second node lives as long as the layer. */
const harness = Layer.unwrapScoped(Effect.map(startSecondChain, (second) =>
  Layer.merge(
    appHarness({ extraNetworks: Effect.succeed({ [NETWORK]: { chain_id: CHAIN_ID, rpc: [second.rpcUrl] } }) }),
    Layer.succeed(SecondChain, second)
  )))

layer(harness, { timeout: 120_000, excludeTestServices: true })("a payment on another network", (it) => {
  it.effect("wrong_network: the checkout's order paid on anvil2 fails and credits the coin moved there", () =>
    Effect.gen(function*() {
      const app = yield* App
      const second = yield* SecondChain
      const registered = yield* app.request("POST", "/v1/billing/admin/contracts", {
        token: app.admin,
        body: { slug: PASS2, network: NETWORK, address: second.deployment.contractAddress, abi: SubscriptionPassAbi }
      })
      assert.strictEqual(registered.status, 201)

      const user = "user-wrong-network"
      const { checkout, token } = yield* checkoutNative(app, "netplan", PRICES, user, 1)
      assert.deepStrictEqual([checkout.network, checkout.chain_id], ["anvil", app.devnet.info.chain_id])
      const receipt = yield* mintWithQuote(second, 1, {
        contract: second.deployment.contractAddress,
        orderId: checkout.order_id as Hex,
        token: zeroAddress,
        amount: PRICES.native,
        deadline: BigInt(checkout.payload.deadline)
      })
      const hook = yield* app.webhook({ ...mintedEvent(PASS2, receipt, checkout.order_id), network: NETWORK })
      assert.deepStrictEqual([hook.status, hook.body], [202, { accepted: true, duplicate: false }])
      yield* Effect.promise(() => second.testClient.mine({ blocks: 2 }))

      const { item, seen } = yield* settledOverHttp(app, token, checkout)
      assert.deepStrictEqual(seen, failedEverywhere(checkout, "wrong_network"))
      assert.deepStrictEqual([item?.tx_hash, item?.paid_amount], [receipt.transactionHash, PRICES.native.toString()])
      assert.deepStrictEqual(yield* postingsOf(checkout.transaction_id), [
        { account: `treasury:${NETWORK}`, asset: `${NETWORK}:native`, amount: PRICES.native.toString() },
        { account: `customer_credit:${user}`, asset: `${NETWORK}:native`, amount: (-PRICES.native).toString() }
      ])
    }))
})
