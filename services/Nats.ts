/**
 * The NATS connection, the JetStream client and manager, and the billing streams.
 *
 * Configuration: `NATS_URL` (default `nats://127.0.0.1:4222`, a comma-separated list is accepted)
 * and `BILLING_NATS_PREFIX` (default `BILLING`, see `services/Subjects.ts`).
 * `Nats.Default` reads both with `Config`. Tests and tools that need another prefix use
 * `Nats.layerWith({ prefix })`: anything not given is still read from `Config`.
 */
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream"
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream"
import { connect, headers as natsHeaders } from "@nats-io/transport-node"
import type { MsgHdrs, NatsConnection, Status } from "@nats-io/transport-node"
import { Config, Data, type Duration, Effect, Either, Layer, LogLevel, Schema } from "effect"
import type { StreamCodec } from "./StreamCodecs.ts"
import * as Subjects from "./Subjects.ts"
import { StreamLimits, streamConfigs, type StreamSettings } from "./StreamLimits.ts"

export class NatsError extends Data.TaggedError("NatsError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `NATS ${this.operation} failed: ${detail}`
  }
}

/** True when the JetStream API answered "stream not found" or "consumer not found". */
export const isNotFound = (error: NatsError): boolean =>
  error.cause instanceof JetStreamApiError &&
  (error.cause.code === JetStreamApiCodes.StreamNotFound || error.cause.code === JetStreamApiCodes.ConsumerNotFound)

export interface NatsSettings {
  readonly url: string
  readonly prefix: Subjects.Prefix
  readonly limits: StreamLimits
}

// The message does not echo the value: a URL may carry credentials.
const NatsUrlSchema = Schema.String.pipe(
  Schema.pattern(/^(nats|tls):\/\/[^\s,]+(,(nats|tls):\/\/[^\s,]+)*$/, {
    message: () => "must be nats://host:port or tls://host:port (comma-separated)"
  })
)

export const NatsUrl: Config.Config<string> = Schema.Config("NATS_URL", NatsUrlSchema).pipe(
  Config.withDescription("NATS server URL(s), comma-separated, nats:// or tls://"),
  Config.withDefault("nats://127.0.0.1:4222")
)

export const NatsPrefix: Config.Config<Subjects.Prefix> = Schema.Config("BILLING_NATS_PREFIX", Subjects.Prefix).pipe(
  Config.withDescription("prefix of every stream, subject and durable consumer name"),
  Config.withDefault(Subjects.DefaultPrefix)
)

export const NatsSettings: Config.Config<NatsSettings> = Config.all({ url: NatsUrl, prefix: NatsPrefix, limits: StreamLimits })

export interface PublishOptions {
  /** Sent as `Nats-Msg-Id`: the stream drops a repeat within its duplicate window. */
  readonly msgId?: string
  readonly headers?: Readonly<Record<string, string>>
}

export interface Published {
  readonly seq: number
  readonly duplicate: boolean
}

export interface Clients {
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
}

const attempt = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, NatsError> =>
  Effect.tryPromise({ try: f, catch: (cause) => new NatsError({ operation, cause }) })

/** `window` lanes over the messages, in order; the first failure stops new publishes and is thrown once lanes drain. */
const publishWindow = async (
  js: JetStreamClient,
  messages: ReadonlyArray<{ readonly subject: string; readonly data: Uint8Array; readonly msgID: string }>,
  window: number,
  signal: AbortSignal
): Promise<number> => {
  let next = 0
  let failure: { readonly cause: unknown } | undefined
  let duplicates = 0
  const lane = async () => {
    while (next < messages.length && failure === undefined && !signal.aborted) {
      const { data, msgID, subject } = messages[next++]!
      try {
        if ((await js.publish(subject, data, { msgID })).duplicate) duplicates++
      } catch (cause) {
        failure ??= { cause }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(window, messages.length)) }, lane))
  if (failure !== undefined) throw failure.cause
  return duplicates
}

const closeConnection = (nc: NatsConnection): Effect.Effect<void> =>
  nc.isClosed() ? Effect.void : attempt("drain", () => nc.drain()).pipe(
    // finalizers run uninterruptibly: the drain must be interruptible for the timeout to cut it
    Effect.interruptible,
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new NatsError({ operation: "drain", cause: "timed out" }) }),
    Effect.catchAll((error) =>
      Effect.logWarning("NATS drain failed, closing the connection", error).pipe(
        Effect.zipRight(attempt("close", () => nc.close())),
        Effect.catchAll((closeError) => Effect.logError("NATS close failed", closeError))
      )
    )
  )

const statusLevel: Partial<Record<Status["type"], LogLevel.LogLevel>> = {
  disconnect: LogLevel.Warning,
  staleConnection: LogLevel.Warning,
  slowConsumer: LogLevel.Warning,
  error: LogLevel.Error,
  reconnect: LogLevel.Info,
  ldm: LogLevel.Info,
  close: LogLevel.Info
}

/** Logs disconnects, reconnects and errors (pings and the like at debug level) until the connection closes. */
const logStatus = (nc: NatsConnection): Effect.Effect<void> => {
  const iterator = nc.status()[Symbol.asyncIterator]()
  const step = attempt("status", () => iterator.next()).pipe(
    Effect.tap((next) =>
      next.done ? Effect.void : Effect.logWithLevel(
        statusLevel[next.value.type] ?? LogLevel.Debug,
        `NATS connection status: ${next.value.type}`
      ).pipe(Effect.annotateLogs("server", "server" in next.value ? String(next.value.server) : ""))
    ),
    Effect.map((next) => next.done === true),
    Effect.catchAll((error) => Effect.logWarning("NATS status iterator failed", error).pipe(Effect.as(true)))
  )
  return Effect.repeat(step, { until: (done) => done })
}

export const make = Effect.fn("Nats.make")(function*(settings: NatsSettings) {
  const subjects = Subjects.make(settings.prefix)
  const nc = yield* Effect.acquireRelease(
    attempt("connect", () =>
      // noAsyncTraces: otherwise every publish and request captures a stack trace (15–25% of a publish-heavy path).
      connect({ servers: settings.url.split(","), name: `evm-billing/${settings.prefix}`, maxReconnectAttempts: -1, noAsyncTraces: true })),
    closeConnection
  )
  yield* Effect.forkScoped(logStatus(nc))
  const js = jetstream(nc)
  const jsm = yield* attempt("jetstreamManager", () => jetstreamManager(nc))

  const use = <A>(operation: string, f: (clients: Clients) => Promise<A>): Effect.Effect<A, NatsError> =>
    attempt(operation, () => f({ js, jsm }))

  // an existing stream gets the current limits too (update first)
  const ensureStream = (config: StreamSettings) => {
    const { name, ...update } = config
    return use(`streams.update(${name})`, ({ jsm }) => jsm.streams.update(name, update)).pipe(
      Effect.catchIf(isNotFound, () => use(`streams.add(${name})`, ({ jsm }) => jsm.streams.add(config))),
      Effect.asVoid
    )
  }
  yield* Effect.forEach(streamConfigs(subjects, settings.limits), ensureStream, { discard: true })

  const toHeaders = (record: Readonly<Record<string, string>>): Effect.Effect<MsgHdrs, NatsError> =>
    Effect.try({
      try: () => {
        const h = natsHeaders()
        for (const [key, value] of Object.entries(record)) h.set(key, value)
        return h
      },
      catch: (cause) => new NatsError({ operation: "headers", cause })
    })

  // A plain span rather than Effect.fn: it runs per message, and Effect.fn captures a stack trace per call.
  const publish = (subject: string, data: Uint8Array, options: PublishOptions = {}) => Effect.gen(function*() {
    const headers = options.headers === undefined ? undefined : yield* toHeaders(options.headers)
    const ack = yield* use(`publish(${subject})`, ({ js }) =>
      js.publish(subject, data, {
        ...(options.msgId === undefined ? {} : { msgID: options.msgId }),
        ...(headers === undefined ? {} : { headers })
      }))
    return { seq: ack.seq, duplicate: ack.duplicate } satisfies Published
  }).pipe(Effect.withSpan("Nats.publish", { attributes: { subject }, captureStackTrace: false }))

  /** A message of one stream, encoded, addressed and deduplicated as its codec says (`msgId` may add a suffix). */
  const publishMessage = <A, I>(codec: StreamCodec<A, I>, message: A, options: Omit<PublishOptions, "msgId"> & { readonly msgIdSuffix?: string } = {}) =>
    Effect.flatMap(Effect.orDie(codec.encode(message)), (data) =>
      publish(codec.subject(subjects, message), data, {
        ...(options.headers === undefined ? {} : { headers: options.headers }),
        msgId: `${codec.msgId(message)}${options.msgIdSuffix ?? ""}`
      }))

  /**
   * Many messages of one stream, `window` of them in flight, every ack awaited; one span for the lot. On a failure no
   * new publish starts and the batch fails once the in-flight ones settle: the caller publishes the batch again and
   * the msg ids make the repeats no-ops.
   */
  const publishMessages = <A, I>(codec: StreamCodec<A, I>, messages: ReadonlyArray<A>, window: number) =>
    Effect.forEach(messages, (message) =>
      Effect.map(Effect.orDie(codec.encode(message)), (data) => ({ subject: codec.subject(subjects, message), data, msgID: codec.msgId(message) }))).pipe(
      Effect.flatMap((encoded) =>
        Effect.tryPromise({
          try: (signal) => publishWindow(js, encoded, window, signal),
          catch: (cause) => new NatsError({ operation: `publish(${encoded.length} messages)`, cause })
        })
      ),
      Effect.withSpan("Nats.publishMessages", { attributes: { messages: messages.length } })
    )

  /**
   * Raw messages published together, submitted in the given order on the one connection (so stored in that order
   * unless one fails), every ack awaited; each message's own result. For callers that must know which went out.
   */
  const publishEach = (messages: ReadonlyArray<{ readonly subject: string; readonly data: Uint8Array; readonly msgId: string }>) =>
    Effect.promise((): Promise<ReadonlyArray<Either.Either<Published, NatsError>>> =>
      Promise.all(messages.map(({ data, msgId, subject }) =>
        js.publish(subject, data, { msgID: msgId }).then(
          (ack) => Either.right({ seq: ack.seq, duplicate: ack.duplicate }),
          (cause: unknown) => Either.left(new NatsError({ operation: `publish(${subject})`, cause }))
        )))
    ).pipe(Effect.withSpan("Nats.publishEach", { attributes: { messages: messages.length }, captureStackTrace: false }))

  /** The connected server's `max_payload` (NATS's default 1 MiB until the server told it). */
  const maxPayload: Effect.Effect<number> = Effect.sync(() => nc.info?.max_payload ?? 1024 * 1024)

  /** Round trip to the JetStream API: proves the connection and JetStream both answer. */
  const ping: Effect.Effect<void, NatsError> = use("ping", ({ jsm }) => jsm.getAccountInfo()).pipe(Effect.asVoid)

  /** Core NATS publish: a signal to every running instance, not stored. */
  const signal = (subject: string, data: Uint8Array = new Uint8Array()) =>
    Effect.try({ try: () => nc.publish(subject, data), catch: (cause) => new NatsError({ operation: `signal(${subject})`, cause }) })

  /** Runs `onSignal` for each core NATS message on `subject` until the scope closes. */
  const onSignal = <E, R>(subject: string, handle: (data: Uint8Array) => Effect.Effect<void, E, R>) =>
    Effect.gen(function*() {
      const sub = yield* Effect.acquireRelease(
        Effect.try({ try: () => nc.subscribe(subject), catch: (cause) => new NatsError({ operation: `subscribe(${subject})`, cause }) }),
        (s) => Effect.sync(() => s.unsubscribe())
      )
      const iterator = sub[Symbol.asyncIterator]()
      const next = attempt(`next(${subject})`, () => iterator.next())
      yield* Effect.forkScoped(Effect.gen(function*() {
        while (true) {
          const msg = yield* next
          if (msg.done) return
          yield* handle(msg.value.data).pipe(Effect.catchAllCause((cause) => Effect.logWarning(`signal handler failed on ${subject}`, cause)))
        }
      }))
    })

  /** After a committed change other instances hold in memory: signal them; one that misses it reloads on its timer. */
  const announce = (name: string) =>
    signal(subjects.control(name)).pipe(
      Effect.catchAll((e) => Effect.logWarning(`${name} signal not sent; other instances reload on their timer`, e))
    )

  /**
   * Keeps an in-memory copy fresh until the scope closes: `reload` on every `announce(name)` from any instance, and
   * every `every` (a signal lost while disconnected). A failed reload is logged; the copy in force stays.
   */
  const reloadOnAnnounce = <E, R>(name: string, reload: Effect.Effect<void, E, R>, every: Duration.Duration) =>
    Effect.gen(function*() {
      const logged = (why: string) =>
        reload.pipe(Effect.catchAllCause((cause) => Effect.logWarning(`${name} not reloaded (${why}); the copy in force stays`, cause)))
      yield* onSignal(subjects.control(name), () => Effect.zipRight(logged("signal"), Effect.logInfo(`${name} changed: reloaded`)))
      yield* Effect.forkScoped(Effect.forever(Effect.delay(logged("periodic"), every)))
    })

  return { subjects, js, jsm, use, publish, publishEach, publishMessage, publishMessages, maxPayload, ping, signal, onSignal, announce, reloadOnAnnounce } as const
})

export class Nats extends Effect.Service<Nats>()("billing/Nats", {
  scoped: Effect.flatMap(NatsSettings, make)
}) {
  /** Like `Nats.Default`, with some settings given instead of read from `Config` (tests: a prefix per file). */
  static layerWith = (overrides: Partial<NatsSettings>) =>
    Layer.scoped(
      Nats,
      Effect.all({
        url: overrides.url === undefined ? NatsUrl : Effect.succeed(overrides.url),
        prefix: overrides.prefix === undefined ? NatsPrefix : Effect.succeed(overrides.prefix),
        limits: overrides.limits === undefined ? StreamLimits : Effect.succeed(overrides.limits)
      }).pipe(Effect.flatMap(make), Effect.map((service) => new Nats(service)))
    )
}
