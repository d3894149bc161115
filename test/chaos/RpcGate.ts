/**
 * The service's primary RPC endpoint: a TCP proxy to anvil that the suite kills (stops listening, resets every open
 * connection, so new ones are refused) and revives on the same port. The second endpoint is anvil itself.
 */
import { Data, Effect, type Scope } from "effect"
import { connect, createServer, type Server, type Socket } from "node:net"

export class RpcGateError extends Data.TaggedError("RpcGateError")<{ readonly cause: unknown }> {}

export interface RpcGate {
  readonly url: string
  readonly kill: Effect.Effect<void>
  readonly revive: Effect.Effect<void, RpcGateError>
}

const listen = (server: Server, port: number) =>
  Effect.async<number, RpcGateError>((resume) => {
    const onError = (cause: Error) => resume(Effect.fail(new RpcGateError({ cause })))
    server.once("error", onError)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError)
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

export const rpcGate = (target: { readonly host: string; readonly port: number }): Effect.Effect<RpcGate, RpcGateError, Scope.Scope> =>
  Effect.gen(function*() {
    const sockets = new Set<Socket>()
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host)
      for (const s of [client, upstream]) {
        sockets.add(s)
        s.on("close", () => sockets.delete(s))
      }
      const close = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on("error", close).on("close", close)
      upstream.on("error", close).on("close", close)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    const kill = Effect.async<void>((resume) => {
      for (const s of sockets) s.resetAndDestroy()
      if (!server.listening) return resume(Effect.void)
      server.close(() => resume(Effect.void))
    })
    const port = yield* Effect.acquireRelease(listen(server, 0), () => kill)
    const revive = Effect.suspend(() => server.listening ? Effect.void : Effect.asVoid(listen(server, port)))
    return { url: `http://127.0.0.1:${port}`, kill, revive }
  })
