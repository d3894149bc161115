import { assert, describe, it } from "@effect/vitest"
import { nextSpan } from "../../streams/ListenerSpan.ts"

const policy = { maxRange: 2000n, targetLogs: 5000 }

describe("nextSpan", () => {
  it("narrows a dense range to about the target number of logs", () => {
    assert.strictEqual(nextSpan(policy, { span: 2000n, answered: 200n, logs: 20_000, refused: false }), 50n)
  })

  it("widens a sparse range at most twofold, up to the maximum", () => {
    assert.strictEqual(nextSpan(policy, { span: 100n, answered: 100n, logs: 10, refused: false }), 200n)
    assert.strictEqual(nextSpan(policy, { span: 1500n, answered: 1500n, logs: 0, refused: false }), 2000n)
  })

  it("keeps a refused range at what the provider answered", () => {
    assert.strictEqual(nextSpan(policy, { span: 2000n, answered: 125n, logs: 100, refused: true }), 125n)
  })

  it("a range cut short by the head keeps the span it meant to ask for", () => {
    assert.strictEqual(nextSpan(policy, { span: 2000n, answered: 1n, logs: 0, refused: false }), 2000n)
  })

  it("never goes below one block", () => {
    assert.strictEqual(nextSpan(policy, { span: 1n, answered: 1n, logs: 90_000, refused: false }), 1n)
  })
})
