/**
 * A TCP proxy in front of a server (PostgreSQL) that can go silent: `freeze` stops forwarding in both
 * directions without closing anything, like a network partition with no RST; `cut` destroys every connection
 * (the client sees a reset). Closed with the scope, connections cut first.
 */
import { Effect, type Scope } from "effect"
import { createServer, connect, type Socket } from "node:net"

export interface TcpProxy {
  readonly port: number
  readonly freeze: Effect.Effect<void>
  readonly cut: Effect.Effect<void>
}

export const tcpProxy = (target: { readonly host: string; readonly port: number }): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pairs: Array<readonly [Socket, Socket]> = []
    const state = { frozen: false }
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host)
      pairs.push([client, upstream])
      const close = () => {
        // A frozen link says nothing, not even that the other side went away.
        if (state.frozen) return
        client.destroy()
        upstream.destroy()
      }
      client.on("error", close).on("close", close)
      upstream.on("error", close).on("close", close)
      if (state.frozen) return
      client.pipe(upstream)
      upstream.pipe(client)
    })
    const cut = Effect.sync(() => {
      state.frozen = false
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () => Effect.zipRight(cut, Effect.async<void>((resume) => void server.close(() => resume(Effect.void))))
    )
    const freeze = Effect.sync(() => {
      state.frozen = true
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
      }
    })
    return { port, freeze, cut }
  })
