import { assert, describe, it } from "@effect/vitest"
import { compareWorth, decidePlanChange, type HeldGrant, paidNextPeriod, prorationCredits, type Purchase } from "../../src/domain/PlanChange.ts"

const at = (iso: string) => new Date(iso)
const usdc = (amount: bigint, interval: "month" | "year"): Purchase => ({ amount, interval, network: "base", token: "0xusdc" })
const grant = (paymentId: string, amount: bigint, interval: "month" | "year", deferred = false): HeldGrant => ({
  ...usdc(amount, interval),
  paymentId,
  planId: 1,
  deferred
})

describe("compareWorth", () => {
  it("compares the price per month exactly (a year is 12 months); other assets do not compare", () => {
    assert.strictEqual(compareWorth(usdc(90n, "month"), usdc(900n, "year")), 1, "90 > 75 a month")
    assert.strictEqual(compareWorth(usdc(75n, "month"), usdc(900n, "year")), 0)
    assert.strictEqual(compareWorth(usdc(30n, "month"), usdc(900n, "year")), -1)
    assert.strictEqual(compareWorth(usdc(10n ** 30n + 1n, "year"), usdc(10n ** 30n, "year")), 1, "no float rounding")
    assert.isUndefined(compareWorth(usdc(90n, "month"), { ...usdc(30n, "month"), token: "native" }))
    assert.isUndefined(compareWorth(usdc(90n, "month"), { ...usdc(30n, "month"), network: "arbitrum" }))
  })
})

describe("prorationCredits", () => {
  const period = { anchor: at("2025-03-01T00:00:00Z"), start: at("2025-03-01T00:00:00Z"), end: at("2025-05-01T00:00:00Z") }
  it("credits each payment's stretch, newest last, rounded up; a deferred grant in full", () => {
    const held = [grant("apr", 30_000_000n, "month"), grant("mar", 30_000_000n, "month"), grant("next", 7n, "month", true)]
    assert.deepStrictEqual(prorationCredits(period, held, at("2025-03-11T00:00:00Z")).map((c) => [c.paymentId, c.amount]), [
      ["next", 7n],
      ["apr", 30_000_000n],
      ["mar", 20_322_581n]
    ])
  })

  it("exact when it divides; nothing for stretches already used; nothing at the very end", () => {
    const held = [grant("apr", 30n, "month"), grant("mar", 31n, "month"), grant("feb", 28n, "month")]
    assert.deepStrictEqual(prorationCredits(period, held, at("2025-03-11T00:00:00Z")).map((c) => c.amount), [30n, 21n])
    assert.deepStrictEqual(prorationCredits(period, held, at("2025-05-01T00:00:00Z")), [])
  })
})

describe("paidNextPeriod", () => {
  it("one interval per grant from the start, on the start's grid", () => {
    const next = paidNextPeriod(at("2026-01-31T00:00:00Z"), ["month", "month", "month"])
    assert.deepStrictEqual([next.start, next.end].map((d) => d.toISOString()), ["2026-01-31T00:00:00.000Z", "2026-04-30T00:00:00.000Z"])
  })
})

describe("decidePlanChange", () => {
  const now = at("2025-06-01T00:00:00Z")
  const current = { now, periodEnd: at("2026-01-15T00:00:00Z"), changedAt: at("2025-01-15T00:00:00Z"), basis: usdc(900n, "year"), deferredPlanId: undefined }
  const pay = (amount: bigint, interval: "month" | "year", issuedAt = now, planId = 7) => ({ ...usdc(amount, interval), planId, issuedAt })
  const stale = at("2025-01-14T00:00:00Z")

  it("worth at least as much: upgrade; less, or not comparable: defer", () => {
    assert.strictEqual(decidePlanChange(current, pay(90n, "month")), "upgrade")
    assert.strictEqual(decidePlanChange(current, pay(75n, "month")), "upgrade", "the same worth switches at once")
    assert.strictEqual(decidePlanChange(current, pay(30n, "month")), "defer")
    assert.strictEqual(decidePlanChange({ ...current, basis: undefined }, pay(90n, "month")), "defer", "nothing recorded to compare")
    assert.strictEqual(decidePlanChange(current, { ...pay(90n, "month"), token: "native" }), "defer")
  })

  it("stale: credited when it would cheapen or shorten; a stale upgrade that lasts at least as long applies", () => {
    assert.strictEqual(decidePlanChange(current, pay(30n, "month", stale)), "stale")
    assert.strictEqual(decidePlanChange(current, pay(90n, "month", stale)), "stale", "ends Jul 1, before 2026-01-15")
    assert.strictEqual(decidePlanChange(current, pay(2000n, "year", stale)), "upgrade")
  })

  it("a paid next period of another plan: a third plan is credited; the same plan queues; the period over: replace", () => {
    const waiting = { ...current, deferredPlanId: 3 }
    assert.strictEqual(decidePlanChange(waiting, pay(30n, "month", now, 4)), "conflict")
    assert.strictEqual(decidePlanChange(waiting, pay(30n, "month", now, 3)), "defer")
    assert.strictEqual(decidePlanChange(waiting, pay(90n, "month", now, 4)), "upgrade")
    const over = { ...current, now: at("2026-01-16T00:00:00Z") }
    assert.strictEqual(decidePlanChange(over, pay(30n, "month", stale)), "replace")
    assert.strictEqual(decidePlanChange({ ...over, deferredPlanId: 3 }, pay(30n, "month", now, 4)), "conflict")
  })
})
