import { Command, Options } from "@effect/cli"
import { Config, Console, Duration, Effect } from "effect"
import { JwtSecret } from "../../services/TokenVerifierConfig.ts"
import { isServiceActor } from "../domain/Actor.ts"
import { withDevelopmentDefaults } from "../devnet/DevelopmentConfig.ts"
import { isRole, signToken } from "../domain/Token.ts"

const userId = Options.text("user-id").pipe(Options.withDescription("the token's subject"))
const roles = Options.text("roles").pipe(
  Options.withDescription("comma-separated roles: admin, finance_ops"),
  Options.withDefault("")
)
const ttl = Options.integer("ttl").pipe(Options.withDescription("lifetime in seconds"), Options.withDefault(86_400))

/** Issuer and audience as the server checks them, when configured. */
export const TokenClaimsConfig = Config.all({
  issuer: Config.option(Config.string("BILLING_AUTH_ISSUER")),
  audience: Config.option(Config.string("BILLING_AUTH_AUDIENCE"))
})

export const token = Command.make("token", { userId, roles, ttl }, ({ roles, ttl, userId }) =>
  Effect.gen(function*() {
    const list = roles.split(",").map((r) => r.trim()).filter((r) => r !== "")
    const unknown = list.find((r) => !isRole(r))
    if (unknown !== undefined) return yield* Effect.fail(new Error(`unknown role ${unknown}: use admin and/or finance_ops`))
    if (isServiceActor(userId)) return yield* Effect.fail(new Error("--user-id must not start with system: (reserved for the service's own actors)"))
    if (ttl <= 0) return yield* Effect.fail(new Error("--ttl must be positive: a token always expires"))
    const secret = yield* JwtSecret
    const claims = yield* TokenClaimsConfig
    yield* Console.log(yield* signToken({ sub: userId, roles: list.filter(isRole), ttl: Duration.seconds(ttl), ...claims }, secret))
  }).pipe(withDevelopmentDefaults)
).pipe(Command.withDescription("print an HS256 bearer token signed with BILLING_AUTH_JWT_SECRET (the devnet's secret when unset)"))
