/**
 * Subscription periods as pure calendar arithmetic in UTC. Months are added like PostgreSQL adds an interval:
 * the day of month is kept and clamped to the target month's last day (Jan 31 + 1 month = Feb 28/29,
 * Feb 29 + 1 year = Feb 28); the time of day is kept. Nothing here reads the clock: `now` is an argument.
 */
import type { Interval } from "./Plan.ts"

const monthsOf = (interval: Interval) => (interval === "year" ? 12 : 1)

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month + 1, 0)).getUTCDate()

/** `date` plus `n` intervals (negative `n` goes back), clamping the day to the end of the target month. */
export const addInterval = (date: Date, interval: Interval, n = 1): Date => {
  const total = date.getUTCFullYear() * 12 + date.getUTCMonth() + n * monthsOf(interval)
  const year = Math.floor(total / 12)
  const month = total - year * 12
  const day = Math.min(date.getUTCDate(), daysInMonth(year, month))
  const startOfDay = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate())
  return new Date(Date.UTC(year, month, day) + (date.getTime() - startOfDay))
}

/** Whole intervals from `anchor` to `date` by the calendar (year and month only), possibly negative. */
const intervalsBetween = (anchor: Date, date: Date, interval: Interval) =>
  Math.trunc(
    ((date.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + date.getUTCMonth() - anchor.getUTCMonth()) / monthsOf(interval)
  )

/**
 * How many intervals after `anchor` the boundary `end` lies, when it lies on the anchor's grid
 * (`end = addInterval(anchor, interval, k)`), else undefined.
 */
export const gridIndex = (anchor: Date, interval: Interval, end: Date): number | undefined => {
  const k = intervalsBetween(anchor, end, interval)
  return addInterval(anchor, interval, k).getTime() === end.getTime() ? k : undefined
}

/**
 * The period boundary `n` intervals from `end`, counted on the anchor's grid so a clamped month does not drift:
 * anchored on Jan 31, Feb 28 is followed by Mar 31 (not Mar 28). An `end` off the grid (a period cut short) starts
 * a new grid at `end`.
 */
export const shiftBoundary = (anchor: Date, interval: Interval, end: Date, n: number): { readonly anchor: Date; readonly end: Date } => {
  const k = gridIndex(anchor, interval, end)
  return k === undefined
    ? { anchor: end, end: addInterval(end, interval, n) }
    : { anchor, end: addInterval(anchor, interval, k + n) }
}

export interface Period {
  readonly anchor: Date
  readonly start: Date
  readonly end: Date
}

/** The first period of a subscription that starts at `now`. */
export const firstPeriod = (now: Date, interval: Interval): Period => ({ anchor: now, start: now, end: addInterval(now, interval) })

/**
 * A paid renewal: a period still running is extended from its end by one interval (the start stays); one that
 * has already ended starts again from `now`.
 */
export const renewPeriod = (current: Period, interval: Interval, now: Date): Period => {
  if (current.end.getTime() <= now.getTime()) return firstPeriod(now, interval)
  const next = shiftBoundary(current.anchor, interval, current.end, 1)
  return { anchor: next.anchor, start: current.start, end: next.end }
}

/**
 * A reversed payment takes one interval back from the end. `ended` when that leaves nothing of the period
 * after `now`; the caller then ends the subscription now.
 */
export const revokePeriod = (current: Period, interval: Interval, now: Date): Period & { readonly ended: boolean } => {
  const back = shiftBoundary(current.anchor, interval, current.end, -1)
  const ended = back.end.getTime() <= now.getTime() || back.end.getTime() <= current.start.getTime()
  return ended
    ? { anchor: current.anchor, start: current.start, end: new Date(Math.max(now.getTime(), current.start.getTime() + 1000)), ended }
    : { anchor: back.anchor, start: current.start, end: back.end, ended }
}
