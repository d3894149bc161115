/** The settings check `serve` runs before anything starts: every problem at once, one line per variable, no values. */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { preflight } from "../../src/Preflight.ts"

const problems = (env: Record<string, string>) =>
  preflight.pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.flip,
    Effect.map((e) => e.lines)
  )

const SECRETS = {
  BILLING_AUTH_JWT_SECRET: "a-long-enough-production-secret-0123456789",
  BILLING_SIGNER_PRIVATE_KEY: `0x${"7".repeat(64)}`,
  BILLING_SECRETS_KEY: Buffer.alloc(32, 9).toString("base64")
}

describe("preflight", () => {
  it.effect("names every bad variable once, with what is wrong and never its value", () =>
    Effect.gen(function*() {
      const lines = yield* problems({
        ...SECRETS,
        PORT: "99999",
        BILLING_ROLES: "api,cook",
        BILLING_RPC_TIMEOUT: "banana",
        BILLING_PROCESSOR_BATCHES: "0",
        BILLING_RPC_CONFIG: "{\"anvil\": 1}",
        BILLING_PROCESSOR_RETRY_BASE_DELAY: "2 minutes",
        BILLING_PROCESSOR_RETRY_MAX_DELAY: "1 minute",
        DATABASE_URL: "mysql://billing:hunter2@db.internal/billing"
      })
      assert.deepStrictEqual(lines, [
        "PORT: Expected a network port value",
        "BILLING_ROLES: Expected one of \"api\", \"workers\"",
        "BILLING_RPC_CONFIG: at anvil: Expected an object",
        "BILLING_RPC_TIMEOUT: Expected a duration",
        "BILLING_PROCESSOR_RETRY_MAX_DELAY must not be below BILLING_PROCESSOR_RETRY_BASE_DELAY",
        "BILLING_PROCESSOR_BATCHES: BILLING_PROCESSOR_BATCHES must be an integer from 1 to 64",
        "DATABASE_URL: must be a postgres:// URL naming a database (the value is not shown: it may hold a password)"
      ])
      assert.notInclude(lines.join("\n"), "hunter2")
    }))

  it.effect("a database URL that is not postgres:// and missing secrets are named, the URL not shown", () =>
    Effect.gen(function*() {
      const lines = yield* problems({ DATABASE_URL: "mysql://billing:hunter2@db.internal/billing" })
      assert.deepStrictEqual(lines, [
        "DATABASE_URL: must be a postgres:// URL naming a database (the value is not shown: it may hold a password)",
        "BILLING_AUTH_JWT_SECRET: exactly one of BILLING_AUTH_JWT_SECRET, BILLING_AUTH_JWKS_URL, BILLING_AUTH_PUBLIC_KEY must be set to verify bearer tokens; none is",
        "BILLING_SIGNER_PRIVATE_KEY: is required and not set",
        "BILLING_SECRETS_KEY: is required and not set"
      ])
    }))

  it.effect("a good configuration passes", () =>
    Effect.gen(function*() {
      yield* preflight.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(SECRETS)))))
    }))
})
