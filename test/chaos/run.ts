/**
 * `npm run chaos`: the fault suite of issue 9. One scenario per fault (service SIGKILLs, NATS kills, PostgreSQL
 * restarts, primary RPC outages, reorgs) while payments stream in, against a PostgreSQL cluster, nats-server and
 * anvil the suite starts itself; then the hostile webhooks flood. After each, the invariants. One line per scenario
 * on stdout (with its violations under it); progress on stderr; exit 1 if any fails.
 *
 *   npm run chaos -- [--short] [--seed=N] [--only=kills,nats,postgres,rpc,reorgs,hostile] [--tsx]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Logger, LogLevel } from "effect"
import { deploy } from "./Deployment.ts"
import { natsKills, postgresRestarts, reorgs, resendDropped, rpcOutages, serviceKills } from "./Faults.ts"
import { hostileWebhooks } from "./hostile.ts"
import { passed, type ScenarioResult, scenarioLine } from "./Scenario.ts"
import { startStack } from "./Stack.ts"
import { runScenario, type ScenarioSpec } from "./Suite.ts"

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]
const short = process.argv.includes("--short")
const seed = Number(flag("seed") ?? Date.now() % 1_000_000)
const only = flag("only")?.split(",")
const wanted = (key: string) => only === undefined || only.includes(key)

const n = (full: number, brief: number) => (short ? brief : full)

const scenarios: ReadonlyArray<ScenarioSpec> = [
  { key: "kills", name: "service SIGKILL", inject: serviceKills(n(20, 5)) },
  { key: "nats", name: "NATS killed", inject: natsKills(n(4, 2)) },
  { key: "postgres", name: "PostgreSQL restarted", inject: postgresRestarts(n(4, 2)) },
  { key: "rpc", name: "primary RPC down", inject: rpcOutages(n(6, 3)) },
  { key: "reorgs", name: "reorgs", inject: reorgs(n(12, 4)), after: resendDropped }
]

const say = (line: string) => Effect.sync(() => console.error(line))

const report = (result: ScenarioResult) =>
  Effect.sync(() => {
    console.log(scenarioLine(result))
    for (const v of result.violations ?? []) console.log(`  VIOLATION ${v}`)
  })

const faultScenarios = Effect.gen(function*() {
  const chosen = scenarios.filter((s) => wanted(s.key))
  if (chosen.length === 0) return []
  const stack = yield* startStack(process.argv.includes("--tsx") ? "tsx" : "auto")
  const deployment = yield* deploy(stack, "chaos")
  yield* say(`chaos: service runs as ${stack.runner}; its log is ${deployment.service.log}`)
  const options = { seed, rate: n(12, 6), settleBound: Duration.seconds(n(120, 60)) }
  const results: Array<ScenarioResult> = []
  for (const spec of chosen) {
    const result = yield* runScenario(stack, deployment, spec, options, scenarios.indexOf(spec))
    yield* report(result)
    results.push(result)
  }
  return results
}).pipe(Effect.scoped)

/** Item 6 brings its own service, database and devnet (test/support/app.ts) and is run as its author wrote it. */
const hostile = Effect.gen(function*() {
  const total = n(100_000, 5_000)
  const started = performance.now()
  const result = yield* Effect.promise(() => hostileWebhooks({ total, seed, onProgress: (line) => console.error(`  [hostile] ${line}`) }))
  yield* say(`  hostile webhooks: ${total} requests in ${result.flood.seconds.toFixed(1)} s, ${Math.round((performance.now() - started) / 1000)} s in all`)
  yield* report(result)
  return result
})

const suite = Effect.gen(function*() {
  const started = performance.now()
  yield* say(`chaos: seed ${seed} (replay with --seed=${seed})${short ? ", short run" : ""}`)
  const results = [...(yield* faultScenarios), ...(wanted("hostile") ? [yield* hostile] : [])]
  const failed = results.filter((r) => !passed(r)).length
  yield* say(`chaos: ${results.length} scenarios, ${failed} failed, ${Math.round((performance.now() - started) / 1000)} s (seed ${seed})`)
  yield* Effect.sync(() => (process.exitCode = failed > 0 ? 1 : 0))
})

// Exits once everything it started is stopped, whatever handle a client library still holds.
NodeRuntime.runMain(suite.pipe(Logger.withMinimumLogLevel(LogLevel.Warning)), {
  teardown: (exit, onExit) => {
    const code = exit._tag === "Success" ? Number(process.exitCode ?? 0) : 2
    onExit(code)
    process.exit(code)
  }
})
