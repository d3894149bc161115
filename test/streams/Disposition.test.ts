import { describe, expect, it } from "@effect/vitest"
import { Duration, Exit, FiberId } from "effect"
import * as Disposition from "../../streams/Disposition.ts"

const { Ack, DeadLetter, Retry } = Disposition.Disposition
const { HandlerFailure, Outcome, Undecodable } = Disposition

const policy: Disposition.RetryPolicy = {
  maxDeliveries: 4,
  baseDelay: "1 second",
  maxDelay: "5 seconds",
  maxTotalDeliveries: 50
}

const decide = (exit: Disposition.HandlerExit, deliveryCount: number, previousFailures?: number) =>
  Disposition.decide(exit, previousFailures === undefined ? { deliveryCount } : { deliveryCount, previousFailures }, policy)

const retryable = Exit.fail(HandlerFailure.retryable("rpc timeout"))

describe("Disposition", () => {
  it("acks a Done", () => {
    expect(decide(Exit.succeed(Outcome.Done()), 1)).toEqual(Ack())
  })

  it("retries a retryable failure with exponential backoff capped at maxDelay", () => {
    expect(decide(retryable, 1)).toEqual(Retry({ delay: Duration.seconds(1) }))
    expect(decide(retryable, 2)).toEqual(Retry({ delay: Duration.seconds(2) }))
    expect(decide(retryable, 3)).toEqual(Retry({ delay: Duration.seconds(4) }))
    expect(Disposition.backoff(4, policy)).toEqual(Duration.seconds(5))
    expect(Disposition.backoff(10_000, policy)).toEqual(Duration.seconds(5))
  })

  it("dead-letters the maxDeliveries-th failed delivery", () => {
    expect(decide(retryable, 4)).toEqual(DeadLetter({ reason: "gave up after 4 failed deliveries: rpc timeout" }))
  })

  it("counts only earlier failures, not Later deliveries, toward maxDeliveries", () => {
    // 20 deliveries so far, of which 1 failed: this is the 2nd failure
    expect(decide(retryable, 21, 1)).toEqual(Retry({ delay: Duration.seconds(2) }))
    expect(decide(retryable, 21, 3)._tag).toBe("DeadLetter")
  })

  it("dead-letters a non-retryable failure at once", () => {
    expect(decide(Exit.fail(HandlerFailure.permanent("wrong_token")), 1)).toEqual(DeadLetter({ reason: "wrong_token" }))
  })

  it("dead-letters an undecodable message at once", () => {
    expect(decide(Exit.fail(new Undecodable({ reason: "Expected string" })), 1)).toEqual(
      DeadLetter({ reason: "undecodable: Expected string" })
    )
  })

  it("retries Later with its own delay, without counting it as a failure", () => {
    const later = Exit.succeed(Outcome.Later({ delay: Duration.millis(1500), reason: "2 of 12 confirmations" }))
    expect(decide(later, 10, 0)).toEqual(Retry({ delay: Duration.millis(1500) }))
    expect(Disposition.countsAsFailure(later)).toBe(false)
  })

  it("caps Later at maxTotalDeliveries", () => {
    const later = Exit.succeed(Outcome.Later({ delay: Duration.seconds(1), reason: "2 of 12 confirmations" }))
    expect(decide(later, 50, 0)).toEqual(
      DeadLetter({ reason: "still not ready after 50 deliveries: 2 of 12 confirmations" })
    )
  })

  it("treats a defect as a retryable failure", () => {
    const defect = Exit.die(new TypeError("x is undefined"))
    expect(Disposition.countsAsFailure(defect)).toBe(true)
    expect(decide(defect, 1)).toEqual(Retry({ delay: Duration.seconds(1) }))
    expect(decide(defect, 4)).toEqual(DeadLetter({ reason: "gave up after 4 failed deliveries: defect: TypeError: x is undefined" }))
  })

  it("retries an interrupted handler after baseDelay without counting a failure", () => {
    const interrupted = Exit.interrupt(FiberId.none)
    expect(Disposition.countsAsFailure(interrupted)).toBe(false)
    expect(decide(interrupted, 9)).toEqual(Retry({ delay: Duration.seconds(1) }))
  })
})
