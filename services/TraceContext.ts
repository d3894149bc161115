import { Effect, Option, Tracer } from "effect"

/**
 * W3C `traceparent` carried in NATS message headers, so one payment's trace runs from the HTTP request through
 * JetStream into the consumer that settles it.
 */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/

/** The header for the current span, when there is one. */
export const traceHeaders: Effect.Effect<Record<string, string>> = Effect.map(Effect.currentSpan.pipe(Effect.option), (span) =>
  Option.match(span, {
    onNone: () => ({}),
    onSome: (s) => ({ traceparent: `00-${s.traceId}-${s.spanId}-${s.sampled ? "01" : "00"}` })
  }))

/** Runs `effect` as a child of the span named by a `traceparent` header, if the header is valid. */
export const withRemoteParent = (traceparent: string | undefined) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent)
  return match === null
    ? effect
    : Effect.withParentSpan(effect, Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: true }))
}
