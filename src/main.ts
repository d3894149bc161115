import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, ConfigError, Console, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { deadLetters } from "./cli/deadLetters.ts"
import { devnet } from "./cli/devnet.ts"
import { e2e } from "./cli/e2e.ts"
import { migrate } from "./cli/migrate.ts"
import { reconcile } from "./cli/reconcile.ts"
import { retryPolicy } from "./cli/retryPolicy.ts"
import { secrets } from "./cli/secrets.ts"
import { serve } from "./cli/serve.ts"
import { token } from "./cli/token.ts"
import { InvalidDatabaseUrl } from "../services/Database.ts"
import { InvalidArguments } from "./cli/operator.ts"
import { ConfigProblems, configErrorLines } from "./Preflight.ts"

const root = Command.make("evm-billing").pipe(
  Command.withDescription("billing backend for subscriptions paid on EVM chains"),
  Command.withSubcommands([serve, migrate, token, devnet, reconcile, e2e, secrets, deadLetters, retryPolicy])
)

const cli = Command.run(root, { name: "evm-billing", version: "0.1.0" })

/**
 * Logs go to stderr, so stdout carries only command output (tokens, JSON lines): JSON lines when stderr is not a
 * terminal (a supervisor, a pipe, a log shipper) or BILLING_LOG_FORMAT=json; readable lines, without colours, on a
 * terminal or with BILLING_LOG_FORMAT=text.
 */
const format = process.env["BILLING_LOG_FORMAT"] ?? (process.stderr.isTTY === true ? "text" : "json")
const LoggerLive = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(format === "text" ? Logger.logfmtLogger : Logger.jsonLogger))

/** Help and command output without ANSI colours unless stdout is a terminal (a pipe or a file gets plain text). */
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g
const plain = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? a.replace(ANSI, "") : a))
const withPlainOutput = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  process.stdout.isTTY === true ? effect : Console.consoleWith((console) =>
    Effect.withConsole(effect, {
      ...console,
      log: (...args) => console.log(...plain(args)),
      error: (...args) => console.error(...plain(args)),
      unsafe: {
        ...console.unsafe,
        log: (...args) => console.unsafe.log(...plain(args)),
        error: (...args) => console.unsafe.error(...plain(args))
      }
    }))

/** A configuration problem is the operator's to fix: one line per variable, no stack. */
const configProblems = (cause: Cause.Cause<unknown>): ReadonlyArray<string> | undefined => {
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) return undefined
  const error = failure.value
  if (ConfigError.isConfigError(error)) return configErrorLines(error)
  if (error instanceof ConfigProblems) return error.lines
  if (error instanceof InvalidDatabaseUrl || error instanceof InvalidArguments) return [error.message]
  return undefined
}

withPlainOutput(cli(process.argv)).pipe(
  // everything else is reported by runMain as before (a JSON or text log line with the cause)
  Effect.catchAllCause((cause) => {
    const lines = configProblems(cause)
    if (lines === undefined) return Effect.failCause(cause)
    return Effect.sync(() => {
      process.stderr.write(`evm-billing: ${lines.length === 1 ? lines[0] : `configuration error:\n${lines.map((l) => `  ${l}`).join("\n")}`}\n`)
      // the command has ended (its scopes are closed): nothing is left to finalize
      process.exit(2)
    })
  }),
  Effect.provide(Layer.mergeAll(NodeContext.layer, LoggerLive)),
  Logger.withMinimumLogLevel(LogLevel.Info),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
