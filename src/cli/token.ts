import { Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Redacted } from "effect"
import { signJwt } from "../domain/Jwt.ts"
import { withDevelopmentDefaults } from "../devnet/DevelopmentConfig.ts"
import { resolveJwtSecret } from "../http/Auth.ts"

const userId = Options.text("user-id").pipe(Options.withDescription("the token's subject"))
const roles = Options.text("roles").pipe(
  Options.withDescription("comma-separated roles: admin, finance_ops"),
  Options.withDefault("")
)
const ttl = Options.integer("ttl").pipe(Options.withDescription("lifetime in seconds"), Options.withDefault(86_400))

const KNOWN_ROLES = new Set(["admin", "finance_ops"])

export const token = Command.make("token", { userId, roles, ttl }, ({ roles, ttl, userId }) =>
  Effect.gen(function*() {
    const list = roles.split(",").map((r) => r.trim()).filter((r) => r !== "")
    const unknown = list.find((r) => !KNOWN_ROLES.has(r))
    if (unknown !== undefined) return yield* Effect.fail(new Error(`unknown role ${unknown}: use admin and/or finance_ops`))
    const secret = yield* resolveJwtSecret
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    yield* Console.log(signJwt({ sub: userId, roles: list, iat: now, exp: now + ttl }, Redacted.value(secret)))
  }).pipe(withDevelopmentDefaults)
).pipe(Command.withDescription("print a bearer token signed with BILLING_AUTH_JWT_SECRET (the devnet's secret when unset)"))

