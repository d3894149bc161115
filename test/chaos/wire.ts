/**
 * How a hostile request reaches the service: well-formed HTTP over a keep-alive agent, or raw bytes on a socket of
 * its own for what an HTTP client refuses to send (lying or garbage Content-Length, huge headers, bodies cut off).
 */
import { Effect } from "effect"
import { Agent, request } from "node:http"
import { connect } from "node:net"

/** A request an HTTP client can send as is. */
export interface HttpShot {
  readonly via: "http"
  /** The request target when not the route's own path (another spelling of it). */
  readonly path?: string
  readonly method: string
  readonly headers: Record<string, string>
  readonly body: string | Uint8Array
}

/**
 * Bytes written on a fresh connection, then: `wait` for the server to answer and close, `end` our side (half-close),
 * or `destroy` the connection at once (an aborted request: there is no answer to read).
 */
export interface RawShot {
  readonly via: "raw"
  readonly chunks: ReadonlyArray<string | Uint8Array>
  readonly ending: "wait" | "end" | "destroy"
}

export type Shot = HttpShot | RawShot

/** The answer: a status and body, or none (`error` says why: the connection was reset, closed, or timed out). */
export type Answer =
  | { readonly status: number; readonly body: string }
  | { readonly status: "none"; readonly error: string }

const RAW_TIMEOUT_MS = 15_000

export const makeWire = (baseUrl: string, path: string, sockets: number) => {
  const url = new URL(baseUrl)
  const agent = new Agent({ keepAlive: true, maxSockets: sockets })

  let retried = 0
  const once = (shot: HttpShot) =>
    Effect.async<Answer & { readonly stale?: boolean }>((resume) => {
      const req = request({
        agent,
        host: url.hostname,
        port: url.port,
        path: shot.path ?? path,
        method: shot.method,
        headers: { ...shot.headers, "content-length": String(Buffer.byteLength(shot.body)) }
      }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (d: Buffer) => chunks.push(d))
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() })))
        res.on("error", (e) => resume(Effect.succeed({ status: "none", error: e.message })))
      })
      // A kept-alive socket the server closed as idle just as it was reused: the request never reached the route.
      req.on("error", (e) => resume(Effect.succeed({ status: "none", error: e.message, stale: req.reusedSocket })))
      req.end(shot.body)
    })
  // Node's documented answer to that race is to send again once (http.ClientRequest reusedSocket).
  const http = (shot: HttpShot) =>
    Effect.flatMap(once(shot), (answer) => {
      if (answer.stale !== true) return Effect.succeed(answer)
      retried++
      return once(shot)
    })

  const raw = (shot: RawShot) =>
    Effect.async<Answer>((resume) => {
      const socket = connect(Number(url.port), url.hostname)
      const received: Array<Buffer> = []
      let error = ""
      let settled = false
      const settle = (answer: Answer) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        socket.destroy()
        resume(Effect.succeed(answer))
      }
      /** The response read so far; complete once its Content-Length is in (the server may keep the connection). */
      const parse = () => {
        const text = Buffer.concat(received).toString("latin1")
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)
        const bodyAt = text.indexOf("\r\n\r\n")
        if (status === null || bodyAt < 0) return undefined
        const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, bodyAt))
        const body = text.slice(bodyAt + 4)
        const answer: Answer = { status: Number(status[1]), body }
        return { answer, complete: length !== null && body.length >= Number(length[1]) }
      }
      // A server that never answers or never closes is a finding too: it is reported as a timeout.
      const timer = setTimeout(() => settle(parse()?.answer ?? { status: "none", error: "timeout" }), RAW_TIMEOUT_MS)
      socket.on("data", (d: Buffer) => {
        received.push(d)
        const read = parse()
        if (read?.complete === true) settle(read.answer)
      })
      // Writes racing the server's close may fail (EPIPE, ECONNRESET): what was answered before still counts.
      socket.on("error", (e) => (error = e.message))
      socket.on("close", () => settle(parse()?.answer ?? { status: "none", error: error === "" ? "closed" : error }))
      socket.on("connect", () => {
        for (const chunk of shot.chunks) socket.write(chunk)
        if (shot.ending === "end") socket.end()
        if (shot.ending === "destroy") socket.write("", () => settle({ status: "none", error: "aborted by us" }))
      })
    })

  return {
    send: (shot: Shot): Effect.Effect<Answer> => (shot.via === "http" ? http(shot) : raw(shot)),
    /** Requests sent again after a kept-alive socket was closed under them. */
    retried: () => retried,
    close: Effect.sync(() => agent.destroy())
  }
}
