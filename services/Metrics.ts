/**
 * The billing metrics and their Prometheus text exposition (format 0.0.4).
 *
 * Metrics are plain Effect `Metric`s; Effect keeps their values in its global registry, so `render`
 * shows every metric any module has touched (e.g. `billing_consumer_messages_total` in
 * streams/Consumer.ts), not only the ones declared here. A labelled metric appears once a label set is
 * used; the unlabelled ones declared here are always rendered (zero until recorded).
 */
import { Effect, Metric, MetricBoundaries, MetricKeyType, type MetricPair, MetricState, Option } from "effect"

// RPC (services/Rpc.ts). `endpoint`, `from` and `to` are endpoint indexes, never URLs.
export const rpcRequestsTotal = Metric.counter("billing_rpc_requests_total", {
  description: "RPC requests per endpoint and outcome (success or error)"
})
export const rpcErrorsTotal = Metric.counter("billing_rpc_errors_total", {
  description: "Failed RPC requests per endpoint; retryable errors move to the next endpoint"
})
export const rpcFailoversTotal = Metric.counter("billing_rpc_failovers_total", {
  description: "Calls that moved from one RPC endpoint to another after a retryable error"
})
export const rpcEndpointHealthy = Metric.gauge("billing_rpc_endpoint_healthy", {
  description: "1 when the RPC endpoint proved the network's chain id and its last request succeeded, 0 otherwise"
})
export const rpcChainMismatchTotal = Metric.counter("billing_rpc_chain_mismatch_total", {
  description: "Probes in which an RPC endpoint answered eth_chainId with another chain id than its network's"
})

// Payments, subscriptions, contracts, chain.
export const transactionsTotal = Metric.counter("billing_transactions_total", {
  description: "Payment transactions per status, network and token"
})
export const subscriptionsActive = Metric.gauge("billing_subscriptions_active", {
  description: "Subscriptions currently active"
})
export const transactionsNetworkFailedTotal = Metric.counter("billing_transactions_network_failed_total", {
  description: "Payments that failed because of the network (reverted, dropped, RPC unavailable)"
})
export const paymentAttemptsTotal = Metric.counter("billing_payment_attempts_total", {
  description: "Transactions to pay a checkout that moved no money (outcome=reverted); the checkout stays payable"
})
export const contractEventsTotal = Metric.counter("billing_contract_events_total", {
  description: "Contract events handled per contract and event name"
})
export const webhookToConfirmationSeconds = Metric.histogram(
  "billing_webhook_to_confirmation_seconds",
  MetricBoundaries.fromIterable([1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]),
  "Seconds from the first webhook of a payment to its confirmation"
)
export const chainListenerLagBlocks = Metric.gauge("billing_chain_listener_lag_blocks", {
  description: "Blocks between the chain head and the last block the ChainListener processed"
})
export const chainReorgsTotal = Metric.counter("billing_chain_reorgs_total", {
  description: "Chain reorganisations seen by the ChainListener"
})
export const chainShortHeadTotal = Metric.counter("billing_chain_short_head_total", {
  description: "Times the ChainListener found the chain head below its cursor (a rollback or a node that lost blocks)"
})
export const chainShortHeadBlocks = Metric.gauge("billing_chain_short_head_blocks", {
  description: "Blocks the chain head is below the ChainListener's cursor while it waits to confirm a rewind; 0 otherwise"
})

/** Unlabelled metrics are read before each render so they appear (as 0) before their first update. */
const registerUnlabelled = Effect.all([Metric.value(subscriptionsActive), Metric.value(webhookToConfirmationSeconds)], {
  discard: true
})

/**
 * The metric with these labels. Labels are applied sorted by name: Effect tells metric keys apart by
 * their label order, so every call site gets the same key whatever order it writes them in.
 */
export const labelled = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  labels: Readonly<Record<string, string>>
): Metric.Metric<Type, In, Out> =>
  Object.keys(labels).sort().reduce((m, key) => Metric.tagged(m, key, labels[key]!), metric)

/**
 * The labelled series the alerts and dashboards read, at 0 for a configured network and its endpoints, so a rate or an
 * increase is 0 (not absent) before the first event: an alert on "failures above 10%" must see "none so far".
 */
export const zeroSeries = (network: string, endpoints: number) =>
  Effect.all([
    ...(["pending", "confirmed", "failed"] as const).map((status) =>
      Metric.incrementBy(labelled(transactionsTotal, { status, network, token: "native" }), 0)),
    Metric.incrementBy(labelled(transactionsNetworkFailedTotal, { network }), 0),
    Metric.incrementBy(labelled(chainShortHeadTotal, { network }), 0),
    Metric.incrementBy(labelled(chainReorgsTotal, { network }), 0),
    ...Array.from({ length: endpoints }, (_, i) =>
      Effect.all((["true", "false"] as const).map((retryable) =>
        Metric.incrementBy(labelled(rpcErrorsTotal, { network, endpoint: String(i), retryable }), 0))))
  ], { discard: true })

// Exposition format helpers.
const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")
const labelName = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, "_").replace(/^([0-9])/, "_$1")
export const escapeLabelValue = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

type Labels = ReadonlyArray<readonly [string, string]>

const formatLabels = (labels: Labels): string =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`

const sample = (name: string, labels: Labels, value: number | bigint) =>
  `${name}${formatLabels(labels)} ${formatValue(value)}`

type Kind = "counter" | "gauge" | "histogram" | "summary"

const kindOf = (pair: MetricPair.MetricPair.Untyped): Kind => {
  const keyType = pair.metricKey.keyType
  if (MetricKeyType.isGaugeKey(keyType)) return "gauge"
  if (MetricKeyType.isHistogramKey(keyType)) return "histogram"
  if (MetricKeyType.isSummaryKey(keyType)) return "summary"
  // Counters and frequencies (one counter per observed value) are both monotonic counts.
  return "counter"
}

const samplesOf = (name: string, labels: Labels, state: MetricState.MetricState.Untyped): Array<string> => {
  if (MetricState.isCounterState(state)) return [sample(name, labels, state.count)]
  if (MetricState.isGaugeState(state)) return [sample(name, labels, state.value)]
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([key, n]) => sample(name, [...labels, ["key", key]], n))
  }
  if (MetricState.isHistogramState(state)) {
    // Effect's buckets are already cumulative and end with +Inf.
    return [
      ...state.buckets.map(([le, n]) => sample(`${name}_bucket`, [...labels, ["le", formatValue(le)]], n)),
      sample(`${name}_sum`, labels, state.sum),
      sample(`${name}_count`, labels, state.count)
    ]
  }
  if (MetricState.isSummaryState(state)) {
    return [
      ...state.quantiles.flatMap(([q, v]) =>
        Option.isSome(v) ? [sample(name, [...labels, ["quantile", formatValue(q)]], v.value)] : []
      ),
      sample(`${name}_sum`, labels, state.sum),
      sample(`${name}_count`, labels, state.count)
    ]
  }
  return []
}

/** Two counters of one series (same name and labels, declared twice with other descriptions) add up. */
const merge = (a: MetricState.MetricState.Untyped, b: MetricState.MetricState.Untyped): MetricState.MetricState.Untyped =>
  MetricState.isCounterState(a) && MetricState.isCounterState(b)
    ? typeof a.count === "bigint" && typeof b.count === "bigint"
      ? MetricState.counter(a.count + b.count)
      : MetricState.counter(Number(a.count) + Number(b.count))
    : a

interface Family {
  readonly kind: Kind
  help: Option.Option<string>
  readonly series: Map<string, { readonly labels: Labels; state: MetricState.MetricState.Untyped }>
}

const byKey = <A>([a]: readonly [string, A], [b]: readonly [string, A]) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Prometheus text exposition of a metrics snapshot: one `# HELP`/`# TYPE` block per metric name,
 * families and series sorted so the output is stable. Effect tells keys apart by description too, so
 * one series can come twice: counters are summed, otherwise the first wins. Keys that reuse a name
 * with another metric type are left out (Prometheus would reject the whole scrape).
 */
export const renderSnapshot = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) {
    const name = metricName(pair.metricKey.name)
    const kind = kindOf(pair)
    const family = families.get(name) ?? { kind, help: pair.metricKey.description, series: new Map() }
    families.set(name, family)
    if (family.kind !== kind) continue
    if (Option.isNone(family.help)) family.help = pair.metricKey.description
    const labels: Labels = pair.metricKey.tags.map((t) => [labelName(t.key), t.value] as const)
    const id = formatLabels([...labels].sort(byKey))
    const existing = family.series.get(id)
    if (existing === undefined) family.series.set(id, { labels, state: pair.metricState })
    else existing.state = merge(existing.state, pair.metricState)
  }
  const lines: Array<string> = []
  for (const [name, family] of [...families].sort(byKey)) {
    if (Option.isSome(family.help)) lines.push(`# HELP ${name} ${escapeHelp(family.help.value)}`)
    lines.push(`# TYPE ${name} ${family.kind}`)
    for (const [, series] of [...family.series].sort(byKey)) lines.push(...samplesOf(name, series.labels, series.state))
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}

/** Every registered Effect metric in Prometheus text format (`text/plain; version=0.0.4`). */
export const render: Effect.Effect<string> = registerUnlabelled.pipe(Effect.zipRight(Metric.snapshot), Effect.map(renderSnapshot), Effect.withSpan("Metrics.render"))

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** The metrics endpoint's view of the registry (`GET /v1/metrics`). */
export class Metrics extends Effect.Service<Metrics>()("billing/Metrics", {
  succeed: { render, contentType: CONTENT_TYPE } as const
}) {}
