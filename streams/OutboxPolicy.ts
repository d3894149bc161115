/**
 * Which outbox rows the relay sets aside (dead-letters) and which failures only stop the pass: one table, so a
 * NATS outage never dead-letters good events and a row NATS can never take never blocks the rows behind it.
 *
 * | what                                                        | verdict                                   |
 * | ----------------------------------------------------------- | ----------------------------------------- |
 * | payload (+ headers) over the server's `max_payload`, or the stream's max message size | `Row(payload_too_large)` |
 * | subject with an empty token, too long, or outside the EVENTS stream | `Row(invalid_subject)`           |
 * | timeout, no responders, connection closed, stream missing or out of resources | `Transient`: stop, retry the pass |
 * | any other JetStream API refusal, or an unknown error        | `Suspect`: counted on the row; dead-lettered (`publish_refused`) after `maxAttempts` while the stream answers |
 */
import { JetStreamApiError } from "@nats-io/jetstream"
import { InvalidArgumentError, InvalidSubjectError } from "@nats-io/transport-node"
import { Data } from "effect"

export type DeadLetterReason = "payload_too_large" | "invalid_subject" | "publish_refused"

export type Verdict = Data.TaggedEnum<{
  Row: { readonly reason: DeadLetterReason; readonly detail: string }
  Suspect: { readonly detail: string }
  Transient: { readonly detail: string }
}>
export const Verdict = Data.taggedEnum<Verdict>()
export type RowVerdict = Extract<Verdict, { readonly _tag: "Row" }>

/** Bytes kept free for the `Nats-Msg-Id` header and the protocol line. */
export const HeaderAllowance = 512
/** Well under NATS's 4 KiB control line, which also carries the reply subject. */
export const MaxSubjectBytes = 1024

// JetStream API codes that describe the stream or the account, not the message
const streamWide = new Set([10008, 10023, 10039, 10047, 10059, 10076, 10077])
const messageTooLarge = 10054
const transientNames = new Set([
  "TimeoutError",
  "NoRespondersError",
  "JetStreamNotEnabled",
  "RequestError",
  "ClosedConnectionError",
  "DrainingConnectionError",
  "ConnectionError"
])

/** NATS subject matching: `*` is one token, `>` one or more. */
export const subjectMatches = (filter: string, subject: string): boolean => {
  const f = filter.split(".")
  const s = subject.split(".")
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i
    if (i >= s.length || (f[i] !== "*" && f[i] !== s[i])) return false
  }
  return f.length === s.length
}

const utf8 = new TextEncoder()

/** A row NATS cannot take, told before publishing it; undefined when it may go. */
export const precheck = (
  row: { readonly subject: string; readonly payloadBytes: number },
  limits: { readonly maxPayload: number; readonly streamSubjects: ReadonlyArray<string> }
): RowVerdict | undefined => {
  const subjectBytes = utf8.encode(row.subject).byteLength
  if (subjectBytes > MaxSubjectBytes) {
    return Verdict.Row({ reason: "invalid_subject", detail: `subject is ${subjectBytes} bytes, more than ${MaxSubjectBytes}` })
  }
  if (row.subject.split(".").some((token) => !/^[A-Za-z0-9_-]+$/.test(token))) {
    return Verdict.Row({ reason: "invalid_subject", detail: "subject has an empty or invalid token" })
  }
  if (!limits.streamSubjects.some((filter) => subjectMatches(filter, row.subject))) {
    return Verdict.Row({ reason: "invalid_subject", detail: "no events stream subject captures it" })
  }
  if (row.payloadBytes + HeaderAllowance > limits.maxPayload) {
    return Verdict.Row({
      reason: "payload_too_large",
      detail: `payload is ${row.payloadBytes} bytes; the server's max_payload is ${limits.maxPayload}`
    })
  }
  return undefined
}

const describe = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error))

/** The verdict on a failed publish (`error` is the client's error, the NatsError's cause). */
export const classify = (error: unknown): Verdict => {
  const detail = describe(error)
  if (error instanceof InvalidArgumentError && /max_payload/.test(error.message)) {
    return Verdict.Row({ reason: "payload_too_large", detail })
  }
  if (error instanceof InvalidArgumentError || error instanceof InvalidSubjectError) {
    return Verdict.Row({ reason: "invalid_subject", detail })
  }
  if (error instanceof JetStreamApiError) {
    if (error.code === messageTooLarge) return Verdict.Row({ reason: "payload_too_large", detail })
    return streamWide.has(error.code) ? Verdict.Transient({ detail }) : Verdict.Suspect({ detail })
  }
  // by name: js.publish wraps "no responders" in JetStreamNotEnabled, which the package does not export
  return transientNames.has(error instanceof Error ? error.name : "")
    ? Verdict.Transient({ detail })
    : Verdict.Suspect({ detail })
}
