/** Ids as NATS subject tokens: injective, reversible and always one valid token. */
import { assert, describe, it } from "@effect/vitest"
import { fromSubjectToken, subjectToken } from "../../src/domain/SubjectToken.ts"

/** Every string over `alphabet` of length 0..`max`. */
const strings = (alphabet: ReadonlyArray<string>, max: number): Array<string> => {
  const out = [""]
  let level = [""]
  for (let n = 1; n <= max; n++) {
    level = level.flatMap((prefix) => alphabet.map((c) => prefix + c))
    out.push(...level)
  }
  return out
}

// the characters that collided before, the escape character itself, hex digits and multi-byte UTF-8
const alphabet = ["a", "b", "F", "2", "E", "-", "_", ".", "*", ">", " ", "é", "😀"]
const validToken = /^[A-Za-z0-9_-]+$/

describe("subjectToken", () => {
  it("is injective and reversible over every string of up to 4 characters of a small alphabet", () => {
    const seen = new Map<string, string>()
    for (const value of strings(alphabet, 4)) {
      const token = subjectToken(value)
      assert.match(token, validToken, `token of ${JSON.stringify(value)}`)
      const other = seen.get(token)
      assert.isUndefined(other, `${JSON.stringify(value)} and ${JSON.stringify(other)} share the token ${token}`)
      seen.set(token, value)
      assert.strictEqual(fromSubjectToken(token), value)
    }
    assert.strictEqual(seen.size, strings(alphabet, 4).length)
  })

  it("keeps letters, digits and '-', escapes everything else as _XX bytes", () => {
    assert.strictEqual(subjectToken("user-42"), "user-42")
    assert.strictEqual(subjectToken("a.b"), "a_2Eb")
    assert.strictEqual(subjectToken("a_b"), "a_5Fb")
    assert.strictEqual(subjectToken("é"), "_C3_A9")
    assert.strictEqual(subjectToken(""), "_")
  })

  it("rejects tokens it cannot have produced", () => {
    for (const token of ["a.b", "a_2eb", "_61", "a_", "_ZZ", "_FF", ""]) {
      assert.isUndefined(fromSubjectToken(token), token)
    }
  })
})
