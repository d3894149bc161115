/**
 * The flood itself: `total` requests drawn from a seeded PRNG, sent by `sockets` workers, each answer checked
 * against what the request is owed. Valid webhooks for real payments sit at random positions; replays (the same
 * bytes again, or the same id with another signed body) wait for their original's answer, so each owes a duplicate.
 */
import { Effect } from "effect"
import { signWebhook } from "../../src/domain/WebhookSignature.ts"
import { httpKinds } from "./hostileHttpKinds.ts"
import { rawKinds } from "./hostileRawKinds.ts"
import { type Expect, type Material, meets, WEBHOOK_PATH } from "./hostileRequest.ts"
import { makeRng, weighted } from "./prng.ts"
import { type Answer, type HttpShot, makeWire, type Shot } from "./wire.ts"

export interface FloodOptions {
  readonly baseUrl: string
  readonly total: number
  readonly seed: number
  readonly sockets: number
  readonly secret: string
  readonly contract: string
  /** Events of paid orders, each sent once as a valid webhook somewhere in the flood. */
  readonly valid: ReadonlyArray<Record<string, unknown>>
  readonly onProgress?: (done: number) => void
}

export interface KindTally {
  sent: number
  wrong: number
  /** The slowest answer, in milliseconds. */
  slowestMs: number
  readonly examples: Array<string>
}

export interface FloodResult {
  readonly byKind: Record<string, KindTally>
  readonly serverErrors: number
  readonly wrong: number
  /** Valid webhooks sent (each a distinct id, each owed `duplicate: false`). */
  readonly validIds: number
  /** Requests sent a second time because the kept-alive socket they went out on had been closed as idle. */
  readonly retried: number
  readonly seconds: number
}

/** Replaying exact bytes after this long owes a 401 (stale), not a duplicate: the timestamp went out of range. */
const REPLAY_FRESH_SECONDS = 290
const ACCEPTED: Expect = { status: 202, json: { accepted: true, duplicate: false } }
const DUPLICATE: Expect = { status: 202, json: { accepted: true, duplicate: true } }
const STALE: Expect = { status: 401, error: "unauthorized" }

/** A request and what it is owed; `after` is the original a replay waits for, `answered` releases its replays. */
interface Planned {
  readonly kind: string
  readonly expect: () => Expect
  readonly shot: () => Shot
  readonly after?: Promise<void>
  readonly answered?: () => void
}

interface Original {
  readonly shot: HttpShot
  readonly at: number
  readonly answered: Promise<void>
}

export const flood = (options: FloodOptions) =>
  Effect.gen(function*() {
    const rng = makeRng(options.seed)
    const wire = makeWire(options.baseUrl, WEBHOOK_PATH, options.sockets)
    const nowSeconds = () => Math.floor(Date.now() / 1000)
    let ids = 0
    const material: Material = {
      rng,
      nowSeconds,
      events: options.valid,
      contract: options.contract,
      secret: options.secret,
      id: () => `msg_h${options.seed}_${ids++}`
    }
    const signed = (id: string, body: string): HttpShot => {
      const timestamp = nowSeconds()
      const headers = {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(options.secret, id, timestamp, body)
      }
      return { via: "http", method: "POST", headers, body }
    }

    // Where the valid webhooks go: distinct positions drawn up front.
    const validAt = new Map<number, number>()
    while (validAt.size < Math.min(options.valid.length, options.total)) {
      const at = rng.int(0, options.total - 1)
      if (!validAt.has(at)) validAt.set(at, validAt.size)
    }
    const originals: Array<Original> = []
    const kinds = [{ name: "replay", weight: 3 }, { name: "replay, other body", weight: 2 }, ...httpKinds, ...rawKinds]

    /** Synchronous, so the PRNG is drawn in request order whatever the workers interleave: a seed replays a run. */
    const plan = (index: number): Planned => {
      const v = validAt.get(index)
      if (v !== undefined) {
        const shot = signed(`valid_h${options.seed}_${v}`, JSON.stringify(options.valid[v]))
        let answered = () => {}
        originals.push({ shot, at: nowSeconds(), answered: new Promise<void>((resolve) => (answered = resolve)) })
        return { kind: "valid", expect: () => ACCEPTED, shot: () => shot, answered }
      }
      let kind = weighted(rng, kinds)
      while (!("build" in kind) && originals.length === 0) kind = weighted(rng, kinds)
      if ("build" in kind) {
        const shot = kind.build(material)
        return { kind: kind.name, expect: () => kind.expect, shot: () => shot }
      }
      const original = rng.pick(originals)
      if (kind.name === "replay") {
        // Judged when sent: exact bytes replayed too late are stale.
        const expect = () => (nowSeconds() - original.at < REPLAY_FRESH_SECONDS ? DUPLICATE : STALE)
        return { kind: kind.name, expect, shot: () => original.shot, after: original.answered }
      }
      const body = JSON.stringify({ ...rng.pick(options.valid), tx_hash: `0x${rng.hex(32)}` })
      const id = original.shot.headers["webhook-id"]!
      return { kind: kind.name, expect: () => DUPLICATE, shot: () => signed(id, body), after: original.answered }
    }

    const byKind: Record<string, KindTally> = {}
    let serverErrors = 0
    let wrong = 0
    const check = (kind: string, expect: Expect, answer: Answer, ms: number) => {
      const tally = (byKind[kind] ??= { sent: 0, wrong: 0, slowestMs: 0, examples: [] })
      tally.sent++
      tally.slowestMs = Math.max(tally.slowestMs, Math.round(ms))
      if (typeof answer.status === "number" && answer.status >= 500) serverErrors++
      if (meets(expect, answer)) return
      wrong++
      tally.wrong++
      if (tally.examples.length < 5) tally.examples.push(`${JSON.stringify(answer).slice(0, 300)}, owed ${JSON.stringify(expect)}`)
    }

    let next = 0
    let done = 0
    const worker = Effect.gen(function*() {
      while (next < options.total) {
        const planned = plan(next++)
        if (planned.after !== undefined) yield* Effect.promise(() => planned.after!)
        const sentAt = performance.now()
        const answer = yield* wire.send(planned.shot())
        check(planned.kind, planned.expect(), answer, performance.now() - sentAt)
        planned.answered?.()
        if (++done % 10_000 === 0) options.onProgress?.(done)
      }
    })

    const started = performance.now()
    yield* Effect.all(Array.from({ length: options.sockets }, () => worker), { concurrency: "unbounded", discard: true }).pipe(
      Effect.ensuring(wire.close)
    )
    const seconds = (performance.now() - started) / 1000
    return { byKind, serverErrors, wrong, validIds: validAt.size, retried: wire.retried(), seconds } satisfies FloodResult
  })
