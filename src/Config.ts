import { Config, Duration, Schema } from "effect"
import { durationBetween } from "../services/Settings.ts"

/** A JSON-valued environment variable decoded with a Schema; errors name the variable. */
export const jsonConfig = <A, I>(name: string, schema: Schema.Schema<A, I>) =>
  Schema.Config(name, Schema.parseJson(schema))

export const PortConfig = Config.port("PORT").pipe(Config.withDefault(8000))

/** What one process runs: the HTTP API, the workers (consumers, outbox relay, leader-only fibers), or both. */
export const Role = Schema.Literal("api", "workers")
export type Role = typeof Role.Type

export const RolesConfig = Config.array(Schema.Config("BILLING_ROLES", Role)).pipe(
  Config.withDescription("comma-separated roles of this process: api, workers (default both)"),
  Config.withDefault<ReadonlyArray<Role>>(["api", "workers"]),
  Config.validate({ message: "BILLING_ROLES must name at least one of: api, workers", validation: (roles) => roles.length > 0 })
)

/** One log line per HTTP response (method, url, status) when set; off by default, it costs a write per request. */
export const AccessLogConfig = Config.boolean("BILLING_HTTP_ACCESS_LOG").pipe(Config.withDefault(false))

/** How long a client may take to send a whole request (headers and body): a stalled or trickled body holds a socket no longer. */
export const RequestTimeoutConfig = durationBetween("BILLING_HTTP_REQUEST_TIMEOUT", Duration.seconds(30), Duration.seconds(1), Duration.minutes(10))
