/**
 * Which key verifies bearer tokens: exactly one of a shared HS256 secret, an identity provider's JWKS URL or a PEM
 * public key. Read and checked before anything starts, so a production start without a verifier (or with two, where
 * an operator could not tell which one is in force) is refused with the variables named.
 */
import { Config, ConfigError, Duration, Effect, Option, Redacted } from "effect"
import { createPublicKey } from "node:crypto"

export const SECRET_VAR = "BILLING_AUTH_JWT_SECRET"
export const JWKS_VAR = "BILLING_AUTH_JWKS_URL"
export const PUBLIC_KEY_VAR = "BILLING_AUTH_PUBLIC_KEY"
const VERIFIER_VARS = [SECRET_VAR, JWKS_VAR, PUBLIC_KEY_VAR] as const

/** Asymmetric algorithms an identity provider's key set may use; never HS256 or `none`. */
export const JWKS_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const
export type AsymmetricAlgorithm = typeof JWKS_ALGORITHMS[number]

export type KeySource =
  | { readonly kind: "secret"; readonly secret: Redacted.Redacted }
  | { readonly kind: "jwks"; readonly url: URL; readonly cooldown: Duration.Duration; readonly timeout: Duration.Duration }
  | { readonly kind: "pem"; readonly pem: string; readonly algorithm: AsymmetricAlgorithm }

export interface VerifierSettings {
  readonly keys: KeySource
  readonly issuer: Option.Option<string>
  readonly audience: Option.Option<string>
  readonly leeway: Duration.Duration
}

const invalid = (name: string, message: string) => ConfigError.InvalidData([name], message)

/** The HS256 secret, also what `evm-billing token` signs with. */
export const JwtSecret = Config.redacted(SECRET_VAR).pipe(
  Config.validate({ message: `${SECRET_VAR} must be at least 32 characters`, validation: (s) => Redacted.value(s).length >= 32 })
)

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i

/** https only, except on loopback (a sidecar or a test); no credentials in the URL (fetch refuses them anyway). */
const jwksUrl = (raw: string) => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Effect.fail(invalid(JWKS_VAR, `${JWKS_VAR} is not a URL`))
  }
  if (url.username !== "" || url.password !== "") return Effect.fail(invalid(JWKS_VAR, `${JWKS_VAR} must not carry credentials`))
  if (url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.test(url.hostname))) return Effect.succeed(url)
  return Effect.fail(invalid(JWKS_VAR, `${JWKS_VAR} must be an https URL (http only for a loopback host)`))
}

/** The algorithm follows from the key, never from a token's header. */
const pemAlgorithm = (pem: string): Effect.Effect<AsymmetricAlgorithm, ConfigError.ConfigError> => {
  const refuse = (why: string) => Effect.fail(invalid(PUBLIC_KEY_VAR, `${PUBLIC_KEY_VAR} ${why}`))
  if (!pem.trimStart().startsWith("-----BEGIN PUBLIC KEY-----")) return refuse("must be a PEM public key (-----BEGIN PUBLIC KEY-----)")
  try {
    const key = createPublicKey({ key: pem, format: "pem" })
    const details = key.asymmetricKeyDetails
    switch (key.asymmetricKeyType) {
      case "rsa":
        return (details?.modulusLength ?? 0) >= 2048 ? Effect.succeed("RS256") : refuse("is an RSA key shorter than 2048 bits")
      case "ec":
        return details?.namedCurve === "prime256v1" ? Effect.succeed("ES256") : refuse("is an EC key on a curve other than P-256")
      case "ed25519":
        return Effect.succeed("EdDSA")
      default:
        return refuse("must be an RSA, EC P-256 or Ed25519 key")
    }
  } catch {
    return refuse("is not a readable PEM public key")
  }
}

const MAX_LEEWAY = Duration.minutes(5)
const Leeway = Config.duration("BILLING_AUTH_CLOCK_LEEWAY").pipe(
  Config.withDefault(Duration.seconds(30)),
  Config.validate({ message: "BILLING_AUTH_CLOCK_LEEWAY must be at most 5 minutes", validation: (d) => Duration.lessThanOrEqualTo(d, MAX_LEEWAY) })
)
const JwksCooldown = Config.duration("BILLING_AUTH_JWKS_COOLDOWN").pipe(
  Config.withDefault(Duration.seconds(30)),
  Config.validate({ message: "BILLING_AUTH_JWKS_COOLDOWN must be at most 1 hour", validation: (d) => Duration.lessThanOrEqualTo(d, Duration.hours(1)) })
)
const JwksTimeout = Config.duration("BILLING_AUTH_JWKS_TIMEOUT").pipe(
  Config.withDefault(Duration.seconds(5)),
  Config.validate({
    message: "BILLING_AUTH_JWKS_TIMEOUT must be between 100 milliseconds and 30 seconds",
    validation: (d) => Duration.between(d, { minimum: Duration.millis(100), maximum: Duration.seconds(30) })
  })
)
const nonEmpty = (name: string) =>
  Config.option(Config.string(name).pipe(Config.validate({ message: `${name} must not be empty`, validation: (s) => s.trim() !== "" })))

/** The verifier settings; every problem is a ConfigError naming the variable. */
export const TokenVerifierConfig: Effect.Effect<VerifierSettings, ConfigError.ConfigError> = Effect.gen(function*() {
  const secret = yield* Config.option(Config.string(SECRET_VAR))
  const url = yield* nonEmpty(JWKS_VAR)
  // Operators often write a PEM on one line with literal \n.
  const pem = Option.map(yield* nonEmpty(PUBLIC_KEY_VAR), (p) => p.replace(/\\n/g, "\n"))
  const set = VERIFIER_VARS.filter((_, i) => Option.isSome([secret, url, pem][i]!))
  if (set.length !== 1) {
    const which = `exactly one of ${VERIFIER_VARS.join(", ")} must be set to verify bearer tokens`
    return yield* Effect.fail(
      set.length === 0
        ? ConfigError.MissingData([SECRET_VAR], `${which}; none is`)
        : invalid(set[0]!, `${which}; ${set.join(", ")} are set`)
    )
  }
  const issuer = yield* nonEmpty("BILLING_AUTH_ISSUER")
  const audience = yield* nonEmpty("BILLING_AUTH_AUDIENCE")
  const leeway = yield* Leeway
  const keys: KeySource = Option.isSome(url)
    ? { kind: "jwks", url: yield* jwksUrl(url.value.trim()), cooldown: yield* JwksCooldown, timeout: yield* JwksTimeout }
    : Option.isSome(pem)
    ? { kind: "pem", pem: pem.value, algorithm: yield* pemAlgorithm(pem.value) }
    : { kind: "secret", secret: yield* JwtSecret }
  // An identity provider's keys sign tokens for every application it serves: only the audience tells ours apart.
  if (keys.kind === "jwks" && Option.isNone(audience)) {
    return yield* Effect.fail(ConfigError.MissingData(["BILLING_AUTH_AUDIENCE"], `BILLING_AUTH_AUDIENCE is required with ${JWKS_VAR}`))
  }
  return { keys, issuer, audience, leeway }
})
