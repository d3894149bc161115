import { Layer } from "effect"
import type { Role } from "./Config.ts"
import { PgLive } from "../services/Database.ts"
import { Health } from "../services/Health.ts"
import { Nats } from "../services/Nats.ts"
import { RetryPolicyState } from "../services/RetryPolicies.ts"
import { Rpc } from "../services/Rpc.ts"
import { TracingLive } from "../services/Tracing.ts"
import { ChainListenerLive } from "../streams/ChainListener.ts"
import { JanitorLive } from "../streams/Janitor.ts"
import { CryptoConfigWatcherLive } from "../streams/CryptoConfigWatcher.ts"
import { DeadLetterGaugeLive } from "../streams/DeadLetterGauge.ts"
import { RetryPolicyWatcherLive } from "../streams/RetryPolicyWatcher.ts"
import { OutboxRelayLive } from "../streams/OutboxRelay.ts"
import { PaymentProcessorLive } from "../streams/PaymentProcessor.ts"
import { SchedulerLive } from "../streams/Scheduler.ts"
import { serveApi } from "./http/Server.ts"

/**
 * Shared infrastructure: one pool, one NATS connection, one RPC service for the process, and the health snapshot
 * (its first probes run here, before the HTTP server listens: a request must never wait on a half-built API).
 */
export const InfraLive = Health.Default.pipe(
  Layer.provideMerge(Layer.mergeAll(Nats.Default, Rpc.Default)),
  // one set of live retry policies per process: Rpc, the consumers, the outbox relay and the watcher share it
  Layer.provideMerge(Layer.merge(PgLive, RetryPolicyState.Default))
)

const WorkersLive = Layer.mergeAll(PaymentProcessorLive, ChainListenerLive, JanitorLive, SchedulerLive, OutboxRelayLive)

/**
 * The HTTP API and/or the workers (consumers, outbox relay and the leader-only fibers: chain listeners, janitor,
 * scheduler), with the config watcher in every process; traced over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
export const appLayer = (port: number, roles: ReadonlyArray<Role> = ["api", "workers"]) =>
  Layer.mergeAll(
    CryptoConfigWatcherLive,
    DeadLetterGaugeLive,
    RetryPolicyWatcherLive,
    roles.includes("api") ? serveApi(port) : Layer.empty,
    roles.includes("workers") ? WorkersLive : Layer.empty
  ).pipe(
    Layer.provide(InfraLive),
    Layer.provide(TracingLive)
  )
