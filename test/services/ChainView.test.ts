/**
 * A batch's chain reads are made before its SQL transaction (ConfirmBatch): what the view holds, including a read that
 * failed, is answered without asking the node again, so no check waits on the node while the transaction is open.
 * A pure unit: the node is a counting fake.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import type { TransactionReceipt } from "viem"
import { prefetchedView } from "../../services/ChainView.ts"
import type { Rpc } from "../../services/Rpc.ts"
import { RpcError } from "../../services/RpcError.ts"

const down = new RpcError({ network: "anvil", method: "eth_getTransactionReceipt", endpoint: 0, retryable: true, message: "endpoint down" })

const fakeNode = () => {
  const asked: Array<string> = []
  const rpc = {
    receipt: (_: string, hash: string) =>
      Effect.suspend(() => {
        asked.push(`receipt ${hash}`)
        return hash === "0xaa" ? Effect.fail(down) : Effect.succeed(Option.some({ blockNumber: 5n, blockHash: "0x05" } as unknown as TransactionReceipt))
      }),
    blockIfAny: (_: string, blockNumber: bigint) =>
      Effect.sync(() => {
        asked.push(`block ${blockNumber}`)
        return blockNumber === 8n ? Option.none() : Option.some({ number: blockNumber, hash: `0x0${blockNumber}` })
      }),
    blockNumber: (_: string) => Effect.sync(() => (asked.push("head"), 10n))
  }
  return { asked, rpc: rpc as unknown as Rpc }
}

describe("a batch's chain view", () => {
  it.effect("holds every read made before the batch, failures and missing blocks included; only a read nobody asked for goes to the node", () =>
    Effect.gen(function*() {
      const node = fakeNode()
      const wanted = [{ network: "anvil", txHash: "0xaa" as const }, { network: "anvil", txHash: "0xbb" as const }]
      const view = yield* prefetchedView(node.rpc, wanted, [], [{ network: "anvil", blockNumber: 7n }, { network: "anvil", blockNumber: 8n }])
      assert.deepStrictEqual([...node.asked].sort(), ["block 5", "block 7", "block 8", "head", "receipt 0xaa", "receipt 0xbb"])
      const before = node.asked.length

      const failed = yield* Effect.either(view.receipt("anvil", "0xAA"))
      assert.isTrue(Either.isLeft(failed) && failed.left === down, "the failed read is answered with its error")
      assert.isTrue(Option.isSome(yield* view.receipt("anvil", "0xbb")))
      assert.isTrue(Option.isSome(yield* view.block("anvil", 5n)), "the receipt's block")
      assert.isTrue(Option.isSome(yield* view.block("anvil", 7n)), "a height asked for besides")
      assert.isTrue(Option.isNone(yield* view.block("anvil", 8n)), "no block at a height is held too")
      assert.strictEqual(yield* view.head("anvil"), 10n)
      assert.strictEqual(node.asked.length, before, "nothing held was asked again")

      assert.isTrue(Option.isSome(yield* view.block("anvil", 9n)))
      assert.deepStrictEqual(node.asked.slice(before), ["block 9"])
      assert.strictEqual(view.heads.get("anvil"), 10n)
    }))
})
