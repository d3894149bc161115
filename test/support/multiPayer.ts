/** Compiles (solc-js, as src/contracts/compile.ts does) and deploys the MultiPayer test helper. */
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import type { Abi, Address, Hex } from "viem"
import type { CheckoutView } from "../../src/domain/Checkout.ts"
import { sendTx, type TestDevnetHandle } from "./anvil.ts"

interface Solc {
  readonly compile: (input: string) => string
}
interface SolcOutput {
  readonly errors?: ReadonlyArray<{ readonly severity: string; readonly formattedMessage: string }>
  readonly contracts?: Record<string, Record<string, { readonly abi: Abi; readonly evm: { readonly bytecode: { readonly object: string } } }>>
}

const solc: Solc = createRequire(import.meta.url)("solc")

export const compileMultiPayer = (): { readonly abi: Abi; readonly bytecode: Hex } => {
  const content = readFileSync(new URL("./contracts/MultiPayer.sol", import.meta.url), "utf8")
  const input = {
    language: "Solidity",
    sources: { "MultiPayer.sol": { content } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "paris", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as SolcOutput
  const problems = (output.errors ?? []).filter((e) => e.severity === "error")
  const contract = output.contracts?.["MultiPayer.sol"]?.["MultiPayer"]
  if (problems.length > 0 || contract === undefined) throw new Error(`MultiPayer: ${problems.map((e) => e.formattedMessage).join("\n")}`)
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` }
}

/** Deploys MultiPayer from dev account `account`; `payAll` pays each checkout (native coin) in one transaction. */
export const deployMultiPayer = (devnet: TestDevnetHandle, account: number) =>
  Effect.gen(function*() {
    const { abi, bytecode } = compileMultiPayer()
    const deployed = yield* sendTx(devnet, () => devnet.wallet(account).deployContract({ abi, bytecode, chain: devnet.chain }))
    const address = deployed.contractAddress
    if (address === null || address === undefined) return yield* Effect.dieMessage("MultiPayer was not deployed")
    const payAll = (checkouts: ReadonlyArray<CheckoutView>) =>
      sendTx(devnet, () =>
        devnet.wallet(account).writeContract({
          address,
          abi,
          functionName: "payAll",
          args: [
            devnet.info.contract_address,
            checkouts.map((c) => ({
              orderId: c.order_id as Hex,
              amount: BigInt(c.amount),
              deadline: BigInt(c.payload.deadline),
              signature: c.quote_signature as Hex
            }))
          ],
          value: checkouts.reduce((sum, c) => sum + BigInt(c.amount), 0n),
          chain: devnet.chain
        }))
    return { address: address as Address, payAll }
  }).pipe(Effect.orDie)
