import { assert, describe, it } from "@effect/vitest"
import { addressKind, checkResolved, checkUrl, type EndpointPolicy, isRefusal, parseAllowedHosts } from "../../src/domain/EndpointPolicy.ts"

const open: EndpointPolicy = { allowedHosts: [], allowLoopback: false }
const reason = (url: string, addresses: ReadonlyArray<string>, policy: EndpointPolicy = open) =>
  checkResolved(url, addresses, policy)?.reason ?? "ok"

describe("RPC endpoint policy (pure)", () => {
  it("classifies addresses, IPv4 inside IPv6 included", () => {
    const cases: ReadonlyArray<[string, string]> = [
      ["8.8.8.8", "public"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.32.0.1", "public"],
      ["192.168.1.1", "private"],
      ["100.64.0.1", "private"],
      ["169.254.169.254", "link_local"],
      ["127.0.0.1", "loopback"],
      ["127.255.0.9", "loopback"],
      ["0.0.0.0", "unspecified"],
      ["224.0.0.1", "reserved"],
      ["255.255.255.255", "reserved"],
      ["::", "unspecified"],
      ["::1", "loopback"],
      ["fd00::1", "private"],
      ["fe80::1%eth0", "link_local"],
      ["2606:4700::1111", "public"],
      ["::ffff:169.254.169.254", "link_local"],
      ["::ffff:a9fe:a9fe", "link_local"],
      ["::ffff:7f00:1", "loopback"],
      ["::ffff:8.8.8.8", "public"],
      ["64:ff9b::a00:1", "private"],
      ["2002:c0a8:101::1", "private"],
      ["[::1]", "loopback"],
      ["not-an-ip", "reserved"]
    ]
    for (const [ip, kind] of cases) assert.strictEqual(addressKind(ip), kind, ip)
  })

  it("only http(s) and ws(s), no credentials in the user info", () => {
    assert.strictEqual(reason("https://rpc.example.com/v2/key", ["8.8.8.8"]), "ok")
    assert.strictEqual(reason("wss://rpc.example.com", ["8.8.8.8"]), "ok")
    assert.strictEqual(reason("ftp://rpc.example.com", ["8.8.8.8"]), "scheme")
    assert.strictEqual(reason("file:///etc/passwd", []), "scheme")
    assert.strictEqual(reason("https://user:secret@rpc.example.com", ["8.8.8.8"]), "credentials")
    assert.strictEqual(reason("https://user@rpc.example.com", ["8.8.8.8"]), "credentials")
    assert.strictEqual(reason("not a url", []), "invalid_url")
    assert.strictEqual(reason("https://rpc.example.com", []), "unresolved")
  })

  it("refuses private, link-local, unspecified and loopback addresses, literal or resolved, in any spelling", () => {
    assert.strictEqual(reason("http://169.254.169.254/latest/meta-data", ["169.254.169.254"]), "link_local")
    // The URL parser normalises these to 127.0.0.1 / 169.254.169.254 before the check.
    assert.strictEqual(reason("http://2130706433:8545", ["127.0.0.1"]), "loopback")
    assert.strictEqual(reason("http://0xa9fea9fe/", ["169.254.169.254"]), "link_local")
    assert.strictEqual(reason("http://[::ffff:169.254.169.254]/", []), "link_local")
    assert.strictEqual(reason("http://0.0.0.0:8545", ["0.0.0.0"]), "unspecified")
    assert.strictEqual(reason("http://[::]:8545", ["::"]), "unspecified")
    assert.strictEqual(reason("http://localhost:8545", []), "loopback")
    assert.strictEqual(reason("http://node.localhost:8545", []), "loopback")
    assert.strictEqual(reason("http://10.0.0.5:8545", ["10.0.0.5"]), "private")
    // A name is only as good as every address it resolves to (one bad answer is enough for an attacker).
    assert.strictEqual(reason("https://rpc.example.com", ["8.8.8.8", "10.0.0.5"]), "private")
    assert.strictEqual(reason("https://rpc.example.com", ["::ffff:127.0.0.1"]), "loopback")
    // Refusals never carry the URL.
    const refused = checkResolved("http://10.0.0.5:8545/?apikey=topsecret", ["10.0.0.5"], open)
    assert.notInclude(refused?.message ?? "", "topsecret")
    assert.notInclude(refused?.message ?? "", "10.0.0.5")
  })

  it("loopback only when allowed; other non-public addresses only when named exactly", () => {
    const devnet: EndpointPolicy = { allowedHosts: [], allowLoopback: true }
    assert.strictEqual(reason("http://127.0.0.1:8545", ["127.0.0.1"], devnet), "ok")
    assert.strictEqual(reason("http://localhost:8545", ["::1", "127.0.0.1"], devnet), "ok")
    assert.strictEqual(reason("http://10.0.0.5:8545", ["10.0.0.5"], devnet), "private")
    assert.strictEqual(reason("http://169.254.169.254", ["169.254.169.254"], devnet), "link_local")

    const internal: EndpointPolicy = { allowedHosts: ["geth.internal", "10.0.0.6", "*.alchemy.com"], allowLoopback: false }
    assert.strictEqual(reason("http://geth.internal:8545", ["10.0.0.5"], internal), "ok")
    assert.strictEqual(reason("http://10.0.0.6:8545", ["10.0.0.6"], internal), "ok")
    assert.strictEqual(reason("https://eth.alchemy.com/v2/k", ["8.8.8.8"], internal), "ok")
    // A wildcard admits public addresses only: a rebinding answer under an allowed suffix is still refused.
    assert.strictEqual(reason("https://evil.alchemy.com", ["169.254.169.254"], internal), "link_local")
    assert.strictEqual(reason("https://alchemy.com.evil.io", ["8.8.8.8"], internal), "host_not_allowed")
    assert.strictEqual(reason("https://rpc.example.com", ["8.8.8.8"], internal), "host_not_allowed")
    assert.strictEqual(reason("http://127.0.0.1:8545", ["127.0.0.1"], internal), "host_not_allowed")
  })

  it("checkUrl tells whether the host still needs resolving", () => {
    const named = checkUrl("https://RPC.Example.com./x", open)
    assert.deepStrictEqual(isRefusal(named) ? named.reason : named, { host: "rpc.example.com", literal: false })
    const literal = checkUrl("http://[2606:4700::1111]:8545", open)
    assert.deepStrictEqual(isRefusal(literal) ? literal.reason : literal, { host: "2606:4700::1111", literal: true })
  })

  it("parses BILLING_RPC_ALLOWED_HOSTS", () => {
    assert.deepStrictEqual(parseAllowedHosts(" RPC.example.com, *.alchemy.com ,10.0.0.6,[::1],"), ["rpc.example.com", "*.alchemy.com", "10.0.0.6", "::1"])
    assert.deepStrictEqual(parseAllowedHosts(""), [])
    assert.isString(parseAllowedHosts("http://rpc.example.com"))
    assert.isString(parseAllowedHosts("*"))
    assert.isString(parseAllowedHosts("a.*.com"))
  })
})
