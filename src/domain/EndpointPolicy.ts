/**
 * Which RPC endpoint URLs the service may talk to. An endpoint is an outbound request chosen by an operator or a
 * finance_ops user: without a policy it reaches the cloud metadata service, internal admin ports or the host
 * itself (SSRF). Pure: the caller resolves host names and passes every address it got.
 */
import { isIP } from "node:net"

export interface EndpointPolicy {
  /** Lower-case hosts, IPs and `*.suffix` entries; empty = any public host. */
  readonly allowedHosts: ReadonlyArray<string>
  /** Loopback addresses for a node on this machine (the devnet). */
  readonly allowLoopback: boolean
}

export type AddressKind = "public" | "loopback" | "private" | "link_local" | "unspecified" | "reserved"

export type RefusalReason = "invalid_url" | "scheme" | "credentials" | "host_not_allowed" | Exclude<AddressKind, "public"> | "unresolved"

/** Why an endpoint is refused; `message` never contains the URL (it may carry an API key). */
export interface Refusal {
  readonly reason: RefusalReason
  readonly message: string
}

const refusal = (reason: RefusalReason, message: string): Refusal => ({ reason, message })

const SCHEMES = new Set(["http:", "https:", "ws:", "wss:"])

const v4 = (ip: string): bigint => ip.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n)

const v6 = (ip: string): bigint => {
  let text = ip
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const n = v4(dotted[1]!)
    text = `${text.slice(0, -dotted[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head = "", tail] = text.split("::")
  const left = head === "" ? [] : head.split(":")
  const right = tail === undefined || tail === "" ? [] : tail.split(":")
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right]
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n)
}

interface Range {
  readonly base: bigint
  readonly bits: number
  readonly kind: Exclude<AddressKind, "public">
}
const range = (cidr: string, kind: Range["kind"], family: 4 | 6): Range => {
  const [ip = "", bits = "0"] = cidr.split("/")
  return { base: family === 4 ? v4(ip) : v6(ip), bits: Number(bits), kind }
}
const within = (n: bigint, r: Range, width: number) => n >> BigInt(width - r.bits) === r.base >> BigInt(width - r.bits)

const V4: ReadonlyArray<Range> = ([
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "private"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link_local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved"],
  ["192.0.2.0/24", "reserved"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "reserved"],
  ["198.51.100.0/24", "reserved"],
  ["203.0.113.0/24", "reserved"],
  ["224.0.0.0/3", "reserved"]
] as const).map(([c, k]) => range(c, k, 4))

const V6: ReadonlyArray<Range> = ([
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["fc00::/7", "private"],
  ["fe80::/10", "link_local"],
  ["fec0::/10", "private"],
  ["ff00::/8", "reserved"],
  ["100::/64", "reserved"],
  ["2001::/32", "reserved"],
  ["2001:db8::/32", "reserved"],
  ["64:ff9b:1::/48", "private"]
] as const).map(([c, k]) => range(c, k, 6))

/** IPv6 forms that carry an IPv4 address: mapped, compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16). */
const embeddedV4 = (n: bigint): bigint | undefined => {
  const top96 = n >> 32n
  if (top96 === 0xffffn || (top96 === 0n && n > 1n) || top96 === v6("64:ff9b::") >> 32n) return n & 0xffffffffn
  if (n >> 112n === 0x2002n) return (n >> 80n) & 0xffffffffn
  return undefined
}

const kindOf = (n: bigint, ranges: ReadonlyArray<Range>, width: number): AddressKind =>
  ranges.find((r) => within(n, r, width))?.kind ?? "public"

/** What an IP literal points at; anything that is not an IP is "reserved" (fail closed). */
export const addressKind = (ip: string): AddressKind => {
  const bare = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "")
  switch (isIP(bare)) {
    case 4:
      return kindOf(v4(bare), V4, 32)
    case 6: {
      const n = v6(bare)
      const inner = embeddedV4(n)
      return inner === undefined ? kindOf(n, V6, 128) : kindOf(inner, V4, 32)
    }
    default:
      return "reserved"
  }
}

const hostOf = (url: URL) => url.hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "")

const exactlyNamed = (host: string, policy: EndpointPolicy) => policy.allowedHosts.includes(host)
const allowlisted = (host: string, policy: EndpointPolicy) =>
  policy.allowedHosts.length === 0 ||
  policy.allowedHosts.some((entry) => entry === host || (entry.startsWith("*.") && host.endsWith(entry.slice(1))))

const ADDRESS_WORDS: Record<Exclude<AddressKind, "public">, string> = {
  loopback: "a loopback address (set BILLING_RPC_ALLOW_LOOPBACK=true for a node on this machine)",
  private: "a private address",
  link_local: "a link-local address (cloud metadata lives there)",
  unspecified: "an unspecified address",
  reserved: "a reserved or special-purpose address"
}

/**
 * One address the host resolved to. A non-public address passes only when the allowlist names the host or the
 * address exactly (a `*.suffix` entry admits public addresses only), or when it is loopback and loopback is allowed.
 */
export const checkAddress = (host: string, address: string, policy: EndpointPolicy): Refusal | undefined => {
  const kind = addressKind(address)
  if (kind === "public") return undefined
  if (exactlyNamed(host, policy) || exactlyNamed(address.toLowerCase(), policy)) return undefined
  if (kind === "loopback" && policy.allowLoopback) return undefined
  return refusal(kind, `its host resolves to ${ADDRESS_WORDS[kind]}; name it in BILLING_RPC_ALLOWED_HOSTS to allow it`)
}

/** `localhost` and `*.localhost` are loopback whatever a resolver says (RFC 6761). */
const isLocalhostName = (host: string) => host === "localhost" || host.endsWith(".localhost")

/**
 * The URL alone: scheme, no credentials in the user info (a key belongs in the path or query, where it is masked
 * like any other), an allowlisted host, and an IP literal's address. Returns the host to resolve, or a refusal.
 */
export const checkUrl = (raw: string, policy: EndpointPolicy): { readonly host: string; readonly literal: boolean } | Refusal => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return refusal("invalid_url", "it is not a valid URL")
  }
  if (!SCHEMES.has(url.protocol)) return refusal("scheme", "only http, https, ws and wss endpoints are allowed")
  if (url.username !== "" || url.password !== "") return refusal("credentials", "credentials in the URL's user info are not allowed")
  const host = hostOf(url)
  if (host === "") return refusal("invalid_url", "it has no host")
  if (!allowlisted(host, policy)) return refusal("host_not_allowed", "its host is not in BILLING_RPC_ALLOWED_HOSTS")
  const literal = isIP(host) !== 0
  const named = literal ? host : isLocalhostName(host) ? "127.0.0.1" : undefined
  if (named !== undefined) {
    const refused = checkAddress(host, named, policy)
    if (refused !== undefined) return refused
  }
  return { host, literal }
}

export const isRefusal = (r: ReturnType<typeof checkUrl>): r is Refusal => "reason" in r

/** The whole policy once the host is resolved: every address must pass (an attacker needs only one). */
export const checkResolved = (raw: string, addresses: ReadonlyArray<string>, policy: EndpointPolicy): Refusal | undefined => {
  const url = checkUrl(raw, policy)
  if (isRefusal(url)) return url
  if (addresses.length === 0) return refusal("unresolved", "its host did not resolve")
  for (const address of addresses) {
    const refused = checkAddress(url.host, address, policy)
    if (refused !== undefined) return refused
  }
  return undefined
}

/** BILLING_RPC_ALLOWED_HOSTS: comma-separated hosts, IPs and `*.suffix` entries. */
export const parseAllowedHosts = (text: string): ReadonlyArray<string> | string => {
  const entries = text.split(",").map((e) => e.trim().toLowerCase().replace(/^\[|\]$/g, "")).filter((e) => e !== "")
  const bad = entries.find((e) => !(isIP(e) !== 0 || /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(e)))
  if (bad !== undefined) return `"${bad}" is neither a host, an IP nor a *.suffix`
  return entries
}
