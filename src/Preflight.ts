/**
 * Every setting `serve` reads, checked together before anything starts (no database created, no devnet spawned), and
 * configuration errors reported as one readable line per variable: no stack, no schema internals, no value echoed.
 */
import { Config, ConfigError, Data, Effect, Redacted } from "effect"
import { ChainHeadsConfig } from "../services/ChainHeads.ts"
import { ConfigReloadEvery } from "../services/CryptoConfig.ts"
import { DatabaseUrl, splitDatabaseUrl } from "../services/Database.ts"
import { EndpointPolicyConfig } from "../services/EndpointGuard.ts"
import { HealthConfig } from "../services/Health.ts"
import { NatsSettings } from "../services/Nats.ts"
import { SignerKey } from "../services/QuoteSigner.ts"
import { RetryPolicyDefaults } from "../services/RetryPolicies.ts"
import { RpcRetryConfig } from "../services/Rpc.ts"
import { PreviousSecretsKeys, SecretsKey } from "../services/SecretsKeyring.ts"
import { OtlpEndpoint } from "../services/Tracing.ts"
import { TokenVerifierConfig } from "../services/TokenVerifierConfig.ts"
import { ListenerConfig } from "../streams/ChainListener.ts"
import { DeadLetterGaugeInterval } from "../streams/DeadLetterGauge.ts"
import { JanitorConfig } from "../streams/Janitor.ts"
import { OutboxRelayConfig } from "../streams/OutboxRelay.ts"
import { ProcessorConfig } from "../streams/PaymentProcessor.ts"
import { SchedulerConfig } from "../streams/Scheduler.ts"
import { GatewaysEnv, RpcConfigEnv } from "./Bootstrap.ts"
import { AccessLogConfig, PortConfig, RequestTimeoutConfig, RolesConfig } from "./Config.ts"
import { MaxBody } from "./http/BodyLimit.ts"
import { MetricsAccessConfig } from "./http/MetricsAccess.ts"
import { CheckoutTtl } from "../services/Checkout.ts"

/** The configuration could not be used; each line names a variable and what is wrong with it. */
export class ConfigProblems extends Data.TaggedError("ConfigProblems")<{ readonly lines: ReadonlyArray<string> }> {
  override get message() {
    return `configuration error:\n${this.lines.map((l) => `  ${l}`).join("\n")}`
  }
}

const clean = (line: string) =>
  line.replace(/,?\s*(actual|but received)\b[\s\S]*$/i, "")
    .replace(/Struct \(Encoded side\)/g, "an object")
    .replace(/\s*\((Encoded|Type) side\)/g, "")
    .trim()

/** A Schema failure as where (its path inside the value) and its last word, without the tree or the offending value. */
const readable = (message: string): string => {
  const lines = message.split("\n").map((line) => line.replace(/^[\s│└├─]+/, "").trim()).filter((line) => line !== "")
  // a union of literals fails once per member: "Expected "api"", "Expected "workers"" read as one choice
  const members = lines.flatMap((line) => /^Expected ("[^"]*")/.exec(line)?.[1] ?? [])
  const last = members.length > 1 ? `Expected one of ${members.join(", ")}` : clean(lines[lines.length - 1] ?? message)
  const at = lines.flatMap((line) => {
    const key = /^\[(.+)\]$/.exec(line)
    return key === null ? [] : [key[1]!.replace(/"/g, "")]
  })
  return at.length > 0 ? `at ${at.join(".")}: ${last}` : last
}

const MISSING = ": is required and not set"

/** One line per variable of a ConfigError (an `And` or `Or` of several gives several). */
export const configErrorLines = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const lines = ConfigError.reduceWithContext(error, undefined, {
    andCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
    orCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
    invalidDataCase: (_, path, message) => [path.length === 0 ? readable(message) : `${path.join("_")}: ${readable(message)}`],
    // Effect's own text ("Expected X to exist in ...") says less than ours; a service's own message says more
    missingDataCase: (_, path, message) =>
      [/^Expected .* to exist\b|^<redacted>$|^$/.test(message.trim()) ? `${path.join("_")}${MISSING}` : `${path.join("_")}: ${message}`],
    sourceUnavailableCase: (_, path, message) => [`${path.join("_")}: could not be read (${message})`],
    unsupportedCase: (_, path, message) => [`${path.join("_")}: ${readable(message)}`]
  })
  // a variable with a default reports its bad value and "missing" (the default's side): the bad value is the news
  const named = new Set(lines.filter((l) => !l.endsWith(MISSING)).map((l) => l.slice(0, l.indexOf(":"))))
  return [...new Set(lines.filter((l) => !(l.endsWith(MISSING) && named.has(l.slice(0, l.indexOf(":"))))))]
}

/** Everything `serve` reads, together (Config.all reports every failure, not the first). */
const ServeConfig = Config.all([
  PortConfig, RolesConfig, AccessLogConfig, RequestTimeoutConfig, MaxBody, MetricsAccessConfig,
  NatsSettings, RpcConfigEnv, GatewaysEnv, RpcRetryConfig, RetryPolicyDefaults, EndpointPolicyConfig, HealthConfig,
  ChainHeadsConfig, ConfigReloadEvery, ListenerConfig, ProcessorConfig, OutboxRelayConfig, JanitorConfig, SchedulerConfig,
  DeadLetterGaugeInterval, CheckoutTtl, OtlpEndpoint
])

/** DATABASE_URL must be a postgres:// URL naming a database; its value is never shown (it may hold a password). */
const databaseUrlProblem = (url: Redacted.Redacted): ReadonlyArray<string> => {
  try {
    splitDatabaseUrl(Redacted.value(url))
    if (/^postgres(ql)?:$/.test(new URL(Redacted.value(url)).protocol)) return []
  } catch {
    // named below
  }
  return ["DATABASE_URL: must be a postgres:// URL naming a database (the value is not shown: it may hold a password)"]
}

/** Every setting and secret checked before anything starts; a bad DATABASE_URL is named without echoing it. */
export const preflight = Effect.gen(function*() {
  const problems: Array<string> = []
  const settings = yield* Effect.either(ServeConfig)
  if (settings._tag === "Left") problems.push(...configErrorLines(settings.left))
  const url = yield* Effect.either(DatabaseUrl)
  problems.push(...(url._tag === "Left" ? configErrorLines(url.left) : databaseUrlProblem(url.right)))
  for (const secrets of [TokenVerifierConfig, SignerKey, SecretsKey, PreviousSecretsKeys] as const) {
    const checked = yield* Effect.either(secrets as Effect.Effect<unknown, ConfigError.ConfigError>)
    if (checked._tag === "Left") problems.push(...configErrorLines(checked.left))
  }
  if (problems.length > 0) return yield* new ConfigProblems({ lines: [...new Set(problems)] })
})
