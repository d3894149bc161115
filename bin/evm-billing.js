#!/usr/bin/env -S node --max-old-space-size=256
// Runs the compiled entry point (npm run build) when there is one; otherwise, or with EVM_BILLING_FROM_SOURCE=1 (the
// tests: a dist/ left from an earlier build must not stand in for the source under test), loads the TypeScript
// source through tsx. Either way the program runs in this process, so signals reach it directly.
import { existsSync } from "node:fs"

const compiled = new URL("../dist/src/main.js", import.meta.url)
if (process.env["EVM_BILLING_FROM_SOURCE"] !== "1" && existsSync(compiled)) {
  await import(compiled.href)
} else {
  const { register } = await import("tsx/esm/api")
  register()
  await import("../src/main.ts")
}
