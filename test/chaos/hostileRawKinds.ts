/**
 * Bad webhooks only raw bytes can carry: bodies past 64 KiB (declared, chunked, or lied about), garbage lengths, huge
 * headers, bodies cut off or connections dropped. Node's parser refuses some before the route sees them.
 */
import { head, headers, type Kind, KiB, LIMIT, type Material, oversized, raw, realBody } from "./hostileRequest.ts"
import type { RawShot } from "./wire.ts"

/** A signed body declared whole and sent cut short, then the socket half-closed or destroyed. */
const cutBody = (m: Material, ending: RawShot["ending"]) => {
  const body = realBody(m)
  return raw([head({ ...headers(m, body), "content-length": String(body.length) }), body.slice(0, m.rng.int(0, body.length - 1))], ending)
}

export const rawKinds: ReadonlyArray<Kind> = [
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
      // Both framings at once is how requests are smuggled: node refuses the request.
      const smuggled = { "content-length": String(body.length), "transfer-encoding": "chunked" }
      return raw([head({ ...headers(m, body), ...(m.rng.next() < 0.2 ? smuggled : { "content-length": length }) }), body], "wait")
    }
  },
  {
    // Upgrade requests go to the platform's upgrade handler, where the body is not readable: nothing verifies.
    name: "connection upgrade",
    weight: 1,
    expect: { status: 401, error: "unauthorized" },
    build: (m) => {
      const body = realBody(m)
      const upgrade = { connection: "Upgrade", upgrade: m.rng.pick(["websocket", "h2c"]), "content-length": String(body.length) }
      return raw([head({ ...headers(m, body), ...upgrade }), body], "wait")
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
    build: (m) => cutBody(m, "end")
  },
  {
    name: "aborted mid-body",
    weight: 1,
    expect: { none: true },
    build: (m) => cutBody(m, "destroy")
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
