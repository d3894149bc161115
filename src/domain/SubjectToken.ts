/** Free ids and resource kinds as NATS subject tokens (pure; the EVENTS stream's subjects are built from them). */

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
 * `payment:<id>` -> `payment`: the kind in the subject `audit.<kind>`. Kinds are a closed set written in code
 * (`payment`, `plan`, `crypto_config`, ...) and keep their documented subjects; anything else is escaped. A kept
 * kind has `_` only before a lower-case letter, an escape only before upper-case hex: the two never collide.
 */
export const resourceKind = (resource: string) => {
  const kind = resource.split(":", 1)[0] ?? resource
  return /^[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*$/.test(kind) && kind.length <= 64 ? kind : subjectToken(kind)
}
