import { Layer } from "effect"
import { PgLive } from "../services/Database.ts"
import { Nats } from "../services/Nats.ts"
import { Rpc } from "../services/Rpc.ts"
import { ChainListenerLive } from "../streams/ChainListener.ts"
import { JanitorLive } from "../streams/Janitor.ts"
import { CryptoConfigWatcherLive } from "../streams/CryptoConfigWatcher.ts"
import { OutboxRelayLive } from "../streams/OutboxRelay.ts"
import { PaymentProcessorLive } from "../streams/PaymentProcessor.ts"
import { SchedulerLive } from "../streams/Scheduler.ts"
import { serveApi } from "./http/Server.ts"

/** Shared infrastructure: one pool, one NATS connection, one RPC service for the process. */
export const InfraLive = Layer.mergeAll(Nats.Default, Rpc.Default).pipe(Layer.provideMerge(PgLive))

/** HTTP API, the consumers, the chain listeners (leader only) and the config watcher in one process. */
export const appLayer = (port: number) =>
  Layer.mergeAll(serveApi(port), PaymentProcessorLive, CryptoConfigWatcherLive, ChainListenerLive, JanitorLive, SchedulerLive, OutboxRelayLive).pipe(
    Layer.provide(InfraLive)
  )
