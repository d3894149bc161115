import { defineConfig } from "vitest/config"

/**
 * `npm run smoke`: the smoke suite over real HTTP against the server at BASE_URL. Vite sets its own BASE_URL ("/")
 * in the test environment, so the server's URL is handed on as SMOKE_BASE_URL.
 */
export default defineConfig({
  test: {
    include: ["test/smoke/**/*.test.ts"],
    env: { SMOKE_BASE_URL: process.env["SMOKE_BASE_URL"] ?? process.env["BASE_URL"] ?? "" },
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
