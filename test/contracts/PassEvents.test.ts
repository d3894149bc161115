import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import { encodeAbiParameters, encodeEventTopics, type Hex, type Log } from "viem"
import { SubscriptionPassAbi, TestTokenAbi } from "../../src/contracts/abi.ts"
import { decodePassEvent, passEventNamer } from "../../src/contracts/PassEvents.ts"

type Topics = Log["topics"]
const orderId = `0x${"11".repeat(32)}` as Hex
const payer = `0x${"22".repeat(20)}` as Hex
const minted = {
  topics: encodeEventTopics({ abi: SubscriptionPassAbi, eventName: "Minted", args: { orderId, payer } }) as Topics,
  data: encodeAbiParameters([{ type: "address" }, { type: "uint256" }, { type: "uint256" }], [payer, 5n, 7n])
}
const burned = {
  topics: encodeEventTopics({ abi: SubscriptionPassAbi, eventName: "Burned", args: { passId: 7n, orderId, holder: payer } }) as Topics,
  data: "0x" as Hex
}
const transfer = {
  topics: encodeEventTopics({ abi: TestTokenAbi, eventName: "Transfer", args: { from: payer, to: payer } }) as Topics,
  data: encodeAbiParameters([{ type: "uint256" }], [1n])
}

describe("passEventNamer", () => {
  it("names exactly the logs decodePassEvent decodes, without decoding them", () => {
    const nameOf = passEventNamer(SubscriptionPassAbi)
    const cases: ReadonlyArray<Pick<Log, "data" | "topics">> = [
      minted,
      burned,
      transfer,
      { ...minted, data: minted.data.slice(0, 2 + 64 * 2) as Hex },
      { ...minted, topics: minted.topics.slice(0, 2) as Topics },
      { ...burned, topics: [...burned.topics, orderId] as Topics },
      { topics: [], data: "0x" }
    ]
    const names = cases.map((log) => Option.getOrUndefined(nameOf(log)))
    // viem ignores topics beyond the indexed arguments (the EVM never emits them for a known event).
    assert.deepStrictEqual(names, ["Minted", "Burned", undefined, undefined, undefined, "Burned", undefined])
    assert.deepStrictEqual(names, cases.map((log) => Option.getOrUndefined(Option.map(decodePassEvent(SubscriptionPassAbi, log), (e) => e.eventName))))
  })
})
