#!/usr/bin/env node
// Runs the TypeScript entry point through tsx so the package needs no build step.
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const tsx = createRequire(import.meta.url).resolve("tsx/cli")
const result = spawnSync(process.execPath, [tsx, join(root, "src/main.ts"), ...process.argv.slice(2)], {
  stdio: "inherit"
})
process.exit(result.status ?? 1)
