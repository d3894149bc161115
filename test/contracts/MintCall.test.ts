import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import { encodeFunctionData, erc20Abi, zeroAddress } from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { mintOrderId } from "../../src/contracts/MintCall.ts"

const ORDER = `0x${"Ab".repeat(32)}` as const
const mint = encodeFunctionData({ abi: SubscriptionPassAbi, functionName: "mint", args: [ORDER, zeroAddress, 1n, 2n, "0x1234"] })

describe("the order a mint call pays for (pure)", () => {
  it("is the first argument of the contract's mint method, lower-cased", () => {
    assert.deepStrictEqual(mintOrderId(SubscriptionPassAbi, "mint", mint), Option.some(ORDER.toLowerCase()))
  })

  it("is none for another method, another ABI's call, or calldata that does not decode", () => {
    const burn = encodeFunctionData({ abi: SubscriptionPassAbi, functionName: "burn", args: [7n] })
    const approve = encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [zeroAddress, 1n] })
    assert.isTrue(Option.isNone(mintOrderId(SubscriptionPassAbi, "mint", burn)))
    assert.isTrue(Option.isNone(mintOrderId(SubscriptionPassAbi, "mint", approve)))
    assert.isTrue(Option.isNone(mintOrderId(SubscriptionPassAbi, "burn", mint)), "the registered mint_method decides")
    assert.isTrue(Option.isNone(mintOrderId(SubscriptionPassAbi, "mint", `${mint.slice(0, 40)}` as `0x${string}`)))
    assert.isTrue(Option.isNone(mintOrderId(SubscriptionPassAbi, "mint", "0x")))
  })
})
