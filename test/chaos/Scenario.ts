/** One chaos scenario's result and the line `npm run chaos` prints for it (issue 9's format). */
export interface ScenarioResult {
  readonly name: string
  readonly payments: number
  readonly faults: number
  readonly lost: number
  readonly duplicated: number
  readonly balanced: boolean
  /** Anything else the scenario found broken (a 5xx, a wrong answer, a write for a bad request): must be empty. */
  readonly violations?: ReadonlyArray<string>
}

export const scenarioLine = (r: ScenarioResult) =>
  `${r.name}: ${r.payments} payments, ${r.faults} faults, lost ${r.lost}, duplicated ${r.duplicated}, ` +
  (r.balanced ? "ledger balanced" : "ledger UNBALANCED")

export const passed = (r: ScenarioResult) =>
  r.lost === 0 && r.duplicated === 0 && r.balanced && (r.violations ?? []).length === 0
