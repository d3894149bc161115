import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { TokenVerifier } from "../../services/TokenVerifier.ts"
import { Forbidden, Unauthorized, Unavailable } from "../domain/Errors.ts"
import type { Role } from "../domain/Token.ts"

export interface User {
  readonly id: string
  readonly roles: ReadonlyArray<string>
}

export class CurrentUser extends Context.Tag("billing/CurrentUser")<CurrentUser, User>() {}

const security = { bearer: HttpApiSecurity.bearer }
const failure = Schema.Union(Unauthorized, Forbidden, Unavailable)

/** Any signed-in user. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("billing/Authentication", {
  failure,
  provides: CurrentUser,
  security
}) {}

/** Role `admin`. */
export class AdminOnly extends HttpApiMiddleware.Tag<AdminOnly>()("billing/AdminOnly", {
  failure,
  provides: CurrentUser,
  security
}) {}

/** Role `finance_ops`; admin does not imply it. */
export class FinanceOpsOnly extends HttpApiMiddleware.Tag<FinanceOpsOnly>()("billing/FinanceOpsOnly", {
  failure,
  provides: CurrentUser,
  security
}) {}

const authenticate = (verifier: TokenVerifier, required: Role | undefined) => (token: Redacted.Redacted) =>
  Effect.gen(function*() {
    const raw = Redacted.value(token)
    if (raw === "") return yield* Effect.fail(new Unauthorized({ error: "unauthorized", message: "a bearer token is required" }))
    const claims = yield* verifier.verify(raw).pipe(Effect.catchTags({
      InvalidToken: (e) => Effect.fail(new Unauthorized({ error: "unauthorized", message: e.reason })),
      TokenKeysUnavailable: () => Effect.fail(new Unavailable({ error: "not_ready", message: "token signing keys are unavailable, try again" }))
    }))
    const user: User = { id: claims.sub, roles: claims.roles }
    if (required !== undefined && !user.roles.includes(required)) {
      return yield* Effect.fail(new Forbidden({ error: "forbidden", message: `role ${required} is required` }))
    }
    return user
  })

export const AuthLive = Layer.unwrapEffect(Effect.map(TokenVerifier, (verifier) =>
  Layer.mergeAll(
    Layer.succeed(Authentication, { bearer: authenticate(verifier, undefined) }),
    Layer.succeed(AdminOnly, { bearer: authenticate(verifier, "admin") }),
    Layer.succeed(FinanceOpsOnly, { bearer: authenticate(verifier, "finance_ops") })
  ))).pipe(Layer.provide(TokenVerifier.Default))
