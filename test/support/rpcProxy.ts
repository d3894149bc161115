/**
 * A local JSON-RPC endpoint in front of a node that a test can break and repair while the service uses it:
 * `proxy` forwards every request, `fail` answers HTTP 500, `down` closes the listening socket (and every
 * open keep-alive connection) so connections are refused; going back up listens on the same port again.
 * It counts the requests it received (a `down` endpoint receives none: count those with the service's metrics).
 * `beforeAnswer` runs a hook after the node answered a request and before the answer goes back, to change the
 * chain at a precise moment of the service's reads.
 */
import { Effect, type Scope } from "effect"
import { createServer, type Server } from "node:http"

export type ProxyMode = "proxy" | "fail" | "down"

export interface RpcProxy {
  readonly url: string
  readonly mode: Effect.Effect<ProxyMode>
  /** Requests received so far (answered or failed). */
  readonly requests: Effect.Effect<number>
  readonly setMode: (mode: ProxyMode) => Effect.Effect<void>
  /** The hook gets the JSON-RPC methods of the request (one, or a batch's). */
  readonly beforeAnswer: (hook: ((methods: ReadonlyArray<string>) => Promise<void>) | undefined) => Effect.Effect<void>
}

const methodsOf = (body: Buffer): ReadonlyArray<string> => {
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"))
    return (Array.isArray(parsed) ? parsed : [parsed]).flatMap((r: unknown) =>
      typeof r === "object" && r !== null && "method" in r && typeof r.method === "string" ? [r.method] : [])
  } catch {
    return []
  }
}

const listen = (server: Server, port: number) =>
  Effect.async<number, Error>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError)
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const close = (server: Server) =>
  Effect.async<void>((resume) => {
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

/** A proxy to `target` on a free port, proxying; closed with the scope. */
export const rpcProxy = (target: string): Effect.Effect<RpcProxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const state = {
      mode: "proxy" as ProxyMode,
      requests: 0,
      hook: undefined as ((methods: ReadonlyArray<string>) => Promise<void>) | undefined
    }
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        state.requests += 1
        if (state.mode !== "proxy") return res.writeHead(500, { "content-type": "text/plain" }).end("upstream exploded")
        const body = Buffer.concat(chunks)
        fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
          async (r) => {
            const answer = await r.text()
            // A hook that fails is answered as a failed upstream: the test sees it in the service's behaviour.
            const hooked = await Promise.resolve(state.hook?.(methodsOf(body))).then(() => true, () => false)
            if (!hooked) return res.writeHead(502).end()
            res.writeHead(r.status, { "content-type": "application/json" }).end(answer)
          },
          () => res.writeHead(502).end()
        )
      })
    })
    const port = yield* Effect.acquireRelease(listen(server, 0), () => close(server)).pipe(Effect.orDie)
    const setMode = (mode: ProxyMode) =>
      Effect.suspend(() => {
        const was = state.mode
        state.mode = mode
        if (mode === "down") return close(server)
        // The port was ours a moment ago; should another process have taken it the test fails here, loudly.
        return was === "down" ? Effect.asVoid(listen(server, port)).pipe(Effect.orDie) : Effect.void
      })
    return {
      url: `http://127.0.0.1:${port}`,
      mode: Effect.sync(() => state.mode),
      requests: Effect.sync(() => state.requests),
      setMode,
      beforeAnswer: (hook) => Effect.sync(() => void (state.hook = hook))
    }
  })
