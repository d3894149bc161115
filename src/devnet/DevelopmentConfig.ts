/**
 * Development values exist only for the embedded devnet (no BILLING_RPC_CONFIG): they are supplied as a
 * fallback ConfigProvider around the devnet run, so services never carry a default secret, and a production
 * start that still holds one of them is refused before anything starts.
 */
import { ConfigError, ConfigProvider, Effect, Option } from "effect"
import { Config } from "effect"
import { DEV_SIGNER_PRIVATE_KEY, DevAccounts } from "./Deploy.ts"

/** The public development JWT secret: tokens signed with it are accepted by a devnet server only. */
export const DEV_JWT_SECRET = "evm-billing-development-secret-change-me"

/** The public development key for secrets at rest (base64 of 32 bytes): accepted by a devnet server only. */
export const DEV_SECRETS_KEY = "ZXZtLWJpbGxpbmctZGV2ZWxvcG1lbnQta2V5LTMyYiE="

/** What the embedded devnet runs with when the environment does not say otherwise. */
export const developmentDefaults: Readonly<Record<string, string>> = {
  BILLING_AUTH_JWT_SECRET: DEV_JWT_SECRET,
  BILLING_SIGNER_PRIVATE_KEY: DEV_SIGNER_PRIVATE_KEY,
  BILLING_SECRETS_KEY: DEV_SECRETS_KEY,
  // The devnet's anvil listens on 127.0.0.1; elsewhere loopback endpoints are refused unless allowed.
  BILLING_RPC_ALLOW_LOOPBACK: "true",
  // The devnet's metrics are nobody's secret; anywhere else /v1/metrics needs BILLING_METRICS_TOKEN.
  BILLING_METRICS_PUBLIC: "true"
}

/** Values that are public and so refused outside the devnet, per variable. */
const knownDevelopmentValues: Readonly<Record<string, ReadonlyArray<string>>> = {
  BILLING_AUTH_JWT_SECRET: [DEV_JWT_SECRET],
  BILLING_SIGNER_PRIVATE_KEY: DevAccounts,
  BILLING_SECRETS_KEY: [DEV_SECRETS_KEY]
}

/** A development value stands aside when the environment picks another kind of token verifier. */
const displacedBy: Readonly<Record<string, ReadonlyArray<string>>> = {
  BILLING_AUTH_JWT_SECRET: ["BILLING_AUTH_JWKS_URL", "BILLING_AUTH_PUBLIC_KEY"]
}

/** Runs `effect` with the development values beneath the current configuration (the environment wins). */
export const withDevelopmentDefaults = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.configProviderWith((current) =>
    Effect.flatMap(
      Effect.filter(Object.entries(developmentDefaults), ([name]) =>
        Effect.map(
          Effect.forEach(displacedBy[name] ?? [], (other) => current.load(Config.option(Config.string(other)))),
          (others) => others.every(Option.isNone)
        )).pipe(Effect.orDie),
      (defaults) =>
        Effect.withConfigProvider(effect, current.pipe(ConfigProvider.orElse(() => ConfigProvider.fromMap(new Map(defaults)))))
    )
  )

/** Fails, naming the variable, when a production start is configured with a publicly known development value. */
export const refuseDevelopmentValues = Effect.forEach(Object.entries(knownDevelopmentValues), ([name, known]) =>
  Effect.flatMap(Config.option(Config.string(name)), (value) =>
    Option.isSome(value) && known.some((k) => k.toLowerCase() === value.value.trim().toLowerCase())
      ? Effect.fail(ConfigError.InvalidData([name], `${name} holds a public development value; it is accepted only by the embedded devnet`))
      : Effect.void), { discard: true })
