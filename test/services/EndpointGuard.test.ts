/**
 * The endpoint policy with name resolution: every address a host name resolves to is checked. DNS answers come from
 * a test resolver layer (the answers an attacker controlling a zone would give); `localhost` uses the real resolver.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { EndpointGuard, HostResolver } from "../../services/EndpointGuard.ts"

const answers: Record<string, ReadonlyArray<string>> = {
  "rpc.example.com": ["93.184.216.34"],
  "metadata.example.com": ["169.254.169.254"],
  "mixed.example.com": ["93.184.216.34", "10.0.0.7"],
  "mapped.example.com": ["::ffff:127.0.0.1"],
  "node.internal": ["10.0.0.8"]
}
const FakeDns = Layer.succeed(HostResolver, HostResolver.make({
  lookup: (host) => (host in answers ? Effect.succeed(answers[host]!) : Effect.fail(new Error("ENOTFOUND")))
}))

const reasonWith = (env: Record<string, string>, dns: Layer.Layer<HostResolver> | undefined) => (url: string) =>
  Effect.flatMap(EndpointGuard, (guard) => guard.admit(url)).pipe(
    Effect.as("ok"),
    Effect.catchTag("EndpointRefused", (e) => Effect.succeed(e.reason)),
    Effect.provide(dns === undefined ? EndpointGuard.Default : EndpointGuard.DefaultWithoutDependencies.pipe(Layer.provide(dns))),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

describe("EndpointGuard.admit", () => {
  it.effect("checks every address a host name resolves to", () =>
    Effect.gen(function*() {
      const reason = reasonWith({}, FakeDns)
      assert.strictEqual(yield* reason("https://rpc.example.com/v2/key"), "ok")
      assert.strictEqual(yield* reason("https://metadata.example.com/"), "link_local")
      assert.strictEqual(yield* reason("https://mixed.example.com/"), "private")
      assert.strictEqual(yield* reason("https://mapped.example.com/"), "loopback")
      assert.strictEqual(yield* reason("https://nowhere.example.com/"), "unresolved")
      assert.strictEqual(yield* reason("http://node.internal:8545"), "private")
    }))

  it.effect("BILLING_RPC_ALLOWED_HOSTS: only listed hosts; an exact entry admits its private address", () =>
    Effect.gen(function*() {
      const reason = reasonWith({ BILLING_RPC_ALLOWED_HOSTS: "node.internal,*.example.com" }, FakeDns)
      assert.strictEqual(yield* reason("http://node.internal:8545"), "ok")
      assert.strictEqual(yield* reason("https://rpc.example.com"), "ok")
      assert.strictEqual(yield* reason("https://metadata.example.com/"), "link_local")
      assert.strictEqual(yield* reason("https://rpc.other.org"), "host_not_allowed")
    }))

  it.effect("loopback only with BILLING_RPC_ALLOW_LOOPBACK (real resolver)", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* reasonWith({}, undefined)("http://localhost:8545"), "loopback")
      assert.strictEqual(yield* reasonWith({}, undefined)("http://127.0.0.1:8545"), "loopback")
      assert.strictEqual(yield* reasonWith({ BILLING_RPC_ALLOW_LOOPBACK: "true" }, undefined)("http://localhost:8545"), "ok")
      assert.strictEqual(yield* reasonWith({ BILLING_RPC_ALLOW_LOOPBACK: "true" }, undefined)("http://127.0.0.1:8545"), "ok")
    }))

  it.effect("a malformed BILLING_RPC_ALLOWED_HOSTS stops start-up naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(reasonWith({ BILLING_RPC_ALLOWED_HOSTS: "https://rpc.example.com" }, FakeDns)("https://rpc.example.com"))
      assert.include(String(error), "BILLING_RPC_ALLOWED_HOSTS")
    }))
})
