/**
 * Every request body is bounded (invariant 14): a declared Content-Length over the limit is refused before a byte
 * is read, and a chunked body is cut off once it passes the limit; both answer 413. The webhook route keeps its
 * own tighter 64 KiB (an inner `withMaxBodySize`).
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Config, Effect, Option } from "effect"
import { PayloadTooLarge } from "../domain/Errors.ts"
import { Api } from "./Api.ts"

const KiB = 1024
const MiB = 1024 * KiB

export const MaxBody = Config.integer("BILLING_HTTP_MAX_BODY").pipe(
  Config.withDescription("bytes a request body may have (the webhook route keeps 64 KiB)"),
  Config.withDefault(256 * KiB),
  Config.validate({
    message: "BILLING_HTTP_MAX_BODY must be between 65536 (64 KiB) and 16777216 (16 MiB)",
    validation: (n) => n >= 64 * KiB && n <= 16 * MiB
  })
)

export const tooLarge = (max: number) =>
  new PayloadTooLarge({ error: "payload_too_large", message: `the request body exceeds ${max} bytes` })

/** The platform's read failure when a body passes `MaxBodySize` (a RequestError whose cause says so). */
export const isBodyTooLarge = (e: unknown): boolean =>
  typeof e === "object" && e !== null && "_tag" in e && e._tag === "RequestError" && "cause" in e &&
  e.cause instanceof Error && e.cause.message === "maxBytes exceeded"

export const BodyLimit = HttpApiBuilder.middleware(
  Api,
  Effect.map(MaxBody, (max) => (app) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const declared = request.headers["content-length"]
      if (declared !== undefined && !(/^\d+$/.test(declared) && Number(declared) <= max)) {
        return yield* Effect.fail(tooLarge(max))
      }
      return yield* app.pipe(HttpIncomingMessage.withMaxBodySize(Option.some(max)))
    }))
)
