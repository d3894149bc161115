import { assert, describe, it } from "@effect/vitest"
import { checkPayment, type Expected, type MintObservation } from "../../src/domain/PaymentCheck.ts"

const expected: Expected = {
  network: "anvil",
  chainId: 31337,
  contractAddress: "0x00000000000000000000000000000000000000aa",
  walletAddress: "0x00000000000000000000000000000000000000bb",
  token: "native",
  amount: 10n ** 18n,
  expiresAtSeconds: 1000n
}
const seen: MintObservation = {
  network: "anvil",
  chainId: 31337,
  contract: "0x00000000000000000000000000000000000000AA",
  orderId: "0x01",
  payer: "0x00000000000000000000000000000000000000BB",
  token: "native",
  amount: 10n ** 18n,
  blockTimestamp: 999n
}

describe("checkPayment", () => {
  it("matches exactly and records an overpayment as excess", () => {
    assert.deepStrictEqual(checkPayment(expected, seen), { _tag: "Match", excess: 0n })
    assert.deepStrictEqual(checkPayment(expected, { ...seen, amount: 10n ** 18n + 7n }), { _tag: "Match", excess: 7n })
  })

  it("names each mismatch", () => {
    const reason = (over: Partial<MintObservation>) => {
      const v = checkPayment(expected, { ...seen, ...over })
      return v._tag === "Mismatch" ? v.reason : "match"
    }
    assert.strictEqual(reason({ amount: 10n ** 18n - 1n }), "underpaid")
    assert.strictEqual(reason({ token: "0x00000000000000000000000000000000000000cc" }), "wrong_token")
    assert.strictEqual(reason({ network: "base" }), "wrong_network")
    // Same network name, another chain: the payment's own chain id decides, never the current config.
    assert.strictEqual(reason({ chainId: 31338 }), "wrong_network")
    assert.strictEqual(reason({ blockTimestamp: 1001n }), "expired")
    assert.strictEqual(reason({ payer: "0x00000000000000000000000000000000000000dd" }), "wrong_payer")
    assert.strictEqual(reason({ contract: "0x00000000000000000000000000000000000000ee" }), "wrong_contract")
  })
})
