/** Reads `GET /v1/metrics` like a Prometheus scraper would (text format 0.0.4). */
import { Effect } from "effect"

/** What test/support/app.ts sets as BILLING_METRICS_TOKEN: the harness scrapes like a production Prometheus. */
export const METRICS_TOKEN = "test-metrics-token-0123456789abcdef"

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export const parseMetrics = (text: string): ReadonlyArray<Sample> =>
  text.split("\n").flatMap((line) => {
    const m = SAMPLE.exec(line)
    if (line.startsWith("#") || m === null) return []
    const labels = Object.fromEntries([...(m[2] ?? "").matchAll(LABEL)].map((l) => [l[1]!, l[2]!]))
    return [{ name: m[1]!, labels, value: Number(m[3]) }]
  })

/** The exposition text, read with the bearer token. */
export const scrapeText = (baseUrl: string, token = METRICS_TOKEN): Effect.Effect<string> =>
  Effect.promise(async () => {
    const res = await fetch(`${baseUrl}/v1/metrics`, { headers: { authorization: `Bearer ${token}` } })
    if (res.status !== 200) throw new Error(`GET /v1/metrics answered ${res.status}`)
    return res.text()
  })

/** Every sample the service exposes right now. */
export const scrape = (baseUrl: string, token = METRICS_TOKEN): Effect.Effect<ReadonlyArray<Sample>> =>
  Effect.map(scrapeText(baseUrl, token), parseMetrics)

/** Sum of the series of `name` whose labels include `labels` (0 when none exists yet). */
export const total = (samples: ReadonlyArray<Sample>, name: string, labels: Readonly<Record<string, string>> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)

/** Whether a series of `name` with these labels is exposed at all. */
export const exposed = (samples: ReadonlyArray<Sample>, name: string, labels: Readonly<Record<string, string>>) =>
  samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
