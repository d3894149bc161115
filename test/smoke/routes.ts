/**
 * Every route of the HttpApi definition with who may call it, read from the definition itself (its security
 * middleware), so a route added to `Api` is in the allow/deny matrix without touching the suite.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import { type Either, type ParseResult, Schema } from "effect"
import { Api } from "../../src/http/Api.ts"
import { AdminOnly, Authentication, FinanceOpsOnly } from "../../src/http/Auth.ts"
import type { Role } from "./client.ts"

/** Who a route is for: anyone, any signed-in user, one role, or a relayer with a webhook signature. */
export type Access = "public" | "user" | "admin" | "finance_ops" | "signed"

export interface Route {
  readonly group: string
  readonly name: string
  readonly method: string
  /** As declared, e.g. `/v1/billing/admin/plans/:slug`. */
  readonly path: string
  /** With sample values for path parameters (names nobody uses, so nothing real is read or changed). */
  readonly url: string
  readonly access: Access
  readonly hasPathParams: boolean
  /** Decodes a 2xx answer with the endpoint's success schema. */
  readonly decodeSuccess: (body: unknown) => Either.Either<unknown, ParseResult.ParseError>
}

/** Groups whose routes are authenticated by a request signature instead of a bearer token. */
const SIGNED_GROUPS = new Set(["webhooks"])

const SAMPLES: Record<string, string> = { slug: "smoke-missing", user_id: "smoke-nobody", id: "0", name: "webhooks" }

const accessOf = (group: string, middleware: ReadonlySet<unknown>): Access => {
  if (middleware.has(FinanceOpsOnly)) return "finance_ops"
  if (middleware.has(AdminOnly)) return "admin"
  if (middleware.has(Authentication)) return "user"
  return SIGNED_GROUPS.has(group) ? "signed" : "public"
}

const collect = (): ReadonlyArray<Route> => {
  const routes: Array<Route> = []
  HttpApi.reflect(Api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, group, middleware }) => {
      const url = endpoint.path.replace(/:([A-Za-z_]+)/g, (_, name: string) => SAMPLES[name] ?? "smoke")
      routes.push({
        group: group.identifier,
        name: endpoint.name,
        method: endpoint.method,
        path: endpoint.path,
        url,
        access: accessOf(group.identifier, middleware),
        hasPathParams: url !== endpoint.path,
        decodeSuccess: Schema.decodeUnknownEither(endpoint.successSchema)
      })
    }
  })
  return routes
}

export const routes = collect()

export type Expected = "ok" | "allowed" | "unauthorized" | "forbidden"

/**
 * What `role` must get: `ok` is 2xx; `allowed` is any answer but 401/403 (and never 5xx): the call passed
 * authorization and was judged on its input; `unauthorized` is 401; `forbidden` is 403.
 */
export const expected = (route: Route, role: Role): Expected => {
  const readOnly = route.method === "GET" && !route.hasPathParams
  const pass: Expected = readOnly ? "ok" : "allowed"
  switch (route.access) {
    case "public":
      return pass
    case "signed":
      return "unauthorized"
    case "user":
      return role === "anonymous" ? "unauthorized" : pass
    case "admin":
    case "finance_ops":
      return role === "anonymous" ? "unauthorized" : role === route.access ? pass : "forbidden"
  }
}

/**
 * A body no payload schema accepts (an array where an object is expected): a call that passes authorization is
 * rejected with 400 before it can change anything.
 */
export const HARMLESS_BODY: ReadonlyArray<never> = []
