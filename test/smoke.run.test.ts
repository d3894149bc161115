/**
 * The smoke suite (test/smoke/, `npm run smoke`) in CI: `evm-billing serve` as a child process with the embedded
 * devnet, a fresh database and a NATS prefix of its own, and the suite run against it over HTTP by its own vitest
 * config, exactly as an operator would run it against staging.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { createRequire } from "node:module"
import { isolatedEnv, JWT_SECRET, run, serve } from "./smoke/harness.ts"

const vitest = createRequire(import.meta.url).resolve("vitest/vitest.mjs")

/** The parts of vitest's JSON report we look at. */
const Report = Schema.parseJson(Schema.Struct({
  success: Schema.Boolean,
  numTotalTests: Schema.Number,
  numPassedTests: Schema.Number,
  numFailedTests: Schema.Number,
  testResults: Schema.Array(Schema.Struct({
    name: Schema.String,
    assertionResults: Schema.Array(Schema.Struct({ fullName: Schema.String, status: Schema.String, failureMessages: Schema.Array(Schema.String) }))
  }))
}))

describe("smoke suite", () => {
  it.scopedLive("passes against a freshly started `evm-billing serve`", () =>
    Effect.gen(function*() {
      const env = yield* isolatedEnv
      const server = yield* serve(env)
      const out = yield* run(process.execPath, [vitest, "run", "--config", "vitest.smoke.config.ts", "--reporter=json"], {
        BASE_URL: server.baseUrl,
        BILLING_AUTH_JWT_SECRET: JWT_SECRET
      }, "120 seconds")
      const report = Schema.decodeUnknownSync(Report)(out.stdout)
      const failures = report.testResults.flatMap((file) =>
        file.assertionResults.filter((t) => t.status === "failed").map((t) => `${t.fullName}: ${t.failureMessages.join(" ").slice(0, 500)}`)
      )
      assert.deepStrictEqual(failures, [])
      assert.isTrue(report.success, out.stderr.slice(-3000))
      assert.strictEqual(out.code, 0)
      // The allow/deny matrix alone is 4 roles x every route: a suite that ran a handful of tests did not run.
      assert.isAbove(report.numPassedTests, 100)
    }), 120_000)
})
