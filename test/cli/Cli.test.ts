import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { jwtVerify } from "jose"
import { spawn, spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { createPublicClient, http } from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { freePort } from "../../src/devnet/Anvil.ts"
import { DevnetInfo } from "../../src/devnet/Devnet.ts"
import { freshDatabaseUrl } from "../support/database.ts"

const BIN = fileURLToPath(new URL("../../bin/evm-billing.js", import.meta.url))
const MIGRATIONS = readdirSync(fileURLToPath(new URL("../../migrations", import.meta.url))).filter((f) => /^\d{3}_.*\.sql$/.test(f)).length
const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 })

describe("evm-billing CLI", () => {
  it("token prints an HS256 token signed with BILLING_AUTH_JWT_SECRET through jose, with the given roles and an expiry", async () => {
    const secret = "cli-test-secret-0123456789abcdefgh"
    const out = run(["token", "--user-id", "u-42", "--roles", "admin,finance_ops", "--ttl", "600"], {
      BILLING_AUTH_JWT_SECRET: secret,
      BILLING_AUTH_ISSUER: "https://issuer.test",
      BILLING_AUTH_AUDIENCE: "billing"
    })
    assert.strictEqual(out.status, 0, out.stderr)
    const { payload, protectedHeader } = await jwtVerify(out.stdout.trim(), new TextEncoder().encode(secret), {
      algorithms: ["HS256"],
      issuer: "https://issuer.test",
      audience: "billing",
      requiredClaims: ["exp", "iat"]
    })
    assert.strictEqual(protectedHeader.alg, "HS256")
    assert.strictEqual(payload.sub, "u-42")
    assert.deepStrictEqual(payload["roles"], ["admin", "finance_ops"])
    assert.strictEqual(payload.exp! - payload.iat!, 600)
    const bad = run(["token", "--user-id", "u", "--roles", "root"], { BILLING_AUTH_JWT_SECRET: secret })
    assert.notStrictEqual(bad.status, 0)
  })

  it("token refuses a short secret and a reserved subject", () => {
    const short = run(["token", "--user-id", "u"], { BILLING_AUTH_JWT_SECRET: "too-short-0123456789" })
    assert.notStrictEqual(short.status, 0)
    assert.include(short.stderr + short.stdout, "BILLING_AUTH_JWT_SECRET must be at least 32 characters")
    const reserved = run(["token", "--user-id", "System:scheduler"], { BILLING_AUTH_JWT_SECRET: "cli-test-secret-0123456789abcdefgh" })
    assert.notStrictEqual(reserved.status, 0)
    assert.strictEqual(reserved.stdout, "")
  })

  it("--help names every command, in plain text when piped (no ANSI colours)", () => {
    const out = run(["--help"], {})
    assert.strictEqual(out.status, 0, out.stderr)
    assert.notMatch(out.stdout, /\u001b\[/)
    for (const command of ["serve", "migrate", "token", "devnet", "reconcile", "e2e", "secrets", "dead-letters", "retry-policy"]) {
      assert.include(out.stdout, command)
    }
  })

  it("bad environment variables stop start-up before anything starts: one readable line each, exit 2, nothing echoed", () => {
    const out = run(["serve"], {
      BILLING_RPC_CONFIG: "{\"anvil\": {\"chain_id\": -1, \"rpc\": []}}",
      BILLING_RPC_TIMEOUT: "banana",
      DATABASE_URL: "mysql://billing:hunter2@db.internal/billing"
    })
    assert.strictEqual(out.status, 2)
    const lines = out.stderr.trim().split("\n")
    assert.strictEqual(lines[0], "evm-billing: configuration error:")
    assert.isTrue(lines.slice(1).every((l) => /^  [A-Z_]+: \S/.test(l)), out.stderr)
    for (const name of ["BILLING_RPC_CONFIG", "BILLING_RPC_TIMEOUT", "DATABASE_URL"]) assert.include(out.stderr, `  ${name}: `)
    for (const hidden of ["hunter2", "banana", "    at ", "\"logLevel\"", "<->", "applied migration", "devnet"]) assert.notInclude(out.stderr, hidden)
  })

  it.scoped("migrate creates the database and applies every migration once", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabaseUrl
      const first = run(["migrate"], { DATABASE_URL: url })
      assert.strictEqual(first.status, 0, first.stderr)
      assert.include(first.stdout, `applied ${MIGRATIONS} migration(s)`)
      const second = run(["migrate"], { DATABASE_URL: url })
      assert.include(second.stdout, "database is up to date")
    }))

  it.live("devnet --json prints the deployment and keeps running until killed", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => spawn(process.execPath, [BIN, "devnet", "--port", String(port), "--json"], { stdio: ["ignore", "pipe", "pipe"] })),
        (c) => Effect.sync(() => c.kill("SIGTERM"))
      )
      const line = yield* Effect.async<string>((resume) => {
        createInterface({ input: child.stdout! }).once("line", (l) => resume(Effect.succeed(l)))
      }).pipe(Effect.timeout("60 seconds"), Effect.orDie)
      const info = Schema.decodeUnknownSync(Schema.parseJson(DevnetInfo))(line)
      assert.strictEqual(info.chain_id, 31337)
      assert.strictEqual(info.rpc_url, `http://127.0.0.1:${port}`)
      const client = createPublicClient({ transport: http(info.rpc_url) })
      const signer = yield* Effect.promise(() =>
        client.readContract({ address: info.contract_address, abi: SubscriptionPassAbi, functionName: "quoteSigner" }))
      assert.strictEqual(signer, info.signer_address)
    }).pipe(Effect.scoped))
})
