#!/usr/bin/env node
// Runs the compiled entry point (npm run build) when there is one; otherwise loads the TypeScript source through tsx
// (development). Either way the program runs in this process, so signals reach it directly.
import { existsSync } from "node:fs"

const compiled = new URL("../dist/src/main.js", import.meta.url)
if (existsSync(compiled)) {
  await import(compiled.href)
} else {
  const { register } = await import("tsx/esm/api")
  register()
  await import("../src/main.ts")
}
