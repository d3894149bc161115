/**
 * The smoke suite's view of a running server: `BASE_URL` (e.g. http://127.0.0.1:8000) and bearer tokens signed
 * with `BILLING_AUTH_JWT_SECRET` (the server's development secret when unset), one per role.
 */
import { Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { DEV_JWT_SECRET } from "../../src/devnet/DevelopmentConfig.ts"
import { signTestJwt } from "../support/jwt.ts"

/** vitest.smoke.config.ts hands BASE_URL on as SMOKE_BASE_URL (Vite owns BASE_URL inside tests). */
export const baseUrl = (process.env["SMOKE_BASE_URL"] ?? "").replace(/\/+$/, "")
if (baseUrl === "") throw new Error("the smoke suite needs BASE_URL, e.g. BASE_URL=http://127.0.0.1:8000 npm run smoke")

export const secret = process.env["BILLING_AUTH_JWT_SECRET"] ?? DEV_JWT_SECRET

export type Role = "anonymous" | "user" | "admin" | "finance_ops"
export const ROLES: ReadonlyArray<Role> = ["anonymous", "user", "admin", "finance_ops"]

const now = Math.floor(Date.now() / 1000)
/** A user of this run only: nothing it does touches real users. */
export const smokeUser = `smoke-${randomBytes(6).toString("hex")}`
export const sign = (sub: string, roles: ReadonlyArray<string>, key = secret) => signTestJwt({ sub, roles, iat: now, exp: now + 3600 }, key)

export const tokens: Record<Role, string | undefined> = {
  anonymous: undefined,
  user: sign(smokeUser, []),
  admin: sign("smoke-admin", ["admin"]),
  finance_ops: sign("smoke-finance-ops", ["finance_ops"])
}

export interface Response {
  readonly status: number
  readonly contentType: string
  /** Parsed JSON when the answer is JSON, else the text. */
  readonly body: unknown
}

const parseJson = Schema.decodeUnknownOption(Schema.parseJson(Schema.Unknown))

export const request = (method: string, path: string, options: {
  readonly token?: string | undefined
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
} = {}): Effect.Effect<Response> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    if (options.body !== undefined) headers["content-type"] = "application/json"
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
    })
    const text = await res.text()
    const json = parseJson(text)
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", body: json._tag === "Some" ? json.value : text }
  })

export const decode = <A, I>(schema: Schema.Schema<A, I>, res: Response): A => Schema.decodeUnknownSync(schema)(res.body)

export const ErrorBody = Schema.Struct({ error: Schema.String, message: Schema.String })
