import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { deadLetters } from "./cli/deadLetters.ts"
import { devnet } from "./cli/devnet.ts"
import { e2e } from "./cli/e2e.ts"
import { migrate } from "./cli/migrate.ts"
import { reconcile } from "./cli/reconcile.ts"
import { retryPolicy } from "./cli/retryPolicy.ts"
import { secrets } from "./cli/secrets.ts"
import { serve } from "./cli/serve.ts"
import { token } from "./cli/token.ts"

const root = Command.make("evm-billing").pipe(
  Command.withDescription("billing backend for subscriptions paid on EVM chains"),
  Command.withSubcommands([serve, migrate, token, devnet, reconcile, e2e, secrets, deadLetters, retryPolicy])
)

const cli = Command.run(root, { name: "evm-billing", version: "0.1.0" })

// Logs are JSON on stderr, so stdout carries only command output (tokens, JSON lines).
const LoggerLive = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.jsonLogger))

cli(process.argv).pipe(
  Effect.provide(Layer.mergeAll(NodeContext.layer, LoggerLive)),
  Logger.withMinimumLogLevel(LogLevel.Info),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
