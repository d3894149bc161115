import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either } from "effect"
import { ListenerConfig } from "../../streams/ChainListener.ts"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("ListenerConfig", () => {
  it.effect("waits 60 s for a short chain by default", () =>
    Effect.gen(function*() {
      const config = yield* ListenerConfig.pipe(withEnv({}))
      assert.isTrue(Duration.equals(config.shortChainTimeout, Duration.seconds(60)))
    }))

  it.effect("refuses a short-chain timeout that is not a duration or above 24 hours, naming the variable", () =>
    Effect.gen(function*() {
      for (const value of ["soon", "25 hours"]) {
        const result = yield* Effect.either(ListenerConfig.pipe(withEnv({ BILLING_LISTENER_SHORT_CHAIN_TIMEOUT: value })))
        assert.isTrue(Either.isLeft(result), value)
        if (Either.isLeft(result)) assert.include(String(result.left), "BILLING_LISTENER_SHORT_CHAIN_TIMEOUT")
      }
    }))
})
