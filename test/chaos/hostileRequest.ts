/**
 * What a hostile request is: how it is built from the scenario's material (a seeded PRNG, real payments' events, the
 * secret) and the answer the service owes it (invariants 7, 8 and 14). The kinds are in hostileHttpKinds.ts and
 * hostileRawKinds.ts.
 */
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import type { Rng } from "./prng.ts"
import type { HttpShot, RawShot, Shot } from "./wire.ts"

export const WEBHOOK_PATH = "/v1/billing/contracts/webhook"
/** Other spellings of the route: the HttpApi router normalises them, so they reach its copy of the route. */
const ROUTER_SPELLINGS = [`/${WEBHOOK_PATH}`, `${WEBHOOK_PATH}/`, WEBHOOK_PATH.replace(/k$/, "%6B")]
export const KiB = 1024
export const LIMIT = 64 * KiB

/** An exact status (with the route's error code, or its whole JSON body), one of a few statuses, or no answer at all. */
export type Expect =
  | { readonly status: number; readonly error?: string; readonly json?: object }
  | { readonly anyOf: ReadonlyArray<number> }
  | { readonly none: true }

export interface Material {
  readonly rng: Rng
  readonly nowSeconds: () => number
  /** Real payments' `payment.minted` events, as a relayer would send them. */
  readonly events: ReadonlyArray<Record<string, unknown>>
  readonly contract: string
  readonly secret: string
  /** A fresh webhook id. */
  readonly id: () => string
}

export interface Kind {
  readonly name: string
  readonly weight: number
  readonly expect: Expect
  readonly build: (m: Material) => Shot
}

export const UNAUTHORIZED = { status: 401, error: "unauthorized" }
export const INVALID = { status: 400, error: "invalid_webhook" }

/** Standard Webhooks headers over `body`; each one can be replaced or left out (`null`). */
export const headers = (m: Material, body: string | Uint8Array, over: {
  readonly secret?: string
  readonly timestamp?: number
  readonly id?: string | null
  readonly signature?: string | null
  readonly contentType?: string | null
  readonly rawTimestamp?: string | null
} = {}) => {
  const id = over.id === undefined ? m.id() : over.id
  const timestamp = over.timestamp ?? m.nowSeconds()
  const signature = over.signature === undefined ? signWebhook(over.secret ?? m.secret, id ?? "", timestamp, body) : over.signature
  const ts = over.rawTimestamp === undefined ? String(timestamp) : over.rawTimestamp
  const all: Record<string, string | null> = {
    "content-type": over.contentType === undefined ? "application/json" : over.contentType,
    "webhook-id": id,
    "webhook-timestamp": ts,
    "webhook-signature": signature
  }
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null))
}

export const post = (m: Material, body: string | Uint8Array, over?: Parameters<typeof headers>[2]): HttpShot => ({
  via: "http",
  path: m.rng.next() < 0.2 ? m.rng.pick(ROUTER_SPELLINGS) : WEBHOOK_PATH,
  method: "POST",
  headers: headers(m, body, over),
  body
})

export const realEvent = (m: Material) => ({ ...m.rng.pick(m.events) })
export const realBody = (m: Material) => JSON.stringify(realEvent(m))

/** A request head written by hand, so any header (or none) can be wrong. */
export const head = (lines: Record<string, string>) =>
  `POST ${WEBHOOK_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n${Object.entries(lines).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`

export const raw = (chunks: ReadonlyArray<string | Uint8Array>, ending: RawShot["ending"]): RawShot => ({ via: "raw", chunks, ending })

/** A signed, real event padded past 64 KiB (padding is valid JSON, so only the size is wrong). */
export const oversized = (m: Material) => JSON.stringify({ ...realEvent(m), padding: "x".repeat(LIMIT + m.rng.int(1, 200 * KiB)) })

/** Whether `answer` is what `expect` asks for; the route's own answers must carry their error code. */
export const meets = (expect: Expect, answer: { readonly status: number | "none"; readonly body?: string }): boolean => {
  if ("none" in expect) return answer.status === "none"
  if (answer.status === "none") return false
  if ("anyOf" in expect) return expect.anyOf.includes(answer.status)
  if (answer.status !== expect.status) return false
  const parsed = parseJson(answer.body)
  if (expect.json !== undefined && JSON.stringify(parsed) !== JSON.stringify(expect.json)) return false
  return expect.error === undefined ||
    (typeof parsed === "object" && parsed !== null && "error" in parsed && parsed.error === expect.error)
}

const parseJson = (body: string | undefined): unknown => {
  try {
    return JSON.parse(body ?? "")
  } catch {
    return undefined
  }
}
