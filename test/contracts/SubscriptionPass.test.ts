import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import {
  type Address,
  domainSeparator,
  getContract,
  type Hex,
  keccak256,
  type PrivateKeyAccount,
  parseEther,
  parseEventLogs,
  parseSignature,
  serializeSignature,
  toHex,
  zeroAddress
} from "viem"
import { SubscriptionPassAbi, TestTokenAbi } from "../../src/contracts/abi.ts"
import { quoteDomain, signQuote } from "../../src/contracts/Quote.ts"
import {
  chainCall,
  devAccount,
  latestTimestamp,
  revertName,
  sendTx,
  TestDevnet,
  type TestDevnetHandle
} from "../support/anvil.ts"

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const payer = devAccount(1)
const orderId = (label: string): Hex => keccak256(toHex(`SubscriptionPass.test/${label}`))

interface Purchase {
  readonly order: Hex
  readonly token?: Address
  readonly amount: bigint
  readonly value?: bigint
  readonly from?: PrivateKeyAccount
  readonly quotePayer?: Address
  readonly quoteSigner?: PrivateKeyAccount
  readonly quoteChainId?: number
  readonly deadline?: bigint
  readonly tamper?: (signature: Hex) => Hex
}

/** Signs a quote as the billing signer would at checkout and sends `mint` from the payer. */
const mint = (devnet: TestDevnetHandle, p: Purchase) =>
  Effect.gen(function*() {
    const token = p.token ?? zeroAddress
    const from = p.from ?? payer
    const deadline = p.deadline ?? (yield* latestTimestamp(devnet)) + 600n
    const signature = yield* chainCall(() =>
      signQuote(p.quoteSigner ?? devnet.signer, {
        chainId: p.quoteChainId ?? devnet.info.chain_id,
        contract: devnet.info.contract_address,
        orderId: p.order,
        payer: p.quotePayer ?? from.address,
        token,
        amount: p.amount,
        deadline
      })
    )
    return yield* sendTx(devnet, () =>
      devnet.wallet(from).writeContract({
        address: devnet.info.contract_address,
        abi: SubscriptionPassAbi,
        functionName: "mint",
        args: [p.order, token, p.amount, deadline, p.tamper ? p.tamper(signature) : signature],
        value: p.value ?? (token === zeroAddress ? p.amount : 0n)
      })
    )
  })

const passReader = (devnet: TestDevnetHandle) =>
  getContract({ address: devnet.info.contract_address, abi: SubscriptionPassAbi, client: devnet.publicClient }).read

const ownerOf = (devnet: TestDevnetHandle, passId: bigint) => chainCall(() => passReader(devnet).ownerOf([passId]))

const nativeBalance = (devnet: TestDevnetHandle, address: Address) =>
  chainCall(() => devnet.publicClient.getBalance({ address }))

const tokenBalance = (devnet: TestDevnetHandle, address: Address) =>
  chainCall(() =>
    devnet.publicClient.readContract({
      address: devnet.info.token_address,
      abi: TestTokenAbi,
      functionName: "balanceOf",
      args: [address]
    })
  )

const token = (devnet: TestDevnetHandle, from: PrivateKeyAccount, call: "mint" | "approve", to: Address, amount: bigint) =>
  sendTx(devnet, () =>
    devnet.wallet(from).writeContract({
      address: devnet.info.token_address,
      abi: TestTokenAbi,
      functionName: call,
      args: [to, amount]
    }))

const burn = (devnet: TestDevnetHandle, from: PrivateKeyAccount, passId: bigint) =>
  sendTx(devnet, () =>
    devnet.wallet(from).writeContract({
      address: devnet.info.contract_address,
      abi: SubscriptionPassAbi,
      functionName: "burn",
      args: [passId]
    }))

const mintedEvent = (logs: Parameters<typeof parseEventLogs>[0]["logs"]) => {
  const events = parseEventLogs({ abi: SubscriptionPassAbi, logs, eventName: "Minted" })
  assert.strictEqual(events.length, 1)
  return events[0]!.args
}

layer(TestDevnet.layer)("SubscriptionPass on anvil", (it) => {
  it.effect("the on-chain EIP-712 domain matches Quote.ts", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const onChain = yield* chainCall(() => passReader(devnet).domainSeparator())
      const domain = quoteDomain(devnet.info.chain_id, devnet.info.contract_address)
      assert.strictEqual(onChain, domainSeparator({ domain }))
    }))

  it.effect("native mint: pays the treasury, emits Minted, assigns the pass", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const amount = parseEther("0.05")
      const order = orderId("native")
      const before = yield* nativeBalance(devnet, devnet.info.treasury_address)
      const receipt = yield* mint(devnet, { order, amount })
      const minted = mintedEvent(receipt.logs)
      assert.strictEqual(minted.orderId, order)
      assert.strictEqual(minted.payer, payer.address)
      assert.strictEqual(minted.token, zeroAddress)
      assert.strictEqual(minted.amount, amount)
      assert.isTrue(minted.passId > 0n)
      assert.strictEqual((yield* nativeBalance(devnet, devnet.info.treasury_address)) - before, amount)
      assert.strictEqual(yield* ownerOf(devnet, minted.passId), payer.address)
      assert.strictEqual(yield* chainCall(() => passReader(devnet).orderOf([minted.passId])), order)
      assert.isTrue(yield* chainCall(() => passReader(devnet).usedOrders([order])))
    }))

  it.effect("an overpayment is forwarded and emitted as the paid value", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const amount = parseEther("0.01")
      const value = amount + 12_345n
      const before = yield* nativeBalance(devnet, devnet.info.treasury_address)
      const minted = mintedEvent((yield* mint(devnet, { order: orderId("overpaid"), amount, value })).logs)
      assert.strictEqual(minted.amount, value)
      assert.strictEqual((yield* nativeBalance(devnet, devnet.info.treasury_address)) - before, value)
    }))

  it.effect("ERC-20 mint: approve, then transferFrom to the treasury", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const amount = 9_990_000n // 9.99 TUSD
      const tokenAddress = devnet.info.token_address
      yield* token(devnet, payer, "mint", payer.address, 100_000_000n)
      const order = orderId("erc20")
      // Without an allowance the token reverts, which the contract reports as TransferFailed.
      assert.strictEqual(yield* revertName(mint(devnet, { order, token: tokenAddress, amount })), "TransferFailed")
      yield* token(devnet, payer, "approve", devnet.info.contract_address, amount)
      assert.strictEqual(
        yield* revertName(mint(devnet, { order, token: tokenAddress, amount, value: 1n })),
        "UnexpectedValue"
      )
      const treasuryBefore = yield* tokenBalance(devnet, devnet.info.treasury_address)
      const payerBefore = yield* tokenBalance(devnet, payer.address)
      const minted = mintedEvent((yield* mint(devnet, { order, token: tokenAddress, amount })).logs)
      assert.strictEqual(minted.token, tokenAddress)
      assert.strictEqual(minted.amount, amount)
      assert.strictEqual((yield* tokenBalance(devnet, devnet.info.treasury_address)) - treasuryBefore, amount)
      assert.strictEqual(payerBefore - (yield* tokenBalance(devnet, payer.address)), amount)
    }))

  it.effect("rejects a reused order id", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const order = orderId("reused")
      yield* mint(devnet, { order, amount: 1_000n })
      assert.strictEqual(yield* revertName(mint(devnet, { order, amount: 1_000n })), "OrderUsed")
    }))

  it.effect("rejects a quote whose deadline has passed", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const deadline = (yield* latestTimestamp(devnet)) + 60n
      yield* chainCall(() => devnet.testClient.increaseTime({ seconds: 120 }))
      yield* chainCall(() => devnet.testClient.mine({ blocks: 1 }))
      const expired = mint(devnet, { order: orderId("expired"), amount: 1_000n, deadline })
      assert.strictEqual(yield* revertName(expired), "QuoteExpired")
    }))

  it.effect("rejects quotes that do not bind this signer, payer, chain and low-s signature", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const amount = 1_000n
      const cases: ReadonlyArray<[string, Purchase]> = [
        ["another key", { order: orderId("other-key"), amount, quoteSigner: devAccount(7) }],
        ["another payer", { order: orderId("other-payer"), amount, quotePayer: devAccount(2).address }],
        ["another chain", { order: orderId("other-chain"), amount, quoteChainId: 1 }],
        // The same signature with s' = n - s recovers the same signer; the contract must refuse it.
        ["malleable twin", {
          order: orderId("malleable"),
          amount,
          tamper: (signature) => {
            const { r, s, yParity } = parseSignature(signature)
            const high = toHex(SECP256K1_N - BigInt(s), { size: 32 })
            return serializeSignature({ r, s: high, yParity: yParity === 0 ? 1 : 0 })
          }
        }],
        ["truncated", { order: orderId("truncated"), amount, tamper: (signature) => signature.slice(0, -2) as Hex }]
      ]
      for (const [label, purchase] of cases) {
        assert.strictEqual(yield* revertName(mint(devnet, purchase)), "BadSignature", label)
      }
    }))

  it.effect("rejects an underpaid msg.value", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const amount = parseEther("0.02")
      const underpaid = mint(devnet, { order: orderId("underpaid"), amount, value: amount - 1n })
      assert.strictEqual(yield* revertName(underpaid), "Underpaid")
    }))

  it.effect("burn by the holder or the operator emits Burned; a stranger cannot burn", () =>
    Effect.gen(function*() {
      const devnet = yield* TestDevnet
      const operator = devAccount(0)
      const burned = (logs: Parameters<typeof parseEventLogs>[0]["logs"]) =>
        parseEventLogs({ abi: SubscriptionPassAbi, logs, eventName: "Burned" }).map((e) => e.args)

      const first = mintedEvent((yield* mint(devnet, { order: orderId("burn-holder"), amount: 1n })).logs)
      assert.strictEqual(yield* revertName(burn(devnet, devAccount(3), first.passId)), "NotHolder")
      const byHolder = burned((yield* burn(devnet, payer, first.passId)).logs)
      assert.deepStrictEqual(byHolder, [{ passId: first.passId, orderId: first.orderId, holder: payer.address }])
      assert.strictEqual(yield* ownerOf(devnet, first.passId), zeroAddress)
      assert.strictEqual(yield* revertName(burn(devnet, payer, first.passId)), "PassNotFound")

      const second = mintedEvent((yield* mint(devnet, { order: orderId("burn-operator"), amount: 1n })).logs)
      const byOperator = burned((yield* burn(devnet, operator, second.passId)).logs)
      assert.deepStrictEqual(byOperator, [{ passId: second.passId, orderId: second.orderId, holder: payer.address }])
    }))
})
