/** A seeded PRNG (mulberry32) for scenario plans: the same seed draws the same requests in the same order. */
export interface Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number
  /** Uniform integer in [min, max]. */
  readonly int: (min: number, max: number) => number
  readonly pick: <A>(xs: ReadonlyArray<A>) => A
  /** `n` bytes, as hex. */
  readonly hex: (bytes: number) => string
}

export const makeRng = (seed: number): Rng => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[int(0, xs.length - 1)]!
  const hex = (bytes: number) => Array.from({ length: bytes }, () => int(0, 255).toString(16).padStart(2, "0")).join("")
  return { next, int, pick, hex }
}

/** Picks one entry by weight. */
export const weighted = <A extends { readonly weight: number }>(rng: Rng, xs: ReadonlyArray<A>): A => {
  const total = xs.reduce((s, x) => s + x.weight, 0)
  let r = rng.next() * total
  for (const x of xs) {
    r -= x.weight
    if (r < 0) return x
  }
  return xs[xs.length - 1]!
}
