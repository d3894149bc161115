/** Readings of another process from /proc (Linux): CPU ticks (1/100 s) and resident memory. */
import { readFileSync } from "node:fs"

export const cpuTicks = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
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
