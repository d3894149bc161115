/**
 * The folders read as layers: `src/domain` and `src/contracts` at the bottom, `services/` on them, `streams/`
 * above, `src/http`, `src/cli` and the entry points on top. An import that points up a layer fails here, and so
 * does a SQL result typed with a cast (`sql<{ ... }>`) instead of decoded with a Schema.
 */
import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..")

const filesUnder = (dir: string): ReadonlyArray<string> =>
  readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name)
    return statSync(join(root, path)).isDirectory() ? filesUnder(path) : path.endsWith(".ts") ? [path] : []
  })

/** Lower is lower: a file may import only from its own layer or the ones below. */
const layerOf = (path: string): number => {
  if (path.startsWith("src/domain/") || path.startsWith("src/contracts/")) return 0
  if (path.startsWith("services/")) return 1
  if (path.startsWith("streams/")) return 2
  return 3
}

const importsOf = (file: string) =>
  [...readFileSync(join(root, file), "utf8").matchAll(/^(?:import|export)[^"']*?from\s+["'](\.[^"']+)["']/gm)].map((m) =>
    relative(root, resolve(join(root, dirname(file)), m[1]!))
  )

describe("layering", () => {
  it("no file imports from a layer above its own", () => {
    const upward = ["src/domain", "src/contracts", "services", "streams"].flatMap(filesUnder).flatMap((file) =>
      importsOf(file).filter((target) => layerOf(target) > layerOf(file)).map((target) => `${file} -> ${target}`)
    )
    expect(upward).toEqual([])
  })

  it("no SQL result is typed with a cast", () => {
    const casts = ["src", "services", "streams"].flatMap(filesUnder).flatMap((file) =>
      readFileSync(join(root, file), "utf8").split("\n").flatMap((line, i) => (/\bsql<\{/.test(line) ? [`${file}:${i + 1}`] : []))
    )
    expect(casts).toEqual([])
  })

  it("services/ never reaches into the devnet", () => {
    const devnet = filesUnder("services").flatMap((file) =>
      importsOf(file).filter((target) => target.startsWith("src/devnet/")).map((target) => `${file} -> ${target}`)
    )
    expect(devnet).toEqual([])
  })
})
