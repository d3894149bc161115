import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { SubscriptionPassAbi, SubscriptionPassBytecode, TestTokenAbi, TestTokenBytecode } from "../../src/contracts/abi.ts"
import {
  abiModule,
  artifactJson,
  type CompiledContracts,
  compileContracts,
  contractNames
} from "../../src/contracts/compile.ts"

// solc-js takes about a second: compile once for the file.
class Fresh extends Context.Tag("test/FreshCompilation")<Fresh, CompiledContracts>() {}

const committed = (relative: string) => readFileSync(new URL(`../../src/contracts/${relative}`, import.meta.url), "utf8")

// If this fails, the .sol sources changed without `npm run contracts:compile`.
layer(Layer.sync(Fresh, compileContracts))("compiled artifacts", (it) => {
  it.effect("artifacts/*.json match a fresh compilation byte for byte", () =>
    Effect.gen(function*() {
      const fresh = yield* Fresh
      for (const name of contractNames) {
        assert.strictEqual(committed(`artifacts/${name}.json`), artifactJson(name, fresh[name]), name)
        const artifact: { contractName: string; abi: unknown; bytecode: string } = JSON.parse(
          committed(`artifacts/${name}.json`)
        )
        assert.strictEqual(artifact.contractName, name)
        assert.deepStrictEqual(artifact.abi, fresh[name].abi)
        assert.strictEqual(artifact.bytecode, fresh[name].bytecode)
      }
    }))

  it.effect("abi.ts constants match a fresh compilation", () =>
    Effect.gen(function*() {
      const fresh = yield* Fresh
      assert.strictEqual(committed("abi.ts"), abiModule(fresh))
      assert.deepStrictEqual<unknown>(SubscriptionPassAbi, fresh.SubscriptionPass.abi)
      assert.strictEqual(SubscriptionPassBytecode, fresh.SubscriptionPass.bytecode)
      assert.deepStrictEqual<unknown>(TestTokenAbi, fresh.TestToken.abi)
      assert.strictEqual(TestTokenBytecode, fresh.TestToken.bytecode)
    }))
})
