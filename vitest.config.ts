import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/smoke/**"],
    // Commands spawned through bin/evm-billing.js run the source under test, not a dist/ left by an earlier build.
    env: { EVM_BILLING_FROM_SOURCE: "1" },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } }
  }
})
