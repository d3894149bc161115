/** The outbox relay's table: row faults are set aside, NATS trouble only stops the pass. */
import { assert, describe, it } from "@effect/vitest"
import { JetStreamApiError } from "@nats-io/jetstream"
import { InvalidArgumentError, TimeoutError } from "@nats-io/transport-node"
import { classify, precheck, subjectMatches } from "../../streams/OutboxPolicy.ts"

const limits = { maxPayload: 1024 * 1024, streamSubjects: ["b.plan.changed.v1", "b.notifications.>", "b.audit.>"] }
const apiError = (err_code: number) => new JetStreamApiError({ err_code, code: 400, description: `code ${err_code}` })

describe("OutboxPolicy", () => {
  it("matches NATS wildcards", () => {
    assert.isTrue(subjectMatches("b.notifications.>", "b.notifications.user-1"))
    assert.isFalse(subjectMatches("b.notifications.>", "b.notifications"))
    assert.isTrue(subjectMatches("b.*.x", "b.a.x"))
    assert.isFalse(subjectMatches("b.plan.changed.v1", "b.plan.changed.v1.extra"))
  })

  it("refuses before publishing: too big, empty tokens, outside the stream, too long", () => {
    assert.isUndefined(precheck({ subject: "b.audit.payment", payloadBytes: 1000 }, limits))
    assert.strictEqual(precheck({ subject: "b.audit.payment", payloadBytes: 1024 * 1024 }, limits)?.reason, "payload_too_large")
    assert.strictEqual(precheck({ subject: "b.audit..payment", payloadBytes: 10 }, limits)?.reason, "invalid_subject")
    assert.strictEqual(precheck({ subject: "b.other.thing", payloadBytes: 10 }, limits)?.reason, "invalid_subject")
    assert.strictEqual(precheck({ subject: `b.audit.${"a".repeat(2000)}`, payloadBytes: 10 }, limits)?.reason, "invalid_subject")
  })

  it("classifies publish errors", () => {
    assert.strictEqual(classify(InvalidArgumentError.format("payload", "max_payload size exceeded"))._tag, "Row")
    assert.strictEqual(classify(apiError(10054))._tag, "Row")
    assert.strictEqual(classify(apiError(10077))._tag, "Transient", "a full or failing store is the stream's")
    assert.strictEqual(classify(apiError(10999))._tag, "Suspect")
    assert.strictEqual(classify(new TimeoutError())._tag, "Transient")
    assert.strictEqual(classify(Object.assign(new Error("no responders"), { name: "JetStreamNotEnabled" }))._tag, "Transient")
    assert.strictEqual(classify(new Error("something else"))._tag, "Suspect")
  })
})
