// What /proc says about a process: CPU time (all threads) and memory.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of utime/stime in /proc/PID/stat (USER_HZ; 100 on Linux/x86-64). */
export const CLK_TCK = (() => {
  const r = Bun.spawnSync(["getconf", "CLK_TCK"]);
  const n = Number(r.stdout.toString().trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime + stime of the whole process (every thread), in seconds; NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time of each live thread of the process in seconds, by thread id, from
 * /proc/PID/task/TID/schedstat (nanoseconds on the CPU): far finer than utime/stime's clock
 * ticks, so fit for an idle process (at 100 ticks/s a 5 s window cannot tell 0 from 0.19 %).
 */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        out.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]) / 1e9);
      } catch {
        // the thread exited meanwhile
      }
    }
  } catch {
    // the process is gone
  }
  return out;
}

/** CPU seconds the process's threads used between two threadCpuSeconds() readings (threads that
 *  exited in between are missing from the later one and count for nothing, never negative). */
export function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): number {
  let sum = 0;
  for (const [tid, t] of after) sum += t - (before.get(tid) ?? 0);
  return sum;
}

/** A field of /proc/PID/status in kB (VmHWM, VmRSS, ...), as MiB; NaN if unavailable. */
export function statusMiB(pid: number, field: "VmHWM" | "VmRSS" | "VmPeak" | "VmSize" | "RssAnon" | "RssFile"): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Threads of the process (to say what "CPU%" can reach: 100 per busy thread). */
export function threads(pid: number): number {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Open file descriptors of the process. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/**
 * Samples the CPU use of `pids` over a stretch of wall time: call stop() at its end. The result
 * is percent of one core per pid (100 = one core busy the whole time). "stat" reads utime+stime
 * from /proc/PID/stat (every thread, dead ones included; 10 ms resolution), "schedstat" the
 * per-thread nanosecond counters (threads that exit during the window lose their share).
 */
export function cpuMeter(pids: number[], source: "stat" | "schedstat" = "stat"): { stop(): number[] } {
  const t0 = performance.now();
  if (source === "schedstat") {
    const before = pids.map(threadCpuSeconds);
    return {
      stop() {
        const wall = (performance.now() - t0) / 1000;
        return pids.map((pid, i) => (threadCpuDelta(before[i], threadCpuSeconds(pid)) / wall) * 100);
      },
    };
  }
  const c0 = pids.map(cpuSeconds);
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      return pids.map((pid, i) => ((cpuSeconds(pid) - c0[i]) / wall) * 100);
    },
  };
}
