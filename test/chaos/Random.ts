/** A small seeded generator (mulberry32), so one `--seed` replays the same fault moments and workload choices. */
export interface Random {
  /** Uniform in [0, 1). */
  readonly next: () => number
  /** Uniform integer in [min, max]. */
  readonly int: (min: number, max: number) => number
  /** Uniform in [min, max) milliseconds. */
  readonly millis: (min: number, max: number) => number
  readonly chance: (p: number) => boolean
}

export const seeded = (seed: number): Random => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    millis: (min, max) => Math.round(min + next() * (max - min)),
    chance: (p) => next() < p
  }
}
