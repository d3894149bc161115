import { assert, describe, it } from "@effect/vitest"
import { addInterval, firstPeriod, gridIndex, type Period, renewPeriod, revokePeriod } from "../../src/domain/Period.ts"

const at = (iso: string) => new Date(iso)
const iso = (d: Date) => d.toISOString()

describe("addInterval", () => {
  it("clamps the day to the end of the target month, like PostgreSQL", () => {
    assert.strictEqual(iso(addInterval(at("2025-01-31T10:00:00Z"), "month")), "2025-02-28T10:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2024-01-31T10:00:00Z"), "month")), "2024-02-29T10:00:00.000Z", "leap February")
    assert.strictEqual(iso(addInterval(at("2025-03-31T00:00:00Z"), "month")), "2025-04-30T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2025-08-31T00:00:00Z"), "month")), "2025-09-30T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2025-01-30T00:00:00Z"), "month")), "2025-02-28T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2025-02-28T00:00:00Z"), "month")), "2025-03-28T00:00:00.000Z", "no end-of-month snapping")
  })

  it("crosses year ends and keeps the time of day to the millisecond", () => {
    assert.strictEqual(iso(addInterval(at("2024-12-31T23:59:59.999Z"), "month")), "2025-01-31T23:59:59.999Z")
    assert.strictEqual(iso(addInterval(at("2024-11-30T12:34:56.789Z"), "month", 3)), "2025-02-28T12:34:56.789Z")
    assert.strictEqual(iso(addInterval(at("2025-01-15T00:00:00Z"), "month", 25)), "2027-02-15T00:00:00.000Z")
  })

  it("years: Feb 29 + 1 year = Feb 28, + 4 years = Feb 29", () => {
    assert.strictEqual(iso(addInterval(at("2024-02-29T08:00:00Z"), "year")), "2025-02-28T08:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2024-02-29T08:00:00Z"), "year", 4)), "2028-02-29T08:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2023-02-28T08:00:00Z"), "year")), "2024-02-28T08:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2099-12-31T00:00:00Z"), "year")), "2100-12-31T00:00:00.000Z")
  })

  it("goes back with negative n, and n = 0 is the same instant", () => {
    assert.strictEqual(iso(addInterval(at("2025-03-31T00:00:00Z"), "month", -1)), "2025-02-28T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2024-03-31T00:00:00Z"), "month", -1)), "2024-02-29T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2025-01-31T00:00:00Z"), "month", -2)), "2024-11-30T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2028-02-29T00:00:00Z"), "year", -1)), "2027-02-28T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("2025-05-05T05:05:05Z"), "month", 0)), "2025-05-05T05:05:05.000Z")
  })

  it("is before 1970 and at the epoch too (TestClock starts at 0)", () => {
    assert.strictEqual(iso(addInterval(new Date(0), "month")), "1970-02-01T00:00:00.000Z")
    assert.strictEqual(iso(addInterval(at("1969-12-31T23:00:00Z"), "month", 2)), "1970-02-28T23:00:00.000Z")
  })
})

describe("renewal arithmetic", () => {
  const renewAll = (first: Period, interval: "month" | "year", times: number) => {
    const ends: Array<string> = []
    let p = first
    for (let i = 0; i < times; i++) {
      // Paid a day before the end each time: the period is extended from its end.
      p = renewPeriod(p, interval, new Date(p.end.getTime() - 86_400_000))
      ends.push(iso(p.end).slice(0, 10))
    }
    return { ends, last: p }
  }

  it("monthly renewals anchored on Jan 31 do not drift after February", () => {
    const first = firstPeriod(at("2024-01-31T09:00:00Z"), "month")
    assert.strictEqual(iso(first.end), "2024-02-29T09:00:00.000Z")
    const { ends, last } = renewAll(first, "month", 12)
    assert.deepStrictEqual(ends, [
      "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30", "2024-07-31", "2024-08-31",
      "2024-09-30", "2024-10-31", "2024-11-30", "2024-12-31", "2025-01-31", "2025-02-28"
    ])
    assert.strictEqual(iso(last.start), "2024-01-31T09:00:00.000Z", "a running period keeps its start")
    assert.strictEqual(iso(last.anchor), "2024-01-31T09:00:00.000Z")
  })

  it("yearly renewals anchored on Feb 29 come back to Feb 29 in leap years", () => {
    const { ends } = renewAll(firstPeriod(at("2024-02-29T00:00:00Z"), "year"), "year", 4)
    assert.deepStrictEqual(ends, ["2026-02-28", "2027-02-28", "2028-02-29", "2029-02-28"])
  })

  it("a period that already ended starts again from now with a new anchor", () => {
    const lapsed = firstPeriod(at("2025-01-31T00:00:00Z"), "month")
    const now = at("2025-03-10T12:00:00Z")
    const p = renewPeriod(lapsed, "month", now)
    assert.deepStrictEqual([iso(p.anchor), iso(p.start), iso(p.end)], [iso(now), iso(now), "2025-04-10T12:00:00.000Z"])
    // Exactly at the end counts as ended.
    const atEnd = renewPeriod(lapsed, "month", lapsed.end)
    assert.strictEqual(iso(atEnd.start), iso(lapsed.end))
  })

  it("an end off the anchor's grid (a period cut short) renews from that end", () => {
    const cut: Period = { anchor: at("2025-01-31T00:00:00Z"), start: at("2025-01-31T00:00:00Z"), end: at("2025-02-10T00:00:00Z") }
    assert.strictEqual(gridIndex(cut.anchor, "month", cut.end), undefined)
    const p = renewPeriod(cut, "month", at("2025-02-01T00:00:00Z"))
    assert.deepStrictEqual([iso(p.anchor), iso(p.end)], ["2025-02-10T00:00:00.000Z", "2025-03-10T00:00:00.000Z"])
  })

  it("gridIndex finds k with end = anchor + k intervals", () => {
    const anchor = at("2024-01-31T00:00:00Z")
    assert.strictEqual(gridIndex(anchor, "month", at("2024-02-29T00:00:00Z")), 1)
    assert.strictEqual(gridIndex(anchor, "month", at("2025-02-28T00:00:00Z")), 13)
    assert.strictEqual(gridIndex(anchor, "month", at("2024-03-29T00:00:00Z")), undefined)
    assert.strictEqual(gridIndex(anchor, "year", at("2025-01-31T00:00:00Z")), 1)
    assert.strictEqual(gridIndex(anchor, "year", at("2025-02-28T00:00:00Z")), undefined)
  })

  it("a reversal takes one interval back on the grid, and ends the subscription when nothing is left", () => {
    const p: Period = { anchor: at("2025-01-31T00:00:00Z"), start: at("2025-01-31T00:00:00Z"), end: at("2025-03-31T00:00:00Z") }
    const back = revokePeriod(p, "month", at("2025-02-05T00:00:00Z"))
    assert.deepStrictEqual([back.ended, iso(back.end)], [false, "2025-02-28T00:00:00.000Z"])
    const gone = revokePeriod(p, "month", at("2025-03-01T00:00:00Z"))
    assert.deepStrictEqual([gone.ended, iso(gone.end)], [true, "2025-03-01T00:00:00.000Z"], "ends now")
    const first = firstPeriod(at("2025-01-31T00:00:00Z"), "month")
    const justStarted = revokePeriod(first, "month", first.start)
    assert.deepStrictEqual([justStarted.ended, iso(justStarted.end)], [true, "2025-01-31T00:00:01.000Z"], "end stays after start")
  })
})
