import { randomUUID } from "node:crypto"
import type { StoredMsg } from "@nats-io/jetstream"
import { expect, layer } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Layer, Queue, Schedule, Schema, Scope } from "effect"
import { Nats } from "../../services/Nats.ts"
import * as Consumer from "../../streams/Consumer.ts"
import { HandlerFailure, Outcome } from "../../streams/Disposition.ts"
import { DeadLetterHeaders, Prefix } from "../../services/Subjects.ts"

// A prefix of our own: this file's streams never meet another run's, and are deleted at the end.
const prefix = Prefix.make(`T${randomUUID().replaceAll("-", "").slice(0, 12)}`)

const DeleteStreams = Layer.scopedDiscard(Effect.gen(function*() {
  const nats = yield* Nats
  yield* Effect.addFinalizer(() =>
    Effect.forEach(
      Object.values(nats.subjects.streams),
      (name) => nats.use(`streams.delete(${name})`, ({ jsm }) => jsm.streams.delete(name)),
      { discard: true }
    ).pipe(Effect.orDie)
  )
}))

const TestNats = DeleteStreams.pipe(Layer.provideMerge(Nats.layerWith({ prefix })))

const Payment = Schema.Struct({ id: Schema.String })
type Payment = typeof Payment.Type

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

/** A consumer on `<prefix>.webhooks.<name>` with short timings, so redeliveries take milliseconds. */
const consume = (
  name: string,
  handle: Consumer.Options<Payment, Payment, never>["handle"],
  overrides: Partial<Consumer.Options<Payment, Payment, never>> = {}
) =>
  Effect.gen(function*() {
    const { subjects } = yield* Nats
    yield* Consumer.run({
      name,
      stream: subjects.streams.webhooks,
      durable: name,
      filterSubject: subjects.webhook(name),
      schema: Payment,
      handle,
      policy: { maxDeliveries: 5, baseDelay: "20 millis", maxDelay: "200 millis" },
      ackWait: "5 seconds",
      fetchExpires: "1 second",
      batchSize: 1,
      drainTimeout: "2 seconds",
      ...overrides
    })
    return subjects.webhook(name)
  })

const takeN = <A>(queue: Queue.Queue<A>, n: number) =>
  Queue.takeN(queue, n).pipe(Effect.map(Chunk.toArray), Effect.timeout("10 seconds"))

/** Polls (every 50 ms, up to 10 s) until `check` succeeds: the server settles acks asynchronously. */
const eventually = <A, E, R>(check: Effect.Effect<A, E, R>) =>
  Effect.retry(check, Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds")))

const consumerInfo = (durable: string) =>
  Effect.flatMap(Nats, (nats) =>
    nats.use("consumers.info", ({ jsm }) => jsm.consumers.info(nats.subjects.streams.webhooks, durable)))

/** The message at `seq` has been acked or termed and nothing is waiting for an ack. */
const settled = (durable: string, seq: number) =>
  eventually(
    consumerInfo(durable).pipe(
      Effect.filterOrFail(
        (info) => info.ack_floor.stream_seq >= seq && info.num_ack_pending === 0,
        (info) => new Error(`not settled: ${JSON.stringify({ ack_floor: info.ack_floor, pending: info.num_ack_pending })}`)
      )
    )
  )

/** Every dead letter of one consumer, oldest first (the DLQ stream of this file is small). */
const deadLetters = (durable: string) =>
  Effect.flatMap(Nats, (nats) =>
    nats.use("dead letters", async ({ jsm }) => {
      const stream = nats.subjects.streams.dlq
      const { state } = await jsm.streams.info(stream)
      const found: Array<StoredMsg> = []
      for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
        const message = await jsm.streams.getMessage(stream, { seq })
        if (message !== null && message.subject === nats.subjects.dlq(durable)) found.push(message)
      }
      return found
    }))

const deadLettersCount = (durable: string, n: number) =>
  eventually(
    deadLetters(durable).pipe(
      Effect.filterOrFail((found) => found.length >= n, () => new Error(`waiting for ${n} dead letters`))
    )
  )

layer(TestNats, { excludeTestServices: true, timeout: "30 seconds" })("Consumer (real NATS)", (it) => {
  it.scoped("dedupes by Nats-Msg-Id: the second publish is a duplicate and the handler runs once", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const seen = yield* Queue.unbounded<string>()
      const subject = yield* consume("dedupe", (p) => Queue.offer(seen, p.id).pipe(Effect.as(Outcome.Done())))
      const first = yield* nats.publish(subject, encode({ id: "a" }), { msgId: "msg-1" })
      const again = yield* nats.publish(subject, encode({ id: "a" }), { msgId: "msg-1" })
      expect(first.duplicate).toBe(false)
      expect(again).toEqual({ seq: first.seq, duplicate: true })
      // one consumer, batches of one: the sentinel is handled after anything published before it
      const sentinel = yield* nats.publish(subject, encode({ id: "sentinel" }), { msgId: "msg-2" })
      expect(yield* takeN(seen, 2)).toEqual(["a", "sentinel"])
      yield* settled("dedupe", sentinel.seq)
      expect(yield* Queue.size(seen)).toBe(0)
    }))

  it.scoped("retries a retryable failure with a delayed nak, then acks", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const deliveries = yield* Queue.unbounded<number>()
      const subject = yield* consume("retry", (_, meta) =>
        Queue.offer(deliveries, meta.deliveryCount).pipe(
          Effect.zipRight(
            meta.deliveryCount < 3 ? Effect.fail(HandlerFailure.retryable("rpc timeout")) : Effect.succeed(Outcome.Done())
          )
        ))
      const { seq } = yield* nats.publish(subject, encode({ id: "r" }), { msgId: "retry-1" })
      expect(yield* takeN(deliveries, 3)).toEqual([1, 2, 3])
      yield* settled("retry", seq)
      expect((yield* consumerInfo("retry")).num_redelivered).toBe(0)
      expect(yield* Queue.size(deliveries)).toBe(0)
    }))

  it.scoped("dead-letters a non-retryable failure with the reason header and never redelivers it", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const calls = yield* Queue.unbounded<number>()
      const subject = yield* consume("permanent", (_, meta) =>
        Queue.offer(calls, meta.deliveryCount).pipe(Effect.zipRight(Effect.fail(HandlerFailure.permanent("wrong_token")))))
      const payload = encode({ id: "p" })
      const { seq } = yield* nats.publish(subject, payload, { msgId: "perm-1", headers: { "X-Request-Id": "req-7" } })
      const [letter] = yield* deadLettersCount("permanent", 1)
      expect(letter.data).toEqual(payload)
      expect(letter.subject).toBe(nats.subjects.dlq("permanent"))
      const header = (name: string) => letter.header.get(name)
      expect(header(DeadLetterHeaders.reason)).toBe("wrong_token")
      expect(header(DeadLetterHeaders.sourceStream)).toBe(nats.subjects.streams.webhooks)
      expect(header(DeadLetterHeaders.sourceSubject)).toBe(subject)
      expect(header(DeadLetterHeaders.sourceSeq)).toBe(String(seq))
      expect(header(DeadLetterHeaders.deliveryCount)).toBe("1")
      expect(header(DeadLetterHeaders.sourceMsgId)).toBe("perm-1")
      expect(header("X-Request-Id")).toBe("req-7")
      // termed: nothing pending, so the server will not deliver it again
      yield* settled("permanent", seq)
      expect(yield* takeN(calls, 1)).toEqual([1])
      expect((yield* consumerInfo("permanent")).num_redelivered).toBe(0)
    }))

  it.scoped("dead-letters undecodable payloads without calling the handler", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const calls = yield* Queue.unbounded<Payment>()
      const subject = yield* consume("undecodable", (p) => Queue.offer(calls, p).pipe(Effect.as(Outcome.Done())))
      yield* nats.publish(subject, new TextEncoder().encode("{not json"))
      const last = yield* nats.publish(subject, encode({ id: 42 }))
      const letters = yield* deadLettersCount("undecodable", 2)
      const reasons = letters.map((l) => l.header.get(DeadLetterHeaders.reason))
      expect(reasons.every((r) => r.startsWith("undecodable: "))).toBe(true)
      expect(reasons[1]).toContain("id")
      yield* settled("undecodable", last.seq)
      expect(yield* Queue.size(calls)).toBe(0)
    }))

  it.scoped("survives a handler defect: logs it, naks with a delay, handles the redelivery", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const deliveries = yield* Queue.unbounded<number>()
      const subject = yield* consume("defect", (_, meta) =>
        Queue.offer(deliveries, meta.deliveryCount).pipe(
          Effect.zipRight(meta.deliveryCount === 1 ? Effect.die(new Error("boom")) : Effect.succeed(Outcome.Done()))
        ))
      yield* nats.publish(subject, encode({ id: "d1" }))
      const second = yield* nats.publish(subject, encode({ id: "d2" }))
      // d1 dies, then succeeds on redelivery; d2 is handled by the same (living) loop
      expect((yield* takeN(deliveries, 3)).sort()).toEqual([1, 1, 2])
      yield* settled("defect", second.seq)
    }))

  it.scoped("restarts its session when fetching fails (here: the durable consumer is deleted under it)", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const seen = yield* Queue.unbounded<string>()
      const subject = yield* consume("supervised", (p) => Queue.offer(seen, p.id).pipe(Effect.as(Outcome.Done())), {
        restartBaseDelay: "50 millis"
      })
      yield* nats.use("consumers.delete", ({ jsm }) => jsm.consumers.delete(nats.subjects.streams.webhooks, "supervised"))
      const { seq } = yield* nats.publish(subject, encode({ id: "after-restart" }))
      expect(yield* takeN(seen, 1)).toEqual(["after-restart"])
      yield* settled("supervised", seq)
    }))

  it.scoped("acks only after the handler: a process that dies mid-handler gets the message again", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const recorded = yield* Queue.unbounded<{ seq: number; deliveryCount: number }>()
      // records its side effect, then hangs on the first delivery (the "crash" comes before the ack)
      const handle = (_: Payment, meta: Consumer.MessageMeta) =>
        Queue.offer(recorded, { seq: meta.seq, deliveryCount: meta.deliveryCount }).pipe(
          Effect.zipRight(meta.deliveryCount === 1 ? Effect.never : Effect.succeed(Outcome.Done()))
        )
      const timings = { ackWait: "1 second", drainTimeout: "100 millis" } as const
      const crashed = yield* Scope.make()
      const subject = yield* consume("crash", handle, timings).pipe(Scope.extend(crashed))
      const { seq } = yield* nats.publish(subject, encode({ id: "c" }), { msgId: "crash-1" })
      expect(yield* takeN(recorded, 1)).toEqual([{ seq, deliveryCount: 1 }])
      yield* Scope.close(crashed, Exit.void)
      expect((yield* consumerInfo("crash")).ack_floor.stream_seq).toBeLessThan(seq)

      yield* consume("crash", handle, timings)
      const [again] = yield* takeN(recorded, 1)
      expect(again.seq).toBe(seq)
      expect(again.deliveryCount).toBeGreaterThanOrEqual(2)
      yield* settled("crash", seq)
    }))

  it.scoped("drains on shutdown: an in-flight handler finishes and is acked", () =>
    Effect.gen(function*() {
      const nats = yield* Nats
      const started = yield* Queue.unbounded<number>()
      const scope = yield* Scope.make()
      const subject = yield* consume("drain", (_, meta) =>
        Queue.offer(started, meta.seq).pipe(
          Effect.zipRight(Effect.sleep(Duration.millis(300))),
          Effect.as(Outcome.Done())
        )).pipe(Scope.extend(scope))
      const { seq } = yield* nats.publish(subject, encode({ id: "slow" }))
      yield* takeN(started, 1)
      yield* Scope.close(scope, Exit.void)
      yield* settled("drain", seq)
    }))
})
