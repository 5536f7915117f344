// The benchmarks' lab: the test suite's namespaces (test/helpers/netns.ts) plus what a long,
// interruptible run needs on top: cleanup on Ctrl-C / SIGTERM / errors, the stale wireguard-go
// control sockets, and starting wontun the way a user would (no debug logging on the data path).
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { Lab, waitFor, type Host, type SpawnedProcess } from "../../test/helpers/netns.ts";
import { ConfigDir } from "../../test/helpers/wontun-node.ts";

export { Lab, waitFor, ConfigDir, type Host, type SpawnedProcess };

export const REPO = resolve(import.meta.dir, "../..");
export const BINARY = join(REPO, "dist/wontun");
export const RESULTS = join(REPO, "bench/results");

/**
 * Namespaces are named "<prefix><4 hex>-<host>"; BENCH_LAB_PREFIX (letters and digits, at most 4)
 * sets the prefix, default "wt". Interface names start with the same lab id (ifName), so the
 * control sockets in /var/run/wireguard of concurrent runs never clash.
 */
const LAB_PREFIX = /^[a-z][a-z0-9]{0,3}$/.test(process.env.BENCH_LAB_PREFIX ?? "") ? process.env.BENCH_LAB_PREFIX! : "wt";

/** An interface name unique to this run: the lab id and `suffix` (at most 15 characters). */
export function ifName(lab: Lab, suffix: string): string {
  const name = `${lab.id}${suffix}`;
  if (name.length > 15 || !/^[a-z0-9-]+$/i.test(name)) throw new Error(`interface name "${name}" too long or invalid`);
  return name;
}

const cleanups: Array<() => Promise<void> | void> = [];
/** Cleanups that withLab started itself (the body ended) and that a signal must not cut short. */
const inflight = new Set<Promise<void>>();
let interrupted = false;
let handlersInstalled = false;

/** True once SIGINT/SIGTERM arrived: measurements in flight may fail, and that is expected. */
export function wasInterrupted(): boolean {
  return interrupted;
}

async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const f = cleanups.pop()!;
    try {
      await f();
    } catch (e) {
      console.error(`cleanup: ${(e as Error).message}`);
    }
  }
}

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (interrupted) return; // cleanup is already running
      interrupted = true;
      console.error(`\n${signal}: stopping, removing namespaces and processes...`);
      Promise.all([runCleanups(), ...inflight]).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
    });
  }
}

export interface BenchLab {
  lab: Lab;
  dir: ConfigDir;
  /** Registers something to undo at the end (runs before the lab is removed). */
  onCleanup(f: () => Promise<void> | void): void;
}

/**
 * Runs `body` with a fresh lab and config directory, and removes both afterwards: when `body`
 * returns or throws, on SIGINT/SIGTERM/SIGHUP, and (through the lab's sentinel) even when this
 * process is killed outright.
 */
export async function withLab<T>(tag: string, body: (env: BenchLab) => Promise<T>): Promise<T> {
  installSignalHandlers();
  const lab = await Lab.create(tag, LAB_PREFIX);
  const dir = new ConfigDir();
  const sentinel = startSentinel(lab.id, dir.path);
  const own: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const f of own.reverse()) {
      try {
        await f();
      } catch (e) {
        console.error(`cleanup: ${(e as Error).message}`);
      }
    }
    await lab.cleanup();
    removeLabSockets(lab.id);
    dir.remove();
    stopSentinel(sentinel);
  };
  cleanups.push(cleanup);
  try {
    return await body({ lab, dir, onCleanup: (f) => own.push(f) });
  } finally {
    const i = cleanups.indexOf(cleanup);
    if (i >= 0) {
      cleanups.splice(i, 1);
      const done = cleanup();
      inflight.add(done);
      await done;
      inflight.delete(done);
    }
  }
}

/**
 * The lab's own sentinel removes the namespaces and their processes if this process is killed
 * outright (SIGKILL); this one removes what lives outside them: the control sockets of wireguard-go
 * and wontun (interfaces named after the lab id by ifName) and the config directory with its keys.
 */
function startSentinel(labId: string, dirPath: string): number {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 0.5; done`,
    "sleep 1", // the lab's sentinel kills wireguard-go first
    `rm -f /var/run/wireguard/${labId}*.sock`,
    `rm -rf '${dirPath}'`,
  ].join("\n");
  const starter = Bun.spawnSync(["sh", "-c", `sh -c "$0" </dev/null >/dev/null 2>&1 & echo $!`, script], {
    stdio: ["ignore", "pipe", "ignore"],
    detached: true,
  });
  return Number(starter.stdout.toString().trim()) || 0;
}

function stopSentinel(pid: number): void {
  if (pid > 0) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
}

/** Control sockets of this lab's interfaces left behind by processes that were killed. */
function removeLabSockets(labId: string): void {
  const dir = "/var/run/wireguard";
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) if (f.startsWith(labId) && f.endsWith(".sock")) rmSync(join(dir, f), { force: true });
}

/** wireguard-go leaves its control socket behind when it is killed: remove ours. */
export function removeWgSocket(ifname: string): void {
  const sock = `/var/run/wireguard/${ifname}.sock`;
  if (existsSync(sock)) rmSync(sock, { force: true });
}

/** Starts `dist/wontun up CONFIG` in `host` and waits for its "running" line. */
export async function startWontunBench(
  host: Host,
  config: string,
  opts: { logLevel?: string; timeoutMs?: number; binary?: string; args?: string[]; env?: Record<string, string> } = {},
): Promise<{ proc: SpawnedProcess; startMs: number }> {
  const t0 = performance.now();
  const proc = host.spawn([opts.binary ?? BINARY, "up", config, "--log-level", opts.logLevel ?? "info", ...(opts.args ?? [])], { env: opts.env });
  let exited = false;
  proc.exited.then(() => (exited = true));
  await waitForFast(() => {
    if (exited) throw new Error(`wontun exited early:\n${proc.output()}`);
    return proc.output().includes("running");
  }, opts.timeoutMs ?? 30_000, `wontun in ${host.short} to start`);
  return { proc, startMs: performance.now() - t0 };
}

/** waitFor with a 5 ms poll (waitFor polls every 100 ms: too coarse to time a start-up). */
export async function waitForFast(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (pred()) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** `cmd --version`-style probe: the first line of its output, or "unknown". */
export function toolVersion(cmd: string[]): string {
  try {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    const text = `${r.stdout.toString()}${r.stderr.toString()}`.trim();
    return text.split("\n")[0]?.trim() || "unknown";
  } catch {
    return "unknown";
  }
}

/** The machine, for the results' metadata. */
export function machineInfo(): { kernel: string; cpu: string; cores: number; bun: string } {
  let cpu = "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) cpu = m[1];
  } catch {
    /* not Linux */
  }
  return {
    kernel: toolVersion(["uname", "-r"]),
    cpu,
    cores: navigator.hardwareConcurrency,
    bun: Bun.version,
  };
}

/** Host-wide load right now (1-minute load average), to flag a busy machine in the output. */
export function loadAverage(): number {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}
