import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Clock, Context, Effect, Either, Layer, Redacted, Schema } from "effect"
import { JwtSecret } from "../Config.ts"
import { Forbidden, Unauthorized } from "../domain/Errors.ts"
import { type Role, verifyJwt } from "../domain/Jwt.ts"

export interface User {
  readonly id: string
  readonly roles: ReadonlyArray<string>
}

export class CurrentUser extends Context.Tag("billing/CurrentUser")<CurrentUser, User>() {}

const security = { bearer: HttpApiSecurity.bearer }
const failure = Schema.Union(Unauthorized, Forbidden)

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

export const resolveJwtSecret = JwtSecret

const authenticate = (secret: Redacted.Redacted, required: Role | undefined) => (token: Redacted.Redacted) =>
  Effect.gen(function*() {
    const raw = Redacted.value(token)
    if (raw === "") return yield* Effect.fail(new Unauthorized({ error: "unauthorized", message: "a bearer token is required" }))
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const claims = verifyJwt(raw, Redacted.value(secret), now)
    if (Either.isLeft(claims)) return yield* Effect.fail(new Unauthorized({ error: "unauthorized", message: claims.left }))
    const user: User = { id: claims.right.sub, roles: claims.right.roles }
    if (required !== undefined && !user.roles.includes(required)) {
      return yield* Effect.fail(new Forbidden({ error: "forbidden", message: `role ${required} is required` }))
    }
    return user
  })

export const AuthLive = Layer.unwrapEffect(Effect.gen(function*() {
  const secret = yield* resolveJwtSecret
  return Layer.mergeAll(
    Layer.succeed(Authentication, { bearer: authenticate(secret, undefined) }),
    Layer.succeed(AdminOnly, { bearer: authenticate(secret, "admin") }),
    Layer.succeed(FinanceOpsOnly, { bearer: authenticate(secret, "finance_ops") })
  )
}))
