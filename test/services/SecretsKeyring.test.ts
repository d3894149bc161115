import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { makeKeyring } from "../../services/SecretsKeyring.ts"
import { DEV_SECRETS_KEY, refuseDevelopmentValues } from "../../src/devnet/DevelopmentConfig.ts"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
const failure = <A, E>(exit: Exit.Exit<A, E>) => (Exit.isFailure(exit) ? String(exit.cause) : "")

describe("BILLING_SECRETS_KEY", () => {
  it.effect("missing, not base64, or not 32 bytes: a ConfigError naming the variable, never the value", () =>
    Effect.gen(function*() {
      const short = Buffer.from("too-short-a-key").toString("base64")
      const missing = yield* Effect.exit(makeKeyring.pipe(withEnv({})))
      assert.include(failure(missing), "BILLING_SECRETS_KEY")
      for (const bad of [short, "not base64 at all!", randomBytes(32).toString("hex")]) {
        const exit = yield* Effect.exit(makeKeyring.pipe(withEnv({ BILLING_SECRETS_KEY: bad })))
        assert.include(failure(exit), "BILLING_SECRETS_KEY")
        assert.notInclude(failure(exit), bad)
      }
      const badPrevious = yield* Effect.exit(makeKeyring.pipe(withEnv({ BILLING_SECRETS_KEY: randomBytes(32).toString("base64"), BILLING_SECRETS_PREVIOUS_KEYS: short })))
      assert.include(failure(badPrevious), "BILLING_SECRETS_PREVIOUS_KEYS")
    }))

  it.effect("a previous key opens what it sealed; an unknown key is named, not skipped", () =>
    Effect.gen(function*() {
      const [a, b] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")]
      const old = yield* makeKeyring.pipe(withEnv({ BILLING_SECRETS_KEY: a }))
      const sealed = yield* old.encrypt(Redacted.make("the-secret-0123456789"), "row-1")
      const rotated = yield* makeKeyring.pipe(withEnv({ BILLING_SECRETS_KEY: b, BILLING_SECRETS_PREVIOUS_KEYS: ` ${a} ` }))
      assert.strictEqual(Redacted.value(yield* rotated.decrypt(sealed.keyId, sealed.ciphertext, "row-1")), "the-secret-0123456789")
      const alone = yield* makeKeyring.pipe(withEnv({ BILLING_SECRETS_KEY: b }))
      const exit = yield* Effect.exit(alone.decrypt(sealed.keyId, sealed.ciphertext, "row-1"))
      assert.include(failure(exit), "neither BILLING_SECRETS_KEY nor one of BILLING_SECRETS_PREVIOUS_KEYS")
      const moved = yield* Effect.exit(rotated.decrypt(sealed.keyId, sealed.ciphertext, "row-2"))
      assert.include(failure(moved), "does not authenticate")
    }))

  it.effect("the public development key is refused outside the devnet", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(refuseDevelopmentValues.pipe(withEnv({ BILLING_SECRETS_KEY: DEV_SECRETS_KEY })))
      assert.include(failure(exit), "BILLING_SECRETS_KEY holds a public development value")
      assert.notInclude(failure(exit), DEV_SECRETS_KEY)
    }))
})
