/**
 * The generic supervised JetStream pull consumer.
 *
 * `run` creates or updates a durable pull consumer and forks (into the caller's scope) a loop that
 * fetches batches, decodes each payload with a Schema, runs the handler and turns the handler's
 * `Exit` into ack / nak(delay) / dead letter + term with the pure `Disposition` policy:
 * - the ack is sent only after the handler's effect completed (the handler commits its SQL first);
 * - with `handleBatch`, the messages of a fetch are handed over in batches (what has arrived, up to `batchSize`),
 *   `batches` of them at once, and each message is answered after its batch's handler;
 * - a `Later` with a `wake` keeps its message (`working()`) until `wake` completes or `delay` passes, then naks it
 *   for redelivery at once; at most `maxWaiting` messages wait so, the others are nak'ed with `delay`;
 * - a long handler keeps the message with `msg.working()` every `workingInterval`;
 * - a dead letter is the original payload and headers plus `DeadLetterHeaders`, published to
 *   `subjects.dlq(durable)` with a `Nats-Msg-Id` of `<durable>:<stream seq>`, then the message is termed;
 * - a handler defect is logged and counted as a retryable failure, it never stops the loop;
 * - a failing fetch (connection trouble, consumer deleted) restarts the session (re-create the
 *   consumer, fetch again) after a capped, jittered exponential delay, forever;
 * - when the scope closes the loop stops fetching and lets in-flight messages finish for up to
 *   `drainTimeout`; handlers still running then are interrupted and their messages, never acked,
 *   come back after `ackWait`.
 */
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream"
import type { Consumer as JsConsumer, ConsumerConfig, ConsumerMessages, JsMsg } from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import {
  Array as Arr,
  Cause,
  Deferred,
  Duration,
  Effect,
  Either,
  Chunk,
  Exit,
  Fiber,
  FiberSet,
  HashMap,
  Metric,
  Option,
  Queue,
  Ref,
  Schedule,
  Schema,
  Stream
} from "effect"
import type { Scope } from "effect"
import { isNotFound, Nats, NatsError } from "../services/Nats.ts"
import * as Disposition from "./Disposition.ts"
import { withRemoteParent } from "../services/TraceContext.ts"
import { DeadLetterHeaders } from "../services/Subjects.ts"

export interface MessageMeta {
  readonly stream: string
  readonly subject: string
  /** Stream sequence. */
  readonly seq: number
  /** 1 on the first delivery. */
  readonly deliveryCount: number
  readonly msgId: string | undefined
}

export interface BatchItem<A> {
  readonly message: A
  readonly meta: MessageMeta
  /** Runs an effect in the message's trace (its `traceparent` header), as `handle` runs for a single message. */
  readonly inTrace: Tracing
}

export type Tracing = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>

export interface Options<A, I, R> {
  /** For logs, spans and metrics. */
  readonly name: string
  readonly stream: string
  readonly durable: string
  readonly filterSubject: string
  /** Decodes the JSON payload. */
  readonly schema: Schema.Schema<A, I, never>
  /** One message at a time (`concurrency` at once); unused when `handleBatch` is given. */
  readonly handle?: (
    message: A,
    meta: MessageMeta
  ) => Effect.Effect<Disposition.Outcome, Disposition.HandlerFailure, R>
  /** The decoded messages of one batch at once: one result per item, in order. */
  readonly handleBatch?: (
    items: ReadonlyArray<BatchItem<A>>
  ) => Effect.Effect<ReadonlyArray<Exit.Exit<Disposition.Outcome, Disposition.HandlerFailure>>, never, R>
  /** Batches handled at once with `handleBatch` (a fetch asks for `batchSize * batches`), default 1. */
  readonly batches?: number
  /** Messages kept waiting on their `wake` at once, default 1000. */
  readonly maxWaiting?: number
  /** Read at each decision when an Effect: a policy changed live applies to the next retry. */
  readonly policy: Disposition.RetryPolicy | Effect.Effect<Disposition.RetryPolicy>
  /** Default 30 seconds. */
  readonly ackWait?: Duration.DurationInput
  /** Messages per fetch, default 10. */
  readonly batchSize?: number
  /** Messages handled at once, default `batchSize`. */
  readonly concurrency?: number
  /** How long one fetch waits for messages, default 30 seconds (at least 1 second). */
  readonly fetchExpires?: Duration.DurationInput
  /** Default a third of `ackWait`. */
  readonly workingInterval?: Duration.DurationInput
  /** Default 20 seconds. */
  readonly drainTimeout?: Duration.DurationInput
  /** Session restart delay: exponential from `restartBaseDelay` (500 ms), capped at `restartMaxDelay` (30 s). */
  readonly restartBaseDelay?: Duration.DurationInput
  readonly restartMaxDelay?: Duration.DurationInput
  /** Default `subjects.dlq(durable)`. */
  readonly deadLetterSubject?: string
  /**
   * Runs after a dead letter was published, before the message is termed (e.g. notifying finance_ops).
   * If it fails (a defect) the message is not termed but retried later, and dead-lettered (deduplicated) again.
   * `deadLetterId` is the dead letter's sequence in the DLQ stream (`/v1/billing/admin/dead-letters/{id}`).
   */
  readonly onDeadLetter?: (meta: MessageMeta, reason: string, deadLetterId: number) => Effect.Effect<void, never, R>
}

const messagesTotal = Metric.counter("billing_consumer_messages_total", {
  description: "JetStream messages handled, by consumer and disposition",
  incremental: true
})

/** Failed deliveries per stream sequence seen by this instance; cleared past this size. */
const maxTrackedFailures = 10_000

const utf8 = new TextDecoder("utf-8", { fatal: true })

const headerValue = (text: string): string => text.replace(/[\r\n]+/g, " ").slice(0, 1024)

const metaOf = (msg: JsMsg): MessageMeta => {
  const msgId = msg.headers?.get("Nats-Msg-Id")
  return {
    stream: msg.info.stream,
    subject: msg.subject,
    seq: msg.seq,
    deliveryCount: msg.info.deliveryCount,
    msgId: msgId === undefined || msgId === "" ? undefined : msgId
  }
}

/** Ack, nak and term are fire-and-forget publishes; they throw only when the connection is closed. */
const reply = (operation: string, f: () => void): Effect.Effect<void> =>
  Effect.try({ try: f, catch: (cause) => new NatsError({ operation, cause }) }).pipe(
    Effect.catchAll((error) => Effect.logError("could not answer the message; it will be redelivered", error))
  )

export const run = <A, I, R>(
  options: Options<A, I, R>
): Effect.Effect<void, NatsError, Nats | Scope.Scope | R> =>
  Effect.gen(function*() {
    const nats = yield* Nats
    const { durable, stream } = options
    const currentPolicy = Effect.isEffect(options.policy) ? options.policy : Effect.succeed(options.policy)
    const ackWait = Duration.decode(options.ackWait ?? "30 seconds")
    const batchSize = options.batchSize ?? 10
    const concurrency = options.concurrency ?? batchSize
    const { handle, handleBatch } = options
    const batches = handleBatch === undefined ? 1 : Math.max(1, options.batches ?? 1)
    const maxWaiting = options.maxWaiting ?? 1000
    const waiting = yield* FiberSet.make<void>()
    const fetchExpires = Duration.toMillis(options.fetchExpires ?? "30 seconds")
    const workingInterval = options.workingInterval ?? Duration.divide(ackWait, 3).pipe(Option.getOrElse(() => ackWait))
    const deadLetterSubject = options.deadLetterSubject ?? nats.subjects.dlq(durable)
    const restartSchedule = Schedule.exponential(options.restartBaseDelay ?? "500 millis").pipe(
      Schedule.either(Schedule.spaced(options.restartMaxDelay ?? "30 seconds")),
      Schedule.jittered
    )
    const decode = Schema.decodeUnknown(Schema.parseJson(options.schema))
    const shutdown = yield* Deferred.make<void>()
    const failures = yield* Ref.make(HashMap.empty<number, { readonly count: number; readonly firstAt: number }>())

    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(Duration.toMillis(ackWait)),
      max_deliver: -1, // the Disposition decides when to give up
      filter_subject: options.filterSubject
    }
    const { ack_wait, max_deliver, filter_subject } = config
    const ensureConsumer: Effect.Effect<JsConsumer, NatsError> = nats.use(
      `consumers.update(${stream}, ${durable})`,
      ({ jsm }) => jsm.consumers.update(stream, durable, { ack_wait, max_deliver, filter_subject })
    ).pipe(
      Effect.catchIf(isNotFound, () => nats.use(`consumers.add(${stream}, ${durable})`, ({ jsm }) => jsm.consumers.add(stream, config))),
      Effect.zipRight(nats.use(`consumers.get(${stream}, ${durable})`, ({ js }) => js.consumers.get(stream, durable)))
    )

    const decodeMessage = (msg: JsMsg): Effect.Effect<A, Disposition.Undecodable> =>
      Effect.try({ try: () => utf8.decode(msg.data), catch: () => new Disposition.Undecodable({ reason: "payload is not UTF-8" }) }).pipe(
        Effect.flatMap((text) => Effect.mapError(decode(text), (error) => new Disposition.Undecodable({ reason: error.message })))
      )
    const handleOne = (msg: JsMsg, meta: MessageMeta): Effect.Effect<Disposition.Outcome, Disposition.HandlerFailure | Disposition.Undecodable, R> =>
      Effect.flatMap(decodeMessage(msg), (message) =>
        handle === undefined ? Effect.dieMessage(`consumer ${options.name} has no handler`) : Effect.suspend(() => handle(message, meta)))

    const keepWorking = (msg: JsMsg) =>
      reply("working", () => msg.working()).pipe(Effect.delay(workingInterval), Effect.forever)
    const keepAllWorking = (msgs: ReadonlyArray<JsMsg>) =>
      Effect.forEach(msgs, (msg) => reply("working", () => msg.working()), { discard: true }).pipe(Effect.delay(workingInterval), Effect.forever)

    /** Kept until `wake` (or `delay`), then nak'ed for redelivery at once; also when the consumer stops. */
    const wait = (msg: JsMsg, wake: Effect.Effect<void>, delay: Duration.Duration) =>
      Effect.raceFirst(wake, Effect.sleep(delay)).pipe(
        Effect.raceFirst(keepWorking(msg)),
        Effect.ensuring(reply("nak", () => msg.nak()))
      )

    const deadLetter = (msg: JsMsg, meta: MessageMeta, reason: string, firstFailedAt: number | undefined, policy: Disposition.RetryPolicy) => {
      const original: Record<string, string> = {}
      for (const key of msg.headers?.keys() ?? []) {
        // Nats-* headers (Msg-Id, Expected-*) would change how the DLQ stream takes the message
        if (!key.toLowerCase().startsWith("nats-")) original[key] = msg.headers?.get(key) ?? ""
      }
      const headers = {
        ...original,
        [DeadLetterHeaders.reason]: headerValue(reason),
        [DeadLetterHeaders.sourceStream]: meta.stream,
        [DeadLetterHeaders.sourceSubject]: meta.subject,
        [DeadLetterHeaders.sourceSeq]: String(meta.seq),
        [DeadLetterHeaders.sourceConsumer]: durable,
        [DeadLetterHeaders.deliveryCount]: String(meta.deliveryCount),
        ...(firstFailedAt === undefined ? {} : { [DeadLetterHeaders.firstFailedAt]: new Date(firstFailedAt).toISOString() }),
        ...(meta.msgId === undefined ? {} : { [DeadLetterHeaders.sourceMsgId]: meta.msgId })
      }
      const { onDeadLetter } = options
      return nats.publish(deadLetterSubject, msg.data, { msgId: `${durable}:${meta.seq}`, headers }).pipe(
        Effect.tap(({ seq }) => Effect.logError(`dead-lettered: ${reason}`).pipe(Effect.annotateLogs({ dead_letter: seq }))),
        Effect.flatMap(({ seq }) => onDeadLetter === undefined ? Effect.void : onDeadLetter(meta, reason, seq)),
        Effect.matchCauseEffect({
          onSuccess: () => reply("term", () => msg.term()),
          onFailure: (cause) =>
            Effect.logError("could not publish or report the dead letter; retrying the message later", cause).pipe(
              Effect.zipRight(reply("nak", () => msg.nak(Duration.toMillis(policy.maxDelay))))
            )
        })
      )
    }

    const settle = (msg: JsMsg, meta: MessageMeta, exit: Disposition.HandlerExit) =>
      Effect.gen(function*() {
        const seen = HashMap.get(yield* Ref.get(failures), meta.seq)
        const previousFailures = Option.match(seen, { onNone: () => 0, onSome: (s) => s.count })
        const policy = yield* currentPolicy
        const disposition = Disposition.decide(exit, { deliveryCount: meta.deliveryCount, previousFailures, random: Math.random() }, policy)
        const failed = Disposition.countsAsFailure(exit)
        const firstFailedAt = Option.match(seen, { onNone: () => (failed ? Date.now() : undefined), onSome: (s) => s.firstAt })
        yield* Ref.update(failures, (map) =>
          disposition._tag === "Retry" && failed
            ? HashMap.set(HashMap.size(map) >= maxTrackedFailures ? HashMap.empty() : map, meta.seq, {
              count: previousFailures + 1,
              firstAt: firstFailedAt ?? Date.now()
            })
            : disposition._tag === "Retry" ? map : HashMap.remove(map, meta.seq))
        if (Exit.isFailure(exit) && failed) {
          yield* Cause.isDie(exit.cause)
            ? Effect.logError("handler defect", exit.cause)
            : Effect.logWarning("handler failed (retryable)", exit.cause)
        }
        yield* Metric.increment(Metric.tagged(Metric.tagged(messagesTotal, "consumer", options.name), "disposition", disposition._tag))
        yield* Disposition.Disposition.$match(disposition, {
          Ack: () => reply("ack", () => msg.ack()),
          Retry: ({ delay }) =>
            Effect.gen(function*() {
              const wake = Exit.isSuccess(exit) && exit.value._tag === "Later" ? exit.value.wake : undefined
              if (wake !== undefined && (yield* FiberSet.size(waiting)) < maxWaiting) {
                // settle runs uninterruptibly and a fork inherits that: the wait must stay interruptible (its race, shutdown)
                return yield* FiberSet.run(waiting, Effect.interruptible(wait(msg, wake, delay)), { propagateInterruption: false }).pipe(Effect.asVoid)
              }
              yield* reply("nak", () => msg.nak(Duration.toMillis(delay)))
            }),
          DeadLetter: ({ reason }) => deadLetter(msg, meta, reason, firstFailedAt, policy)
        })
      }).pipe(Effect.uninterruptible)

    const processMessage = (msg: JsMsg): Effect.Effect<void, never, R> => {
      const meta = metaOf(msg)
      return handleOne(msg, meta).pipe(
        Effect.raceFirst(keepWorking(msg)),
        Effect.exit,
        Effect.flatMap((exit) => settle(msg, meta, exit)),
        Effect.annotateLogs({ subject: meta.subject, seq: meta.seq, delivery: meta.deliveryCount }),
        Effect.withSpan(`${options.name}.handle`, {
          attributes: { subject: meta.subject, seq: meta.seq, delivery: meta.deliveryCount }
        }),
        withRemoteParent(msg.headers?.get("traceparent"))
      )
    }

    /** The messages of one batch: decoded, handled together, each answered with its own result. */
    const processBatch = (msgs: ReadonlyArray<JsMsg>): Effect.Effect<void, never, R> =>
      Effect.gen(function*() {
        if (handleBatch === undefined || msgs.length === 0) return
        const metas = msgs.map(metaOf)
        const decoded = yield* Effect.forEach(msgs, (msg) => Effect.either(decodeMessage(msg)))
        const items: Array<BatchItem<A>> = []
        const handled: Array<JsMsg> = []
        decoded.forEach((d, i) => {
          if (Either.isRight(d)) {
            items.push({ message: d.right, meta: metas[i]!, inTrace: withRemoteParent(msgs[i]!.headers?.get("traceparent")) })
            handled.push(msgs[i]!)
          }
        })
        const results = items.length === 0
          ? Exit.succeed([])
          : yield* Effect.suspend(() => handleBatch(items)).pipe(Effect.raceFirst(keepAllWorking(handled)), Effect.exit)
        let k = 0
        yield* Effect.forEach(msgs, (msg, i) => {
          const d = decoded[i]!
          const exit: Disposition.HandlerExit = Either.isLeft(d)
            ? Exit.fail(d.left)
            : Exit.isFailure(results)
            ? Exit.failCause(results.cause)
            : results.value[k++] ?? Exit.die(new Error("the batch handler returned fewer results than items"))
          return settle(msg, metas[i]!, exit)
        }, { discard: true })
      }).pipe(Effect.withSpan(`${options.name}.batch`, { attributes: { size: msgs.length } }))

    /**
     * The messages of one fetch through a bounded queue to `batches` workers, each taking what is there (up to
     * `batchSize`, at least one): batches fill under load and stay small (fast) when idle. The end of the fetch is
     * an `undefined` in the queue, passed on by each worker that sees it.
     */
    const inBatches = (messages: Stream.Stream<JsMsg, NatsError>) =>
      Effect.gen(function*() {
        const queue = yield* Queue.bounded<JsMsg | undefined>(batchSize * batches)
        const pump = messages.pipe(Stream.runForEach((msg) => Queue.offer(queue, msg)), Effect.either, Effect.zipLeft(Queue.offer(queue, undefined)))
        const worker = Effect.gen(function*() {
          for (;;) {
            const taken = Chunk.toReadonlyArray(yield* Queue.takeBetween(queue, 1, batchSize))
            const msgs = taken.filter((m): m is JsMsg => m !== undefined)
            yield* processBatch(msgs)
            if (msgs.length < taken.length) return yield* Queue.offer(queue, undefined)
          }
        })
        const [pumped] = yield* Effect.all([pump, Effect.all(Arr.replicate(worker, batches), { concurrency: "unbounded" })], { concurrency: "unbounded" })
        return Either.getLeft(pumped)
      })

    /** One fetch: handles every message it yields; fails (after the others finished) if fetching failed. */
    const runBatch = (consumer: JsConsumer): Effect.Effect<void, NatsError, R> =>
      Effect.scoped(Effect.gen(function*() {
        // close() unsubscribes at once; the promise it returns settles only when the iterator is
        // pulled again, which a full set of in-flight handlers may not do: do not wait for it
        const stop = (messages: ConsumerMessages) => Effect.sync(() => void messages.close())
        const messages = yield* Effect.acquireRelease(
          nats.use("fetch", () => consumer.fetch({ max_messages: batchSize * batches, expires: fetchExpires })),
          stop
        )
        // on shutdown stop the fetch: the iterator ends after the messages already received
        yield* Effect.forkScoped(Effect.zipRight(Deferred.await(shutdown), stop(messages)))
        const iterator = messages[Symbol.asyncIterator]()
        const next = Effect.tryPromise({
          try: () => iterator.next(),
          catch: (cause) => Option.some(new NatsError({ operation: "fetch", cause }))
        }).pipe(Effect.flatMap((r) => r.done ? Effect.fail(Option.none()) : Effect.succeed(r.value)))
        const outcomes = handleBatch === undefined
          ? Stream.mapEffect(Stream.either(Stream.repeatEffectOption(next)), Either.match({
            onLeft: (error) => Effect.succeed(Option.some(error)),
            onRight: (msg) => Effect.as(processMessage(msg), Option.none<NatsError>())
          }), { concurrency, unordered: true })
          : Stream.fromEffect(inBatches(Stream.repeatEffectOption(next)))
        const failure = yield* outcomes.pipe(Stream.runFold(Option.none<NatsError>(), (found, o) => Option.orElse(o, () => found)))
        if (Option.isSome(failure)) return yield* Effect.fail(failure.value)
      }))

    const isShutdown = Deferred.isDone(shutdown)
    const session = (consumer: JsConsumer, onProgress: Effect.Effect<void>) =>
      Effect.gen(function*() {
        while (!(yield* isShutdown)) {
          yield* runBatch(consumer)
          yield* onProgress
        }
      })

    // the first creation happens here so that a bad configuration fails start-up
    const first = yield* ensureConsumer
    const loop = Effect.gen(function*() {
      const driver = yield* Schedule.driver(restartSchedule)
      let consumer: Effect.Effect<JsConsumer, NatsError> = Effect.succeed(first)
      while (!(yield* isShutdown)) {
        const exit = yield* Effect.exit(Effect.flatMap(consumer, (c) => session(c, driver.reset)))
        if (Exit.isSuccess(exit)) break
        consumer = ensureConsumer
        yield* Effect.logWarning("consumer session failed; restarting", exit.cause)
        yield* Effect.raceFirst(driver.next(undefined).pipe(Effect.orElse(() => driver.reset)), Deferred.await(shutdown))
      }
      yield* Effect.logInfo("consumer stopped")
    })

    const fiber = yield* Effect.forkScoped(loop.pipe(Effect.annotateLogs({ consumer: options.name, durable })))
    yield* Effect.addFinalizer(() =>
      Deferred.succeed(shutdown, undefined).pipe(
        // finalizers run uninterruptibly: the wait must be made interruptible for the timeout to cut it
        Effect.zipRight(Fiber.await(fiber).pipe(Effect.interruptible, Effect.timeout(options.drainTimeout ?? "20 seconds"))),
        Effect.catchTag("TimeoutException", () =>
          Effect.logWarning("drain timed out; interrupting in-flight handlers (their messages will be redelivered)")),
        Effect.asVoid,
        Effect.annotateLogs({ consumer: options.name, durable })
      )
    )
    yield* Effect.logInfo("consumer started").pipe(Effect.annotateLogs({ consumer: options.name, durable }))
  })
