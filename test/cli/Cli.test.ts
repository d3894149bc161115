import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { createPublicClient, http } from "viem"
import { SubscriptionPassAbi } from "../../src/contracts/abi.ts"
import { freePort } from "../../src/devnet/Anvil.ts"
import { DevnetInfo } from "../../src/devnet/Devnet.ts"
import { verifyJwt } from "../../src/domain/Jwt.ts"
import { freshDatabaseUrl } from "../support/database.ts"

const BIN = fileURLToPath(new URL("../../bin/evm-billing.js", import.meta.url))
const MIGRATIONS = readdirSync(fileURLToPath(new URL("../../migrations", import.meta.url))).filter((f) => /^\d{3}_.*\.sql$/.test(f)).length
const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 })

describe("evm-billing CLI", () => {
  it("token prints a bearer token signed with BILLING_AUTH_JWT_SECRET, with the given roles", () => {
    const secret = "cli-test-secret-0123456789"
    const out = run(["token", "--user-id", "u-42", "--roles", "admin,finance_ops"], { BILLING_AUTH_JWT_SECRET: secret })
    assert.strictEqual(out.status, 0, out.stderr)
    const claims = verifyJwt(out.stdout.trim(), secret, Math.floor(Date.now() / 1000))
    assert.isTrue(Either.isRight(claims))
    if (Either.isRight(claims)) {
      assert.strictEqual(claims.right.sub, "u-42")
      assert.deepStrictEqual(claims.right.roles, ["admin", "finance_ops"])
    }
    const bad = run(["token", "--user-id", "u", "--roles", "root"], { BILLING_AUTH_JWT_SECRET: secret })
    assert.notStrictEqual(bad.status, 0)
  })

  it("a bad environment variable stops start-up with a message naming it", () => {
    const out = run(["serve"], { BILLING_RPC_CONFIG: "{\"anvil\": {\"chain_id\": -1, \"rpc\": []}}" })
    assert.notStrictEqual(out.status, 0)
    assert.include(out.stderr + out.stdout, "BILLING_RPC_CONFIG")
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
