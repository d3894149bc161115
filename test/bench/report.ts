/**
 * The bench's output: one table per section, every service figure beside its floor from the same run and their ratio,
 * printed and appended as a dated section to docs/benchmarks.md.
 */
import { Effect } from "effect"
import { appendFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const BENCHMARKS_MD = fileURLToPath(new URL("../../docs/benchmarks.md", import.meta.url))

export interface Row {
  readonly scenario: string
  readonly service: string
  readonly floor: string
  /** service / floor for the headline figure, with the target beside it; "" when there is no floor. */
  readonly ratio: string
}

export interface Section {
  readonly title: string
  readonly method: string
  readonly rows: ReadonlyArray<Row>
}

export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a"

export const ratio = (service: number, floor: number, target?: string) =>
  `${Number.isFinite(service / floor) ? (service / floor).toFixed(2) : "n/a"}${target === undefined ? "" : ` (target ${target})`}`

export const markdown = (sections: ReadonlyArray<Section>) =>
  sections.map((s) =>
    [
      `### ${s.title}`,
      "",
      s.method,
      "",
      "| scenario | service | floor (same run) | ratio |",
      "| --- | --- | --- | --- |",
      ...s.rows.map((r) => `| ${r.scenario} | ${r.service} | ${r.floor} | ${r.ratio} |`)
    ].join("\n")
  ).join("\n\n")

/** Appends the run under a dated heading (UTC), with what the machine was doing. */
export const appendRun = (sections: ReadonlyArray<Section>, context: string) =>
  Effect.sync(() => {
    const text = `\n## Run of ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC\n\n${context}\n\n${markdown(sections)}\n`
    appendFileSync(BENCHMARKS_MD, text)
    return text
  })
