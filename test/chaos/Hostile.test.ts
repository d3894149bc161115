/**
 * Fault suite item 6 in `npm test`: a short hostile flood (see hostile.ts) against the whole service. No 5xx, every
 * bad request its 4xx, every paid order confirmed exactly once, nothing written or queued for a bad one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { appHarness } from "../support/app.ts"
import { HOSTILE_ENV, hostileScenario } from "./hostile.ts"
import { scenarioLine } from "./Scenario.ts"

describe("hostile webhooks (fault suite 6)", () => {
  // Live clock: quotes, webhook timestamps and the chain all use real time.
  it.live("1,500 hostile requests with real payments among them: nothing lost, nothing extra", () =>
    Effect.gen(function*() {
      const r = yield* hostileScenario({ total: 1_500, seed: 9 })
      assert.deepStrictEqual(r.violations, [])
      assert.strictEqual(r.flood.serverErrors, 0)
      assert.strictEqual(r.flood.wrong, 0)
      assert.strictEqual(scenarioLine(r), `hostile webhooks: 10 payments, 1491 faults, lost 0, duplicated 0, ledger balanced`)
      // Every kind of bad request was drawn.
      assert.strictEqual(Object.keys(r.flood.byKind).length, 30)
    }).pipe(Effect.provide(appHarness({ env: HOSTILE_ENV })), Effect.scoped), { timeout: 120_000 })
})
