/**
 * The webhook route served straight off node:http, ahead of the HttpApi router. It is the one route a relayer may
 * drive at thousands of requests a second, and the router, middleware stack and response encoder cost three times
 * the route's own work (profile in docs/benchmarks.md). Same contract as the HttpApi declaration (Webhooks/Api.ts,
 * which still documents it): 202 `{accepted, duplicate}`, or `{error, message}` with 400, 401, 413, 415 or 503.
 */
import { Effect, Exit, Runtime } from "effect"
import { type IncomingMessage, Server, type ServerResponse } from "node:http"
import { MAX_WEBHOOK_BYTES, WebhookIntake } from "../../services/WebhookIntake.ts"
import { withRemoteParent } from "../../services/TraceContext.ts"
import { AccessLogConfig } from "../Config.ts"

export const WEBHOOK_PATH = "/v1/billing/contracts/webhook"

type Handler = (request: IncomingMessage, response: ServerResponse) => void

export interface Answer {
  readonly status: number
  readonly body: object
}

const error = (status: number, code: string, message: string): Answer => ({ status, body: { error: code, message } })
const tooLarge = error(413, "payload_too_large", "webhook body exceeds 64 KiB")

const unsupportedMedia = error(415, "unsupported_media_type", "a webhook body must be sent as application/json")

/** `application/json`, with parameters (charset) allowed; anything else is refused before the body is read. */
const isJson = (contentType: string | undefined) =>
  contentType !== undefined && contentType.split(";", 1)[0]!.trim().toLowerCase() === "application/json"

const isWebhook = (request: IncomingMessage) =>
  request.method === "POST" && (request.url === WEBHOOK_PATH || request.url?.startsWith(`${WEBHOOK_PATH}?`) === true)

/** The body, or undefined once it passes the limit (the rest is not read). */
const readBody = (request: IncomingMessage) =>
  Effect.async<Uint8Array | undefined>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_WEBHOOK_BYTES) {
        request.off("data", onData)
        request.pause()
        resume(Effect.succeed(undefined))
      } else chunks.push(chunk)
    }
    request.on("data", onData)
    request.once("end", () => resume(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))))
    request.once("error", () => resume(Effect.succeed(undefined)))
  })

const header = (request: IncomingMessage, name: string) => {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

const write = (response: ServerResponse, answer: Answer, close: boolean) => {
  const json = JSON.stringify(answer.body)
  response.writeHead(answer.status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(json),
    ...(close ? { connection: "close" } : {})
  })
  response.end(json)
}

/** Verifies and queues one webhook request; every outcome is an answer (status and JSON body), never a failure. */
export const webhookAnswer = Effect.map(WebhookIntake, (intake) =>
  (request: IncomingMessage): Effect.Effect<Answer> =>
    Effect.gen(function*() {
      if (!isJson(header(request, "content-type"))) return unsupportedMedia
      const declared = header(request, "content-length")
      if (declared !== undefined && !(/^\d+$/.test(declared) && Number(declared) <= MAX_WEBHOOK_BYTES)) return tooLarge
      const body = yield* readBody(request)
      if (body === undefined) return tooLarge
      return yield* intake.accept({
        id: header(request, "webhook-id"),
        timestamp: header(request, "webhook-timestamp"),
        signature: header(request, "webhook-signature")
      }, body).pipe(
        Effect.map((accepted): Answer => ({ status: 202, body: accepted })),
        Effect.catchTags({
          WebhookRejected: ({ message, reason }) =>
            Effect.succeed(error(reason === "unauthorized" ? 401 : reason === "payload_too_large" ? 413 : 400, reason, message)),
          NatsError: (e) =>
            Effect.as(
              Effect.logError("webhook could not be queued", e),
              error(503, "queue_unavailable", "the event queue is unavailable, retry later")
            )
        })
      )
    }).pipe(
      // A defect is logged by name and message only (a request may carry secrets) and answered without detail.
      Effect.catchAllDefect((defect) =>
        Effect.as(
          Effect.logError("request failed", defect instanceof Error ? `${defect.name}: ${defect.message}` : "defect"),
          error(500, "internal_error", "internal error")
        )
      ),
      Effect.withSpan(`http.server POST`, {
        kind: "server",
        captureStackTrace: false,
        attributes: { "http.request.method": "POST", "url.path": WEBHOOK_PATH }
      }),
      withRemoteParent(header(request, "traceparent"))
    ))

/** The request listener for the webhook route, run in the layer's runtime (its services, logger and tracer). */
export const webhookHandler = Effect.gen(function*() {
  const answer = yield* webhookAnswer
  const accessLog = yield* AccessLogConfig
  const runFork = Runtime.runFork(yield* Effect.runtime<never>())

  return (request: IncomingMessage, response: ServerResponse) => {
    const fiber = runFork(answer(request))
    fiber.addObserver((exit) => {
      // Interrupted (shutdown): the connection is closed without an answer, as the HttpApi server does.
      if (Exit.isFailure(exit)) return void response.destroy()
      const result = exit.value
      write(response, result, !request.readableEnded)
      if (accessLog) {
        runFork(Effect.logInfo("Sent HTTP response").pipe(
          Effect.annotateLogs({ "http.method": "POST", "http.url": WEBHOOK_PATH, "http.status": result.status })
        ))
      }
    })
  }
})

/**
 * A node:http server whose webhook requests go to `fast`; every other request reaches the listener the platform
 * attaches (the HttpApi router). Overriding `emit` is the one place node lets a listener claim a request.
 */
export const serverWithWebhookRoute = (fast: Handler, requestTimeoutMs: number) => {
  class WebhookFirst extends Server {
    override emit(event: string, ...args: Array<unknown>): boolean {
      if (event === "request") {
        const [request, response] = args as [IncomingMessage, ServerResponse]
        if (isWebhook(request)) {
          fast(request, response)
          return true
        }
      }
      return super.emit(event, ...args)
    }
  }
  // node answers 408 and closes a request not received in full within requestTimeout (its default, 5 minutes, lets a
  // trickled body hold a socket that long); it looks at open requests every connectionsCheckingInterval.
  return new WebhookFirst({
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs,
    connectionsCheckingInterval: Math.min(Math.max(250, Math.floor(requestTimeoutMs / 4)), 5000)
  })
}
