/** Child processes of the bench: CPU ticks (1/100 s) and resident memory from /proc (Linux), and their output. */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"

export const cpuTicks = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

/** CPU ticks of each running process whose command is one of `commands` (PostgreSQL backends, nats-server, ...), by pid. */
export const cpuSnapshot = (commands: ReadonlyArray<string>): ReadonlyMap<number, { readonly command: string; readonly ticks: number }> => {
  const found = new Map<number, { command: string; ticks: number }>()
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number)) {
    let command: string
    try {
      command = readFileSync(`/proc/${pid}/comm`, "utf8").trim()
    } catch {
      continue
    }
    if (commands.includes(command)) found.set(pid, { command, ticks: cpuTicks(pid) })
  }
  return found
}

/**
 * Ticks spent per command between two snapshots, by the processes alive at the second (those started in between
 * count from 0). A process that ended in between is left out rather than subtracted: other work on the machine
 * (another database's backends) comes and goes.
 */
export const cpuTicksBetween = (
  commands: ReadonlyArray<string>,
  before: ReturnType<typeof cpuSnapshot>,
  after: ReturnType<typeof cpuSnapshot>
): Record<string, number> => {
  const ticks: Record<string, number> = Object.fromEntries(commands.map((c) => [c, 0]))
  for (const [pid, now] of after) {
    const then = before.get(pid)
    ticks[now.command]! += now.ticks - (then?.command === now.command ? then.ticks : 0)
  }
  return ticks
}

/** `VmRSS` (now) or `VmHWM` (peak) in MiB; 0 when the process is gone. */
export const memoryMiB = (pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number => {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match ? Math.round(Number(match[1]) / 1024) : 0
  } catch {
    return 0
  }
}

export interface ChildOutput {
  readonly code: number | null
  /** The last stdout line that starts with `{`: the figures a bench child prints. */
  readonly last: string | undefined
  readonly out: string
  readonly err: string
}

/** Runs `node ...args` to its end, collecting its output; SIGKILLed when interrupted. */
export const runNode = (args: ReadonlyArray<string>, options: { readonly cwd?: string; readonly env: NodeJS.ProcessEnv }) =>
  Effect.async<ChildOutput>((resume) => {
    const child = spawn(process.execPath, args, { ...options, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d))
    child.once("close", (code) =>
      resume(Effect.succeed({ code, last: out.trim().split("\n").filter((l) => l.startsWith("{")).at(-1), out, err })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })
