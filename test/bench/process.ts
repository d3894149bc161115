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

/** CPU ticks of every process whose command is one of `commands` (the machine's PostgreSQL backends, nats-server, ...). */
export const cpuTicksOf = (commands: ReadonlyArray<string>): Record<string, number> => {
  const ticks: Record<string, number> = Object.fromEntries(commands.map((c) => [c, 0]))
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let comm: string
    try {
      comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim()
    } catch {
      continue
    }
    if (comm in ticks) ticks[comm]! += cpuTicks(Number(pid))
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
