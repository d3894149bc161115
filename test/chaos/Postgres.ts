/**
 * A private PostgreSQL cluster for the fault suite (initdb into a temp dir, a free port), so restarting and crashing
 * it never touches the machine's own server. initdb refuses root: as root, every command runs as `postgres`.
 */
import { Data, Effect, type Scope } from "effect"
import { execFile, execFileSync } from "node:child_process"
import { chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { freePort } from "../../src/devnet/Anvil.ts"

export class PostgresError extends Data.TaggedError("PostgresError")<{ readonly command: string; readonly output: string }> {}

const binDir = () => {
  const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a))
  if (versions[0] === undefined) throw new Error("no PostgreSQL under /usr/lib/postgresql")
  return `/usr/lib/postgresql/${versions[0]}/bin`
}

const asRoot = userInfo().uid === 0

const exec = (tool: string, args: ReadonlyArray<string>) =>
  Effect.async<string, PostgresError>((resume) => {
    const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(binDir(), tool), ...args]] : [join(binDir(), tool), [...args]]
    execFile(cmd, argv, { timeout: 60_000 }, (error, stdout, stderr) =>
      resume(error === null ? Effect.succeed(stdout) : Effect.fail(new PostgresError({ command: `${tool} ${args.join(" ")}`, output: `${stdout}${stderr}` }))))
  })

export interface PrivatePostgres {
  readonly port: number
  readonly url: (database: string) => string
  /** `pg_ctl restart`: `fast` is a clean shutdown, `immediate` a crash that recovers from the WAL on start. */
  readonly restart: (mode: "fast" | "immediate") => Effect.Effect<void, PostgresError>
}

export const startPostgres: Effect.Effect<PrivatePostgres, PostgresError, Scope.Scope> = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "chaos-pg-"))
  if (asRoot) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), -1)
  const data = join(dir, "data")
  const port = yield* freePort
  yield* exec("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
  // A small cluster on loopback only; its socket lives in the temp dir, not /var/run.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=64MB`
  const ctl = (args: ReadonlyArray<string>) => exec("pg_ctl", ["-D", data, "-w", "-t", "60", "-l", join(dir, "log"), ...args])
  yield* Effect.acquireRelease(ctl(["-o", options, "start"]), () =>
    ctl(["-m", "immediate", "stop"]).pipe(Effect.ignore, Effect.zipRight(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))))
  return {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    restart: (mode) => Effect.asVoid(ctl(["-m", mode, "-o", options, "restart"]))
  }
})
