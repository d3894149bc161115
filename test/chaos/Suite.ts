/**
 * One scenario end to end against the suite's service: payments streaming while the faults run, then the faults stop,
 * the chain is made final, the service settles, and the invariants are read into a ScenarioResult. The scenarios
 * share one service and database (a start costs seconds): exactly-once is judged on the scenario's own orders, the
 * ledger, subscription, outbox and queue checks on everything so far.
 */
import { PgClient } from "@effect/sql-pg"
import { type Duration, Effect, Redacted } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { keepMining } from "./Chain.ts"
import { evidence, findings, paidOnChain } from "./Checks.ts"
import type { Deployment } from "./Deployment.ts"
import type { FaultContext } from "./Faults.ts"
import { jetStreamProblems, jetStreamState } from "./JetStreamState.ts"
import { seeded } from "./Random.ts"
import type { ScenarioResult } from "./Scenario.ts"
import { settle } from "./Settle.ts"
import { CONFIRMATIONS, type Stack } from "./Stack.ts"
import { startWorkload } from "./Workload.ts"

export interface ScenarioSpec {
  readonly key: string
  readonly name: string
  readonly inject: (ctx: FaultContext) => Effect.Effect<number, unknown>
  /** Work after the faults, before settling (the reorg scenario sends dropped mints again). */
  readonly after?: (ctx: FaultContext) => Effect.Effect<unknown, unknown>
}

export interface SuiteOptions {
  readonly seed: number
  readonly rate: number
  readonly settleBound: Duration.DurationInput
}

const note = (line: string) => Effect.sync(() => console.error(`  ${line}`))
const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? 0 : Math.round(xs.reduce((a, b) => a + b, 0) / xs.length))

export const runScenario = (stack: Stack, deployment: Deployment, spec: ScenarioSpec, options: SuiteOptions, index: number) =>
  Effect.gen(function*() {
    const started = performance.now()
    const startsBefore = (yield* deployment.service.starts).length
    yield* keepMining(stack.chain, "1 second")
    const workload = yield* startWorkload(stack, deployment, { users: spec.key, seed: options.seed + index, rate: options.rate })
    yield* workload.begin(10)
    const ctx: FaultContext = { stack, deployment, workload, random: seeded(options.seed * 31 + index) }
    const faults = yield* spec.inject(ctx).pipe(Effect.either)
    const injected = performance.now()
    yield* workload.finish
    if (spec.after) yield* spec.after(ctx).pipe(Effect.either)
    // Final from here: nothing left in the mempool, deep enough that every remaining payment can confirm.
    yield* stack.chain.drainMempool.pipe(Effect.orDie)
    yield* stack.chain.mine(CONFIRMATIONS + 3).pipe(Effect.orDie)
    const orders = yield* workload.orders
    const { paid, stateDisagrees } = yield* paidOnChain(stack.chain, orders)
    if (stateDisagrees.length > 0) {
      yield* note(`${spec.name}: anvil's contract state disagrees with its blocks on ${stateDisagrees.length} orders (judged by the blocks): ${
        stateDisagrees.slice(0, 3).map((o) => o.hash).join(", ")
      }`)
    }
    const holes = yield* stack.chain.holes.pipe(Effect.orDie)
    const db = PgClient.layer({ url: Redacted.make(deployment.url), maxConnections: 2 })
    const settledIn = yield* settle(orders, paid, stack.nats.url, deployment.prefix, options.settleBound).pipe(Effect.provide(db))
    const found = yield* findings(orders, paid).pipe(Effect.provide(db))
    const suspects = yield* evidence(stack.chain, orders, found.suspects).pipe(Effect.provide(db))
    if (suspects.length > 0) {
      const file = join(stack.logs, `${spec.key}-evidence.json`)
      writeFileSync(file, JSON.stringify({ head: String(yield* stack.chain.head.pipe(Effect.orDie)), suspects }, null, 2))
      yield* note(`${spec.name}: evidence on ${suspects.length} suspect orders in ${file}`)
    }
    const js = yield* jetStreamState(stack.nats.url, deployment.prefix)
    const workloadProblems = yield* workload.problems
    const violations = [
      ...(holes.length > 0 ? [`devnet fault: anvil has no block at ${holes.slice(0, 5).join(", ")} below its head; no client can confirm what lies above`] : []),
      ...(faults._tag === "Left" ? [`fault injection failed: ${String(faults.left)}`] : []),
      ...found.violations,
      ...jetStreamProblems(js),
      ...(workloadProblems.length > 0 ? [`${workloadProblems.length} payments failed in the workload (first: ${workloadProblems[0]})`] : [])
    ]
    const starts = (yield* deployment.service.starts).slice(startsBefore)
    const undelivered = yield* workload.undelivered
    yield* note(`${spec.name}: ${orders.length} orders, ${paid.length} paid on chain, ${undelivered} webhooks given up by the relayer; faults over ${Math.round((injected - started) / 1000)} s` +
      (starts.length > 0 ? ` (${starts.length} service starts, ${mean(starts)} ms to healthy on average)` : "") +
      `; settled in ${settledIn} s, ${Math.round((performance.now() - started) / 1000)} s in all; ${js.deadLetters} dead letters so far` +
      (js.deadLetters > 0 ? ` (${Object.entries(js.reasons).map(([r, n]) => `${n}× ${r}`).join("; ")})` : ""))
    return {
      name: spec.name,
      payments: paid.length,
      faults: faults._tag === "Right" ? faults.right : 0,
      lost: found.lost,
      duplicated: found.duplicated,
      balanced: found.balanced,
      violations
    } satisfies ScenarioResult
  }).pipe(Effect.scoped)
