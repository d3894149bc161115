import * as Headers from "@effect/platform/Headers"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { Api } from "./Api.ts"

/** A caller's id is kept when it is a plain token; anything else (long, spaces, control characters) is replaced. */
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Every API request has an id: the client's `x-request-id` when sane, else a new UUID. Handlers see it in the
 * request headers (audit rows carry it, src/http/Admin/Http.ts `currentActor`) and a successful response echoes it.
 */
export const RequestIds = HttpApiBuilder.middleware(Api, Effect.succeed((app: HttpApp.Default) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const given = request.headers["x-request-id"]
    const id = given !== undefined && SAFE_ID.test(given) ? given : randomUUID()
    const response = yield* Effect.provideService(
      app,
      HttpServerRequest.HttpServerRequest,
      request.modify({ headers: Headers.set(request.headers, "x-request-id", id) })
    )
    return HttpServerResponse.setHeader(response, "x-request-id", id)
  })))
