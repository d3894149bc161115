/**
 * The bad webhooks of the hostile scenario, each with the answer the service owes it (invariants 7, 8 and 14). Bodies
 * are mostly real payments' events: if a bad one ever got through, it would be queued and counted on the stream.
 */
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import type { Rng } from "./prng.ts"
import type { HttpShot, RawShot, Shot } from "./wire.ts"

export const WEBHOOK_PATH = "/v1/billing/contracts/webhook"
const KiB = 1024
const LIMIT = 64 * KiB

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

const UNAUTHORIZED = { status: 401, error: "unauthorized" }
const INVALID = { status: 400, error: "invalid_webhook" }

/** Standard Webhooks headers over `body`; each one can be replaced or left out (`null`). */
const headers = (m: Material, body: string | Uint8Array, over: {
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

const post = (m: Material, body: string | Uint8Array, over?: Parameters<typeof headers>[2]): HttpShot => ({
  via: "http",
  method: "POST",
  headers: headers(m, body, over),
  body
})

const realEvent = (m: Material) => ({ ...m.rng.pick(m.events) })
const realBody = (m: Material) => JSON.stringify(realEvent(m))

/** A request head written by hand, so any header (or none) can be wrong. */
const head = (lines: Record<string, string>) =>
  `POST ${WEBHOOK_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n${Object.entries(lines).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`

const raw = (chunks: ReadonlyArray<string | Uint8Array>, ending: RawShot["ending"]): RawShot => ({ via: "raw", chunks, ending })

/** A signed, real event padded past 64 KiB (padding is valid JSON, so only the size is wrong). */
const oversized = (m: Material) => JSON.stringify({ ...realEvent(m), padding: "x".repeat(LIMIT + m.rng.int(1, 200 * KiB)) })

const http: ReadonlyArray<Kind> = [
  {
    name: "malformed JSON",
    weight: 4,
    expect: UNAUTHORIZED,
    build: (m) => {
      const body = realBody(m)
      return post(m, m.rng.pick([body.slice(0, m.rng.int(1, body.length - 1)), "not json", "{'contract':'pass'}", "{}}", ""]))
    }
  },
  {
    name: "not an object",
    weight: 4,
    expect: UNAUTHORIZED,
    build: (m) => post(m, m.rng.pick(["[1,2,3]", `"${m.contract}"`, "42", "null", "true", `[${realBody(m)}]`]))
  },
  {
    name: "deeply nested JSON",
    weight: 1,
    expect: UNAUTHORIZED,
    build: (m) => {
      const depth = m.rng.int(1_000, 30_000)
      return post(m, `${"[".repeat(depth)}${"]".repeat(depth)}`)
    }
  },
  {
    name: "binary body",
    weight: 2,
    expect: UNAUTHORIZED,
    build: (m) => post(m, Buffer.from(m.rng.hex(m.rng.int(1, 2048)), "hex"))
  },
  {
    name: "schema-invalid event",
    weight: 4,
    expect: INVALID,
    build: (m) => {
      const e = realEvent(m)
      const broken = m.rng.pick<Record<string, unknown>>([
        { type: "payment.minted", contract: m.contract },
        { ...e, tx_hash: "0x1234" },
        { ...e, tx_hash: `0x${m.rng.hex(32).toUpperCase()}zz` },
        { ...e, log_index: -1 },
        { ...e, log_index: 1.5 },
        { ...e, log_index: "0" },
        { ...e, type: "payment.refunded" },
        { ...e, network: "Not A Network" },
        { ...e, block_number: -5 },
        { ...e, order_id: "not-an-order" },
        { ...e, network: null }
      ])
      return post(m, JSON.stringify(broken))
    }
  },
  {
    name: "another network",
    weight: 4,
    expect: INVALID,
    build: (m) => post(m, JSON.stringify({ ...realEvent(m), network: m.rng.pick(["base", "mainnet", "sepolia"]) }))
  },
  {
    name: "unknown contract",
    weight: 4,
    expect: UNAUTHORIZED,
    build: (m) => post(m, JSON.stringify({ ...realEvent(m), contract: `ghost-${m.rng.int(0, 999)}` }))
  },
  {
    name: "wrong secret",
    weight: 4,
    expect: UNAUTHORIZED,
    build: (m) => post(m, realBody(m), { secret: m.rng.pick([`wrong-${m.rng.hex(12)}`, m.secret.slice(1), `${m.secret} `]) })
  },
  {
    name: "missing signature",
    weight: 2,
    expect: UNAUTHORIZED,
    build: (m) => post(m, realBody(m), { signature: m.rng.pick([null, ""]) })
  },
  {
    name: "garbage signature",
    weight: 4,
    expect: UNAUTHORIZED,
    build: (m) => {
      const body = realBody(m)
      const id = m.id()
      const good = signWebhook(m.secret, id, m.nowSeconds(), body)
      const signature = m.rng.pick([
        "v1,AAAA",
        "v1,",
        `v2,${good.slice(3)}`,
        `v1,${Buffer.from(m.rng.hex(32), "hex").toString("base64")}`,
        `v1 ${good.slice(3)}`,
        good.slice(3),
        "v1,".repeat(500)
      ])
      return post(m, body, { id, signature })
    }
  },
  {
    name: "non-canonical base64 signature",
    weight: 3,
    expect: UNAUTHORIZED,
    build: (m) => {
      const body = realBody(m)
      const id = m.id()
      const good = signWebhook(m.secret, id, m.nowSeconds(), body)
      const at = m.rng.int(4, good.length - 2)
      const signature = m.rng.pick([
        `${good.slice(0, at)}*${good.slice(at)}`,
        `${good.slice(0, at)}.${good.slice(at)}`,
        good.replace(/=+$/, ""),
        `${good}=`,
        good.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "") + "-_"
      ])
      return post(m, body, { id, signature })
    }
  },
  {
    name: "bad id or timestamp header",
    weight: 3,
    expect: UNAUTHORIZED,
    build: (m) =>
      m.rng.pick([
        () => post(m, realBody(m), { id: null }),
        () => post(m, realBody(m), { rawTimestamp: null }),
        () => post(m, realBody(m), { rawTimestamp: m.rng.pick(["abc", "1e9", "-5", "1234567890123", " 1", String(m.nowSeconds()) + ".0"]) })
      ])()
  },
  {
    name: "stale timestamp",
    weight: 3,
    expect: UNAUTHORIZED,
    build: (m) => post(m, realBody(m), { timestamp: m.nowSeconds() - m.rng.int(310, 400 * 86400) })
  },
  {
    name: "future timestamp",
    weight: 3,
    expect: UNAUTHORIZED,
    build: (m) => post(m, realBody(m), { timestamp: m.nowSeconds() + m.rng.int(310, 400 * 86400) })
  },
  {
    name: "not sent as JSON",
    weight: 4,
    expect: { status: 415, error: "unsupported_media_type" },
    build: (m) =>
      post(m, realBody(m), {
        contentType: m.rng.pick([null, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
          "application/jsonp", "text/json", "application/json-seq", "application/json+x"])
      })
  },
  {
    name: "wrong method",
    weight: 1,
    expect: { anyOf: [404, 405] },
    build: (m) => ({ ...post(m, realBody(m)), method: m.rng.pick(["GET", "PUT", "DELETE", "PATCH"]) })
  }
]

const rawKinds: ReadonlyArray<Kind> = [
  {
    name: "oversized body",
    weight: 1,
    expect: { status: 413, error: "payload_too_large" },
    build: (m) => {
      const body = oversized(m)
      return raw([head({ ...headers(m, body), "content-length": String(body.length) }), body], "wait")
    }
  },
  {
    name: "oversized body, chunked",
    weight: 1,
    expect: { status: 413, error: "payload_too_large" },
    build: (m) => {
      const body = oversized(m)
      const half = Math.floor(body.length / 2)
      const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`
      return raw([head({ ...headers(m, body), "transfer-encoding": "chunked" }), chunk(body.slice(0, half)), chunk(body.slice(half)), "0\r\n\r\n"], "wait")
    }
  },
  {
    name: "content-length over the limit, small body",
    weight: 1,
    expect: { status: 413, error: "payload_too_large" },
    build: (m) => {
      const body = realBody(m)
      return raw([head({ ...headers(m, body), "content-length": String(LIMIT + m.rng.int(1, 10 * 1024 * KiB)) }), body], "wait")
    }
  },
  {
    // The server reads the declared bytes (a truncated body) and then parses the rest as a request: both are refused.
    name: "content-length shorter than the body",
    weight: 1,
    expect: { anyOf: [400, 401] },
    build: (m) => {
      const body = m.rng.next() < 0.5 ? realBody(m) : oversized(m)
      return raw([head({ ...headers(m, body), "content-length": String(m.rng.int(1, Math.min(200, body.length - 1))) }), body], "wait")
    }
  },
  {
    name: "garbage content-length",
    weight: 1,
    expect: { status: 400 },
    build: (m) => {
      const body = realBody(m)
      const length = m.rng.pick(["abc", "-5", "1e3", "0x10", `${body.length}, ${body.length + 1}`, ""])
      return raw([head({ ...headers(m, body), "content-length": length }), body], "wait")
    }
  },
  {
    name: "huge headers",
    weight: 1,
    expect: { status: 431 },
    build: (m) => {
      const body = realBody(m)
      const junk = "a".repeat(m.rng.int(17 * KiB, 80 * KiB))
      return raw([head({ ...headers(m, body), "x-junk": junk, "content-length": String(body.length) }), body], "wait")
    }
  },
  {
    name: "truncated body, half-closed",
    weight: 1,
    expect: { status: 400 },
    build: (m) => {
      const body = realBody(m)
      return raw([head({ ...headers(m, body), "content-length": String(body.length) }), body.slice(0, m.rng.int(0, body.length - 1))], "end")
    }
  },
  {
    name: "aborted mid-body",
    weight: 1,
    expect: { none: true },
    build: (m) => {
      const body = realBody(m)
      return raw([head({ ...headers(m, body), "content-length": String(body.length) }), body.slice(0, m.rng.int(0, body.length - 1))], "destroy")
    }
  },
  {
    name: "aborted mid-headers",
    weight: 1,
    expect: { none: true },
    build: (m) => {
      const body = realBody(m)
      const h = head({ ...headers(m, body), "content-length": String(body.length) })
      return raw([h.slice(0, m.rng.int(1, h.length - 3))], "destroy")
    }
  }
]

export const badKinds: ReadonlyArray<Kind> = [...http, ...rawKinds]

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
