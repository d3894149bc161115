/**
 * `npm run bench`: each scenario of issue 9 run against the service as its own process (the compiled build when
 * `npm run build` has run) on the machine's PostgreSQL, NATS and an anvil devnet, beside the bare floor for the same
 * work measured in the same run. Prints the tables and appends them, dated, to docs/benchmarks.md.
 *
 *   npm run bench -- [--only=startup,ingest,pipeline,backfill] [--secs=15] [--conns=50] [--payments=3000] [--rate=500] [--steady=100]
 *     [--events=100000] [--no-write]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, LogLevel } from "effect"
import { cpus, loadavg } from "node:os"
import { ingestSection } from "./ingest.ts"
import { appendRun, markdown, type Section } from "./report.ts"
import { backfillSection, pipelineSection, startupSection } from "./sections.ts"

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]
const only = flag("only")?.split(",")
const secs = Number(flag("secs") ?? 15)
const conns = Number(flag("conns") ?? 50)
const payments = Number(flag("payments") ?? 3000)
const rate = Number(flag("rate") ?? 500)
const steady = Number(flag("steady") ?? 100)
const events = Number(flag("events") ?? 100_000)

const sections: ReadonlyArray<readonly [string, Effect.Effect<Section, unknown>]> = [
  ["startup", startupSection],
  ["ingest", ingestSection(conns, secs)],
  ["pipeline", pipelineSection(payments, rate, Math.min(secs, 10), steady)],
  ["backfill", backfillSection(events)]
]

const bench = Effect.gen(function*() {
  const load = loadavg().map((l) => l.toFixed(2)).join(", ")
  const results: Array<Section> = []
  for (const [name, section] of sections) {
    if (only !== undefined && !only.includes(name)) continue
    yield* Effect.sync(() => console.error(`bench: ${name}…`))
    results.push(yield* section)
  }
  const context = `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), Node.js ${process.version}; ` +
    `load average at start ${load}, at end ${loadavg().map((l) => l.toFixed(2)).join(", ")}.`
  if (process.argv.includes("--no-write")) yield* Effect.sync(() => console.log(`${context}\n\n${markdown(results)}`))
  else yield* Effect.flatMap(appendRun(results, context), (text) => Effect.sync(() => console.log(text)))
})

bench.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning), NodeRuntime.runMain)
