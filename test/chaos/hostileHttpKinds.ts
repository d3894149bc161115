/** Bad webhooks an HTTP client sends as is: what the route itself must refuse, each with its status and code. */
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { type Kind, INVALID, type Material, post, realBody, realEvent, UNAUTHORIZED } from "./hostileRequest.ts"

/** A real body under a signature made from its correct one (`good`, `v1,<base64>`) by `spell`. */
const withSignature = (m: Material, spell: (good: string) => string) => {
  const body = realBody(m)
  const id = m.id()
  return post(m, body, { id, signature: spell(signWebhook(m.secret, id, m.nowSeconds(), body)) })
}

export const httpKinds: ReadonlyArray<Kind> = [
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
    name: "wrong secret, expecting 100-continue",
    weight: 1,
    expect: UNAUTHORIZED,
    build: (m) => {
      const shot = post(m, realBody(m), { secret: `wrong-${m.rng.hex(12)}` })
      return { ...shot, headers: { ...shot.headers, expect: "100-continue" } }
    }
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
    build: (m) =>
      withSignature(m, (good) =>
        m.rng.pick([
          "v1,AAAA",
          "v1,",
          `v2,${good.slice(3)}`,
          `v1,${Buffer.from(m.rng.hex(32), "hex").toString("base64")}`,
          `v1 ${good.slice(3)}`,
          good.slice(3),
          "v1,".repeat(500)
        ]))
  },
  {
    name: "non-canonical base64 signature",
    weight: 3,
    expect: UNAUTHORIZED,
    build: (m) =>
      withSignature(m, (good) => {
        const at = m.rng.int(4, good.length - 2)
        return m.rng.pick([
          `${good.slice(0, at)}*${good.slice(at)}`,
          `${good.slice(0, at)}.${good.slice(at)}`,
          good.replace(/=+$/, ""),
          `${good}=`,
          good.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "") + "-_"
        ])
      })
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
