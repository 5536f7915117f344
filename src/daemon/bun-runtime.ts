// Runtime settings a daemon wants from Bun that Bun takes only from the environment, at start-up.
//
// Bun's GC timer: once per second of event-loop time Bun asks JavaScriptCore for a collection
// whenever the heap's block count changed since it last looked, and it keeps that pace while the
// heap keeps changing. An idle daemon's device loop visits Bun's event loop once every 10 s, each
// visit allocates a little, so every visit found a changed heap and paid a collection: 1.5-4 ms
// of CPU across threads each time, for as long as the tunnel idles (bench/README.md, idle CPU).
// BUN_GC_TIMER_DISABLE turns that timer off. JavaScriptCore's own collections (driven by
// allocation) and the device's compaction after handshakes (Housekeeping) still run.
//
// Bun reads the variable when its VM starts, before any of our code runs. So a daemon started
// without it starts again with it: execve(2) of the same executable with the same arguments,
// which keeps the pid (systemd, wg-quick and shells go on tracking the same process) and costs
// one more start of the runtime (~60-80 ms: bench/scale.ts --only startup).
//
// WONTUN_BUN_GC_TIMER=on keeps Bun's timer (no restart), to compare.
import { ptr } from "bun:ffi";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { libc } from "../sys/libc.ts";

export const GC_TIMER_ENV = "BUN_GC_TIMER_DISABLE";
export const KEEP_GC_TIMER_ENV = "WONTUN_BUN_GC_TIMER";

/** What a daemon started now should add to its environment (nothing if it is there already). */
export function daemonRuntimeEnvironment(): Record<string, string> {
  if (process.env[GC_TIMER_ENV] !== undefined || process.env[KEEP_GC_TIMER_ENV] === "on") return {};
  return { [GC_TIMER_ENV]: "1" };
}

/**
 * Replaces this process with itself started with the daemon's runtime settings, unless they are
 * set already (or WONTUN_BUN_GC_TIMER=on). Returns only if nothing was to be done or execve
 * failed (the daemon then runs with Bun's defaults; the reason is returned for a debug line).
 * Call it before anything with side effects: the arguments are read again from the start.
 */
export function restartWithDaemonRuntime(): string | null {
  const wanted = Object.entries(daemonRuntimeEnvironment());
  if (wanted.length === 0) return null;
  let argv: string[];
  let env: string[];
  try {
    // The arguments and environment byte for byte as this process got them (latin1 keeps every
    // byte; process.argv is Bun's rewrite of the arguments).
    argv = nulSeparated(readFileSync("/proc/self/cmdline", "latin1"));
    env = nulSeparated(readFileSync("/proc/self/environ", "latin1"));
  } catch (e) {
    return `cannot read this process's arguments: ${(e as Error).message}`;
  }
  for (const [k, v] of wanted) env.push(`${k}=${v}`);
  const strings = [...argv, ...env].map((s) => Buffer.from(`${s}\0`, "latin1"));
  // Two NULL-terminated arrays of pointers: argv's, then envp's.
  const pointers = new BigUint64Array(strings.length + 2);
  strings.forEach((s, i) => (pointers[i < argv.length ? i : i + 1] = BigInt(ptr(s))));
  // By its path, not /proc/self/exe: the process's name (ps, pgrep, top) comes from the path.
  const exe = Buffer.from(`${executablePath()}\0`, "latin1");
  libc.execve(ptr(exe), ptr(pointers), ptr(pointers, (argv.length + 1) * 8));
  return "execve failed; Bun's GC timer stays on";
}

function nulSeparated(text: string): string[] {
  const parts = text.split("\0");
  if (parts.at(-1) === "") parts.pop();
  return parts;
}

/** This process's executable: its path, or /proc/self/exe if that path is gone (replaced by an upgrade). */
function executablePath(): string {
  try {
    const path = readlinkSync("/proc/self/exe", "latin1");
    if (existsSync(path)) return path;
  } catch {
    // fall through
  }
  return "/proc/self/exe";
}
