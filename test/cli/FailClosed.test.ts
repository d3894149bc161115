/**
 * A production start (BILLING_RPC_CONFIG set) never falls back to a development secret: a missing secret or a publicly
 * known development value stops `serve` before it migrates or listens, with the variable named.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { DEV_SIGNER_PRIVATE_KEY, DevAccounts } from "../../src/devnet/Deploy.ts"
import { DEV_JWT_SECRET } from "../../src/devnet/DevelopmentConfig.ts"

const BIN = fileURLToPath(new URL("../../bin/evm-billing.js", import.meta.url))
const SECRETS = ["BILLING_AUTH_JWT_SECRET", "BILLING_AUTH_JWKS_URL", "BILLING_AUTH_PUBLIC_KEY", "BILLING_SIGNER_PRIVATE_KEY", "BILLING_SECRETS_KEY", "BILLING_SECRETS_PREVIOUS_KEYS"]

/** `serve` in a production environment: the operator's variables, none of the secrets unless given. */
const serve = (env: Record<string, string>) => {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SECRETS.includes(k))) as Record<string, string>
  return new Promise<{ status: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, "serve"], {
      env: {
        ...base,
        // Nothing listens here: a start that got past the checks would fail later, never succeed.
        DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
        BILLING_RPC_CONFIG: JSON.stringify({ mainnet: { chain_id: 1, rpc: ["https://rpc.example.invalid"] } }),
        ...env
      },
      encoding: "utf8",
      // Generous: these start-ups compete with other test processes for the CPU.
      timeout: 100_000
    }, (error, _stdout, stderr) => resolve({ status: error === null ? 0 : (error.code as number | null), stderr }))
  })
}

const PRODUCTION_JWT = "a-production-secret-0123456789abcdef"
const PRODUCTION_SIGNER = `0x${"11".repeat(32)}`
const PRODUCTION_SECRETS_KEY = Buffer.from("a-production-secrets-key-0123456").toString("base64")

// One start-up at a time: concurrent ones starve each other on a busy machine until the kill timeout.
describe("a production start fails closed", () => {
  it("without a token verifier it refuses to start and names the three variables", async () => {
    const out = await serve({ BILLING_SECRETS_KEY: PRODUCTION_SECRETS_KEY, BILLING_SIGNER_PRIVATE_KEY: PRODUCTION_SIGNER })
    assert.notStrictEqual(out.status, 0)
    for (const name of ["BILLING_AUTH_JWT_SECRET", "BILLING_AUTH_JWKS_URL", "BILLING_AUTH_PUBLIC_KEY"]) assert.include(out.stderr, name)
    assert.notInclude(out.stderr, "applied migration")
  })

  it("with two token verifiers it refuses to start, naming them", async () => {
    const out = await serve({
      BILLING_SECRETS_KEY: PRODUCTION_SECRETS_KEY,
      BILLING_SIGNER_PRIVATE_KEY: PRODUCTION_SIGNER,
      BILLING_AUTH_JWT_SECRET: PRODUCTION_JWT,
      BILLING_AUTH_JWKS_URL: "https://id.example/.well-known/jwks.json",
      BILLING_AUTH_AUDIENCE: "billing"
    })
    assert.notStrictEqual(out.status, 0)
    assert.include(out.stderr, "BILLING_AUTH_JWT_SECRET, BILLING_AUTH_JWKS_URL are set")
    assert.notInclude(out.stderr, PRODUCTION_JWT)
    assert.notInclude(out.stderr, "applied migration")
  })

  it("without BILLING_SIGNER_PRIVATE_KEY it refuses to start and names the variable", async () => {
    const out = await serve({ BILLING_SECRETS_KEY: PRODUCTION_SECRETS_KEY, BILLING_AUTH_JWT_SECRET: PRODUCTION_JWT })
    assert.notStrictEqual(out.status, 0)
    assert.include(out.stderr, "BILLING_SIGNER_PRIVATE_KEY")
  })

  it("without BILLING_SECRETS_KEY it refuses to start and names the variable", async () => {
    const out = await serve({ BILLING_AUTH_JWT_SECRET: PRODUCTION_JWT, BILLING_SIGNER_PRIVATE_KEY: PRODUCTION_SIGNER })
    assert.notStrictEqual(out.status, 0)
    assert.include(out.stderr, "BILLING_SECRETS_KEY")
    assert.notInclude(out.stderr, "applied migration")
  })

  it("the public development JWT secret is refused", async () => {
    const out = await serve({ BILLING_SECRETS_KEY: PRODUCTION_SECRETS_KEY, BILLING_AUTH_JWT_SECRET: DEV_JWT_SECRET, BILLING_SIGNER_PRIVATE_KEY: PRODUCTION_SIGNER })
    assert.notStrictEqual(out.status, 0)
    assert.include(out.stderr, "BILLING_AUTH_JWT_SECRET holds a public development value")
    assert.notInclude(out.stderr, DEV_JWT_SECRET)
  })

  it("every anvil development key is refused as the quote signer, whatever its case", async () => {
    const keys = [DEV_SIGNER_PRIVATE_KEY, DevAccounts[0].toUpperCase().replace("0X", "0x")]
    const outs = await Promise.all(keys.map((key) => serve({ BILLING_SECRETS_KEY: PRODUCTION_SECRETS_KEY, BILLING_AUTH_JWT_SECRET: PRODUCTION_JWT, BILLING_SIGNER_PRIVATE_KEY: key })))
    for (const [i, out] of outs.entries()) {
      const key = keys[i]!
      assert.notStrictEqual(out.status, 0)
      assert.include(out.stderr, "BILLING_SIGNER_PRIVATE_KEY holds a public development value")
      assert.notInclude(out.stderr.toLowerCase(), key.slice(2).toLowerCase())
    }
  })

  it("an RPC endpoint outside the endpoint policy is refused, named by variable and index, never echoed", async () => {
    const rpc = { mainnet: { chain_id: 1, rpc: ["https://rpc.example.invalid", "http://169.254.169.254/latest?apikey=topsecret123"] } }
    const out = await serve({
      BILLING_SECRETS_KEY: PRODUCTION_SECRETS_KEY,
      BILLING_AUTH_JWT_SECRET: PRODUCTION_JWT,
      BILLING_SIGNER_PRIVATE_KEY: PRODUCTION_SIGNER,
      BILLING_RPC_CONFIG: JSON.stringify(rpc)
    })
    assert.notStrictEqual(out.status, 0)
    assert.include(out.stderr, "BILLING_RPC_CONFIG: network mainnet, rpc endpoint 1 refused")
    assert.notInclude(out.stderr, "topsecret123")
    assert.notInclude(out.stderr, "169.254.169.254")
    assert.notInclude(out.stderr, "applied migration")
  })
})
