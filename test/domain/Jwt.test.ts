import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { signJwt, verifyJwt } from "../../src/domain/Jwt.ts"

describe("jwt", () => {
  const token = signJwt({ sub: "u1", roles: ["admin"], iat: 100, exp: 200 }, "k")

  it("round-trips claims", () => {
    const claims = verifyJwt(token, "k", 150)
    assert.isTrue(Either.isRight(claims))
    if (Either.isRight(claims)) assert.deepStrictEqual(claims.right.roles, ["admin"])
  })

  it("rejects another key, expiry, tampering and alg none", () => {
    assert.deepStrictEqual(verifyJwt(token, "other", 150), Either.left("bad token signature"))
    assert.deepStrictEqual(verifyJwt(token, "k", 200), Either.left("token expired"))
    const [h, , s] = token.split(".")
    const forged = Buffer.from(JSON.stringify({ sub: "u1", roles: ["admin", "finance_ops"] })).toString("base64url")
    assert.deepStrictEqual(verifyJwt(`${h}.${forged}.${s}`, "k", 150), Either.left("bad token signature"))
    const none = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")
    assert.deepStrictEqual(verifyJwt(`${none}.${forged}.`, "k", 150), Either.left("unsupported token algorithm"))
    assert.deepStrictEqual(verifyJwt("garbage", "k", 150), Either.left("malformed token"))
  })
})
