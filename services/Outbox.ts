import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { decodeIds } from "./Rows.ts"

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder("utf-8", { fatal: true })
const kept = /^[A-Za-z0-9-]$/

/**
 * A free id (a user id) as one NATS subject token, injectively: `[A-Za-z0-9-]` stays, every other UTF-8 byte,
 * `_` included, becomes `_XX` (upper-case hex), and the empty id is `_`. So `a.b` -> `a_2Eb`, `a_b` -> `a_5Fb`:
 * two ids never share a subject, and `fromSubjectToken` gives the id back.
 */
export const subjectToken = (value: string): string => {
  if (value === "") return "_"
  let out = ""
  for (const ch of value) {
    if (kept.test(ch)) out += ch
    else for (const byte of utf8.encode(ch)) out += `_${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

/** The inverse of `subjectToken`; undefined for a string it cannot have produced. */
export const fromSubjectToken = (token: string): string | undefined => {
  if (token === "_") return ""
  if (!/^(?:[A-Za-z0-9-]|_[0-9A-F]{2})+$/.test(token)) return undefined
  const bytes: Array<number> = []
  for (let i = 0; i < token.length;) {
    if (token[i] === "_") {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16))
      i += 3
    } else {
      bytes.push(token.charCodeAt(i))
      i += 1
    }
  }
  try {
    const value = utf8Strict.decode(new Uint8Array(bytes))
    // a kept character written as an escape is not canonical: subjectToken never writes it
    return subjectToken(value) === token ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * Events to publish, written through the caller's SQL transaction: they exist exactly when the change commits.
 * The OutboxRelay publishes them with `Nats-Msg-Id` = `outbox:<id>`, so a crash between publish and marking the
 * row sent publishes nothing twice.
 */
export class Outbox extends Effect.Service<Outbox>()("billing/Outbox", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const enqueue = Effect.fn("Outbox.enqueue")(function*(subject: string, payload: unknown) {
      const [row] = yield* sql`INSERT INTO outbox (subject, payload)
        VALUES (${subject}, ${JSON.stringify(payload, (_, v) => (typeof v === "bigint" ? v.toString() : v))}::jsonb)
        RETURNING id::text AS id`.pipe(Effect.flatMap(decodeIds))
      return row!.id
    })
    return { enqueue } as const
  })
}) {}
