/**
 * `npm run chaos`: the fault suite of issue 9. One scenario per fault (service SIGKILLs, NATS kills, PostgreSQL
 * restarts, primary RPC outages, reorgs) while payments stream in, against a PostgreSQL cluster, nats-server and
 * anvil the suite starts itself; after each, the invariants. One line per scenario; exit 1 if any fails.
 *
 *   npm run chaos -- [--short] [--seed=N] [--only=kills,nats,...]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Logger, LogLevel } from "effect"
import { natsKills, postgresRestarts, reorgs, resendDropped, rpcOutages, serviceKills } from "./Faults.ts"
import { passed, scenarioLine } from "./Scenario.ts"
import { startStack } from "./Stack.ts"
import { runScenario, type ScenarioSpec } from "./Suite.ts"

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]
const short = process.argv.includes("--short")
const seed = Number(flag("seed") ?? Date.now() % 1_000_000)
const only = flag("only")?.split(",")

const n = (full: number, brief: number) => (short ? brief : full)

const scenarios: ReadonlyArray<readonly [string, ScenarioSpec]> = [
  ["kills", { name: "service SIGKILL", inject: serviceKills(n(20, 5)) }],
  ["nats", { name: "NATS killed", inject: natsKills(n(4, 2)) }],
  ["postgres", { name: "PostgreSQL restarted", inject: postgresRestarts(n(4, 2)) }],
  ["rpc", { name: "primary RPC down", inject: rpcOutages(n(6, 3)) }],
  ["reorgs", { name: "reorgs", inject: reorgs(n(12, 4)), after: resendDropped }]
]

const suite = Effect.gen(function*() {
  const started = performance.now()
  const stack = yield* startStack(process.argv.includes("--tsx") ? "tsx" : "auto")
  yield* Effect.sync(() => console.error(`chaos: seed ${seed} (replay with --seed=${seed})${short ? ", short" : ""}, service ${stack.runner}, logs in ${stack.logs}`))
  const options = { seed, rate: n(12, 6), settleBound: Duration.seconds(n(120, 60)) }
  const results = []
  for (const [index, [key, spec]] of scenarios.entries()) {
    if (only !== undefined && !only.includes(key)) continue
    const result = yield* runScenario(stack, spec, options, index)
    yield* Effect.sync(() => console.log(scenarioLine(result)))
    results.push(result)
  }
  const failed = results.filter((r) => !passed(r)).length
  yield* Effect.sync(() =>
    console.error(`chaos: ${results.length} scenarios, ${failed} failed, ${Math.round((performance.now() - started) / 1000)} s (seed ${seed})`))
  if (failed > 0) yield* Effect.sync(() => (process.exitCode = 1))
})

suite.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning), NodeRuntime.runMain)
