/**
 * A local JSON-RPC endpoint in front of a node that a test can break and repair while the service uses it:
 * `proxy` forwards every request, `fail` answers HTTP 500, `down` closes the listening socket (and every
 * open keep-alive connection) so connections are refused; going back up listens on the same port again.
 * It counts the requests it received (a `down` endpoint receives none: count those with the service's metrics).
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
    const state = { mode: "proxy" as ProxyMode, requests: 0 }
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        state.requests += 1
        if (state.mode !== "proxy") return res.writeHead(500, { "content-type": "text/plain" }).end("upstream exploded")
        fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) }).then(
          async (r) => res.writeHead(r.status, { "content-type": "application/json" }).end(await r.text()),
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
      setMode
    }
  })
