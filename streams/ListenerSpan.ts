/**
 * How many blocks the listener asks for next: about `targetLogs` logs a range (memory and one publish window stay
 * bounded), at most twice the last span (a burst after a quiet stretch costs one big answer, not many) and never
 * more than `maxRange`; a range the provider refused stays at what it answered.
 */
export interface SpanPolicy {
  readonly maxRange: bigint
  readonly targetLogs: number
}

export interface RangeRead {
  /** The span the listener meant to ask for (the head may have cut the range shorter). */
  readonly span: bigint
  /** Blocks actually read. */
  readonly answered: bigint
  readonly logs: number
  /** The provider refused a wider range: `answered` is what it would take. */
  readonly refused: boolean
}

const min = (a: bigint, b: bigint) => (a < b ? a : b)

export const nextSpan = (policy: SpanPolicy, read: RangeRead): bigint => {
  const grown = read.span * 2n
  const dense = read.logs === 0 ? grown : (read.answered * BigInt(policy.targetLogs)) / BigInt(read.logs)
  const next = min(min(dense, grown), policy.maxRange)
  const capped = read.refused ? min(next, read.answered) : next
  return capped < 1n ? 1n : capped
}
