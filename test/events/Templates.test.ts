import { assert, describe, it } from "@effect/vitest"
import { redactSecrets } from "../../services/Audit.ts"
import { resourceKind } from "../../src/domain/SubjectToken.ts"
import { financeOpsTemplates, render, userTemplates } from "../../services/Notifications.ts"

/** A value for every placeholder any template uses. */
const sample = {
  amount: 10n ** 16n,
  token: "native",
  network: "base",
  plan_slug: "pro",
  tx_hash: `0x${"ab".repeat(32)}`,
  transaction_id: "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
  user_id: "user-42",
  failure_reason: "underpaid",
  current_period_end: new Date("2026-12-31T00:00:00.000Z"),
  expires_at: new Date("2026-12-01T12:30:00.000Z"),
  consumer: "payment-processor-webhooks",
  subject: "billing.webhooks.pass",
  stream: "BILLING_WEBHOOKS",
  seq: 7,
  dead_letter_id: 12,
  link: "/v1/billing/admin/dead-letters/12",
  replay: "POST /v1/billing/admin/dead-letters/12/replay",
  delivery_count: 3,
  reason: "gave up",
  outbox_id: "17",
  detail: "payload is 1500020 bytes",
  actor: "fin-1",
  networks: ["base", "anvil"],
  refund_tx_hash: `0x${"cd".repeat(32)}`,
  status: "confirmed",
  before: "seen",
  checked: "done"
}

describe("notification templates", () => {
  it("every template of both audiences renders fully from its payload", () => {
    for (const template of [...Object.values(userTemplates), ...Object.values(financeOpsTemplates)]) {
      const text = render(template, sample)
      assert.deepStrictEqual(text.missing, [], template.body)
      assert.notMatch(text.body, /\{[a-z_]+\}/)
    }
  })

  it("amounts render as exact decimal strings, times as ISO 8601, lists joined", () => {
    const confirmed = render(userTemplates["payment.confirmed"], { ...sample, amount: 123456789012345678901234567890n })
    assert.include(confirmed.body, "123456789012345678901234567890 base units of native on base")
    assert.include(confirmed.body, "2026-12-31T00:00:00.000Z")
    assert.strictEqual(render(financeOpsTemplates["crypto_config.changed"], sample).body, "fin-1 changed the crypto config of base, anvil.")
  })

  it("a missing value is reported, never rendered as 'undefined'", () => {
    const { body, missing } = render(userTemplates["subscription.expired"], {})
    assert.deepStrictEqual(missing, ["plan_slug"])
    assert.notInclude(body, "undefined")
  })
})

describe("audit redaction", () => {
  it("removes credentials, keeps assets", () => {
    const redacted = redactSecrets({
      webhook_secret: "s3cret",
      private_key: "0xkey",
      access_token: "jwt",
      api_key: "k",
      token: "0x00000000000000000000000000000000000000aa",
      prices: [{ token: "native", amount: 5n }],
      nested: { password: "p", note: null }
    })
    assert.deepStrictEqual(redacted, {
      webhook_secret: "[redacted]",
      private_key: "[redacted]",
      access_token: "[redacted]",
      api_key: "[redacted]",
      token: "0x00000000000000000000000000000000000000aa",
      prices: [{ token: "native", amount: "5" }],
      nested: { password: "[redacted]", note: null }
    })
  })

  it("audit subjects are named by the resource type", () => {
    assert.strictEqual(resourceKind("payment:9c1d2e3f-4a5b"), "payment")
    assert.strictEqual(resourceKind("crypto_config:anvil"), "crypto_config")
    assert.strictEqual(resourceKind("odd.kind:x"), "odd_2Ekind")
    assert.notStrictEqual(resourceKind("odd_kind:x"), resourceKind("odd.kind:x"))
    assert.notStrictEqual(resourceKind("a_20:x"), resourceKind("a :x"))
  })
})
