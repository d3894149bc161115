/** The fault suite's seeded draws (on prng.ts's generator), so one `--seed` replays the same fault moments and choices. */
import { makeRng, type Rng } from "./prng.ts"

export interface Random extends Rng {
  /** Uniform in [min, max] milliseconds, rounded. */
  readonly millis: (min: number, max: number) => number
  readonly chance: (p: number) => boolean
}

export const seeded = (seed: number): Random => {
  const rng = makeRng(seed)
  return { ...rng, millis: (min, max) => Math.round(min + rng.next() * (max - min)), chance: (p) => rng.next() < p }
}
