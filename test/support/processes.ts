/** The process tree under a PID, read from /proc (Linux), and whether a recorded process is still running. */
import { readdirSync, readFileSync } from "node:fs"

export interface ProcessInfo {
  readonly pid: number
  readonly ppid: number
  readonly command: string
  /** Start time in clock ticks since boot: with the PID it names one process even if the PID is reused later. */
  readonly startedAt: string
  readonly state: string
}

const read = (pid: number): ProcessInfo | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command (field 2) may contain spaces and parentheses: the fields after it start past the last ")".
    const command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { pid, ppid: Number(fields[1]), command, startedAt: fields[19]!, state: fields[0]! }
  } catch {
    return undefined
  }
}

/** Every process below `root`, children before grandchildren. */
export const descendants = (root: number): ReadonlyArray<ProcessInfo> => {
  const all = readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((name) => read(Number(name)) ?? [])
  const found: Array<ProcessInfo> = []
  let frontier = [root]
  while (frontier.length > 0) {
    const children = all.filter((p) => frontier.includes(p.ppid))
    found.push(...children)
    frontier = children.map((p) => p.pid)
  }
  return found
}

/** True while the recorded process exists and is not a zombie (a zombie runs nothing and holds no port). */
export const isRunning = (recorded: ProcessInfo): boolean => {
  const now = read(recorded.pid)
  return now !== undefined && now.startedAt === recorded.startedAt && now.state !== "Z"
}
