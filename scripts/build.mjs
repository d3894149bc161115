#!/usr/bin/env node
// `npm run build`: compiles src, services and streams to dist/ and copies what they read from disk at run time.
// Idempotent: tsc is incremental (its build info lives in dist/, so deleting dist/ rebuilds everything) and the
// copied assets are replaced as a whole, so a migration removed from the source is removed from dist/ too.
import { spawnSync } from "node:child_process"
import { cpSync, existsSync, readdirSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))
const at = (path) => fileURLToPath(new URL(path, new URL("../", import.meta.url)))
const entry = at("dist/src/main.js")

let tsc
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
} catch {
  // An install without devDependencies (npm ci --omit=dev) can still start a dist/ built elsewhere.
  if (existsSync(entry)) {
    console.error("build: typescript is not installed; using the existing dist/")
    process.exit(0)
  }
  console.error("build: typescript is not installed and dist/ is missing: run `npm ci` (with devDependencies)")
  process.exit(1)
}

// Build info without its outputs (dist/src deleted by hand) would make tsc skip the emit.
if (!existsSync(entry)) rmSync(at("dist/.tsbuildinfo"), { force: true })

const compiled = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" })
if (compiled.status !== 0) process.exit(compiled.status ?? 1)

// services/Migrations.ts reads `../migrations` relative to itself: dist/services -> dist/migrations.
rmSync(at("dist/migrations"), { recursive: true, force: true })
cpSync(at("migrations"), at("dist/migrations"), { recursive: true, filter: (src) => src === at("migrations") || src.endsWith(".sql") })
const copied = readdirSync(at("dist/migrations")).filter((name) => name.endsWith(".sql")).length
console.error(`build: dist/ ready (${copied} migrations copied)`)
