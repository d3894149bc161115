/**
 * A local JSON-RPC endpoint in front of a node that records the methods it receives, can answer HTTP 500 and can be
 * pointed at another node; and a fresh `Rpc` over one `crypto_config` row, its log lines captured.
 */
import { SqlClient } from "@effect/sql"
import { assert } from "@effect/vitest"
import { ConfigProvider, Effect, Logger, Metric, Option, Schema, type Scope } from "effect"
import { createServer } from "node:http"
import { labelled } from "../../services/Metrics.ts"
import { Rpc } from "../../services/Rpc.ts"

export interface Endpoint {
  readonly url: string
  /** "proxy" forwards to the node; "fail" answers HTTP 500. */
  mode: "proxy" | "fail"
  /** The node it forwards to. */
  target: string
  /** JSON-RPC methods received, in order. */
  readonly methods: Array<string>
}

const Call = Schema.Struct({ method: Schema.String })
/** The methods of a request body: one call, or a JSON-RPC batch of several. */
const methodsOf = Schema.decodeUnknownOption(Schema.parseJson(Schema.Union(Call, Schema.Array(Call))))

/** A local JSON-RPC endpoint in front of `target`, closed with the scope. */
export const endpoint = (target: string): Effect.Effect<Endpoint, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: ReturnType<typeof createServer>; endpoint: Endpoint }>((resume) => {
      const methods: Array<string> = []
      const state = { mode: "proxy" as Endpoint["mode"], target }
      const server = createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          methods.push(...Option.match(methodsOf(body), { onNone: () => ["?"], onSome: (b) => ("method" in b ? [b.method] : b.map((c) => c.method)) }))
          if (state.mode === "fail") return res.writeHead(500, { "content-type": "text/plain" }).end("upstream exploded")
          fetch(state.target, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
            async (r) => res.writeHead(r.status, { "content-type": "application/json" }).end(await r.text()),
            () => res.writeHead(502).end()
          )
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const handle: Endpoint = {
          url: `http://127.0.0.1:${port}`,
          methods,
          get mode() { return state.mode },
          set mode(m) { state.mode = m },
          get target() { return state.target },
          set target(t) { state.target = t }
        }
        resume(Effect.succeed({ server, endpoint: handle }))
      })
    }),
    ({ server }) => Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  ).pipe(Effect.map(({ endpoint }) => endpoint))

const defaults = {
  BILLING_RPC_RETRY_ATTEMPTS: "1",
  BILLING_RPC_RETRY_BASE_DELAY: "10 millis",
  BILLING_RPC_TIMEOUT: "2 seconds",
  BILLING_RPC_COOLDOWN: "5 seconds",
  BILLING_RPC_ALLOW_LOOPBACK: "true"
}

/** A fresh `Rpc` over a `crypto_config` row for `network` (chain 31337 unless told); every log line it writes lands in `logs`. */
export const withRpc = <A, E, R>(
  network: string,
  urls: ReadonlyArray<string>,
  use: (rpc: Rpc, logs: ReadonlyArray<string>) => Effect.Effect<A, E, R>,
  config: Record<string, string> = {},
  chainId = 31337
) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO crypto_config (network, chain_id, rpc_endpoints, confirmations)
      VALUES (${network}, ${chainId}, ${JSON.stringify(urls)}::jsonb, 2)`
    const logs: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.map(Logger.logfmtLogger, (line) => void logs.push(line)))
    return yield* Effect.flatMap(Rpc, (rpc) => use(rpc, logs)).pipe(
      Effect.provide(Rpc.Default),
      Effect.provide(capture),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ ...defaults, ...config }))))
    )
  })

export const count = <T>(metric: Metric.Metric<T, number, { readonly count: number }>, labels: Record<string, string>) =>
  Effect.map(Metric.value(labelled(metric, labels)), (s) => s.count)

export const assertNoUrl = (texts: ReadonlyArray<string>, urls: ReadonlyArray<string>) => {
  for (const text of texts) {
    for (const url of urls) assert.notInclude(text, url.replace("http://", ""))
  }
}
