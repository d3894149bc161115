/**
 * A synchronous HS256 signer for tests only (the service mints and verifies through jose): tests build tokens inline,
 * including ones the verifier must refuse (no exp, reserved subjects, odd headers). test/services/TokenVerifier.test.ts
 * shows its tokens verify with jose.
 */
import { createHmac } from "node:crypto"

const b64url = (data: string | Buffer) => Buffer.from(data).toString("base64url")

/** Signs `payload` as given (no claim is added), with `header` merged over `{alg: "HS256", typ: "JWT"}`. */
export const signTestJwt = (payload: Readonly<Record<string, unknown>>, secret: string | Uint8Array, header: Readonly<Record<string, unknown>> = {}) => {
  const head = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT", ...header }))}.${b64url(JSON.stringify(payload))}`
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`
}

export const nowSeconds = () => Math.floor(Date.now() / 1000)

/** A token as an identity provider would issue it: `sub`, `roles`, `iat` and a one-hour `exp`. */
export const testToken = (sub: string, roles: ReadonlyArray<string>, secret: string) =>
  signTestJwt({ sub, roles, iat: nowSeconds(), exp: nowSeconds() + 3600 }, secret)
