// The lab for integration tests: throwaway network namespaces ("hosts") joined by veth pairs,
// with every process started in them tracked so that cleanup leaves nothing behind, even when
// a test fails or the test process exits early. Nothing here touches the root namespace's
// interfaces or routes: veth pairs are created inside the namespaces themselves.
import { existsSync } from "node:fs";

const IP = Bun.which("ip");

/** True when integration tests can run here: root, /dev/net/tun, and iproute2's `ip`. */
export const canRunIntegration: boolean =
  process.getuid?.() === 0 && existsSync("/dev/net/tun") && IP !== null;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SpawnedProcess {
  proc: Bun.Subprocess;
  /** Everything written to stdout and stderr so far, interleaved as it arrived. */
  output(): string;
  kill(signal?: NodeJS.Signals | number): void;
  exited: Promise<number>;
}

export interface Host {
  /** The network namespace name, `${lab.id}-${short}`. */
  name: string;
  short: string;
  /** Runs `cmd` inside the namespace to completion (default timeout 10 s, then SIGKILL). */
  run(cmd: string[], opts?: { timeoutMs?: number; stdin?: string }): Promise<RunResult>;
  /** Starts a long-running `cmd` inside the namespace; the lab stops it on cleanup. */
  spawn(cmd: string[], opts?: { env?: Record<string, string> }): SpawnedProcess;
  /** `ip -n NAME ARGS...` (args split on whitespace); throws with stderr on failure. */
  ip(args: string): Promise<string>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `pred` every 100 ms until it returns true; throws `timed out waiting for ${what}`. */
export async function waitFor(
  pred: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await pred()) return;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? ` (last check threw: ${lastError instanceof Error ? lastError.message : String(lastError)})` : "";
      throw new Error(`timed out waiting for ${what}${why}`);
    }
    await sleep(100);
  }
}

/** Runs a command outside any lab namespace (for `ip netns add/del/pids`, `ip -n`, `tc -n`). */
async function exec(cmd: string[], opts: { timeoutMs?: number; stdin?: string } = {}): Promise<RunResult> {
  const proc = Bun.spawn(cmd, {
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs ?? 10_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return {
    code,
    stdout,
    stderr: timedOut ? `${stderr}\n[killed after ${opts.timeoutMs ?? 10_000} ms]` : stderr,
  };
}

async function mustExec(cmd: string[]): Promise<string> {
  const r = await exec(cmd);
  if (r.code !== 0) throw new Error(`\`${cmd.join(" ")}\` failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Reads a stream into `sink` as it arrives, so the text is available before the process ends. */
async function drain(stream: ReadableStream<Uint8Array>, sink: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
  } catch {
    // the process went away; whatever arrived is kept
  }
  sink(decoder.decode());
}

export class Lab {
  readonly hosts: Host[] = [];
  private readonly namespaces: string[] = [];
  private readonly procs = new Set<Bun.Subprocess>();
  private readonly ifNames = new Map<string, Set<string>>(); // netns -> interface names used
  private cleaned = false;
  private readonly onExit = () => this.cleanupSync();
  private readonly sentinelPid: number;

  private constructor(
    /** Prefix of every namespace of this lab, `wt` + 4 hex digits. */
    readonly id: string,
    /** What the lab is for (shown in failure messages only). */
    readonly tag: string,
  ) {
    // Two safety nets for labs a test forgot (or never got) to clean up:
    // - process "exit" handler: runs on process.exit(), but `bun test` does NOT emit "exit"
    //   when it simply finishes its files;
    // - a detached sentinel shell that waits for this process to die (however it dies,
    //   SIGKILL included), then kills what is left in the lab's namespaces and deletes them.
    process.on("exit", this.onExit);
    const script = [
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 0.5; done`,
      `for ns in $(ip netns list | cut -d' ' -f1 | grep '^${id}-'); do`,
      `  for pid in $(ip netns pids "$ns"); do kill -9 "$pid"; done`,
      `  ip netns del "$ns"`,
      `done`,
    ].join("\n");
    // Started through an intermediate shell that exits at once: `bun test` kills the
    // subprocesses of a test that times out, and the sentinel must survive exactly that.
    // detached: own session, so a Ctrl-C to the test run does not reach it either.
    const starter = Bun.spawnSync(["sh", "-c", `sh -c "$0" </dev/null >/dev/null 2>&1 & echo $!`, script], {
      stdio: ["ignore", "pipe", "ignore"],
      detached: true,
    });
    this.sentinelPid = Number(starter.stdout.toString().trim()) || 0;
  }

  /** `prefix` (default "wt") starts every namespace name, so concurrent suites can tell theirs apart. */
  static async create(tag: string, prefix = "wt"): Promise<Lab> {
    if (!canRunIntegration) throw new Error("Lab needs root, /dev/net/tun and `ip` (check canRunIntegration)");
    const existing = await mustExec(["ip", "netns", "list"]);
    for (;;) {
      const id = `${prefix}${crypto.getRandomValues(new Uint8Array(2)).reduce((s, b) => s + b.toString(16).padStart(2, "0"), "")}`;
      if (!existing.split("\n").some((line) => line.startsWith(`${id}-`))) return new Lab(id, tag);
    }
  }

  /** A new namespace `${id}-${short}` with lo up. */
  async host(short: string): Promise<Host> {
    if (this.cleaned) throw new Error(`lab ${this.id} (${this.tag}) is already cleaned up`);
    if (!/^[a-z0-9][a-z0-9_-]*$/i.test(short)) throw new Error(`bad host name "${short}"`);
    const name = `${this.id}-${short}`;
    await mustExec(["ip", "netns", "add", name]);
    this.namespaces.push(name);
    this.ifNames.set(name, new Set(["lo"]));
    await mustExec(["ip", "-n", name, "link", "set", "lo", "up"]);
    const lab = this;
    const host: Host = {
      name,
      short,
      async run(cmd, opts = {}) {
        const timeoutMs = opts.timeoutMs ?? 10_000;
        const proc = Bun.spawn(["ip", "netns", "exec", name, ...cmd], {
          stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
          stdout: "pipe",
          stderr: "pipe",
        });
        lab.procs.add(proc);
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          proc.kill("SIGKILL");
        }, timeoutMs);
        try {
          const [stdout, stderr, code] = await Promise.all([
            new Response(proc.stdout).text(),
            new Response(proc.stderr).text(),
            proc.exited,
          ]);
          return { code, stdout, stderr: timedOut ? `${stderr}\n[killed after ${timeoutMs} ms]` : stderr };
        } finally {
          clearTimeout(timer);
          lab.procs.delete(proc);
        }
      },
      spawn(cmd, opts = {}) {
        if (lab.cleaned) throw new Error(`lab ${lab.id} (${lab.tag}) is already cleaned up`);
        // `ip netns exec` execs the command in place, so proc.pid is the command's own pid.
        const proc = Bun.spawn(["ip", "netns", "exec", name, ...cmd], {
          stdin: "ignore",
          stdout: "pipe",
          stderr: "pipe",
          env: { ...process.env, ...opts.env },
        });
        lab.procs.add(proc);
        let text = "";
        const append = (s: string) => { text += s; };
        const drained = Promise.all([drain(proc.stdout, append), drain(proc.stderr, append)]);
        const exited = proc.exited.then(async (code) => {
          await drained;
          return code;
        });
        return {
          proc,
          output: () => text,
          kill: (signal) => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          },
          exited,
        };
      },
      async ip(args) {
        return mustExec(["ip", "-n", name, ...args.trim().split(/\s+/)]);
      },
    };
    this.hosts.push(host);
    return host;
  }

  /**
   * A veth pair between `a` and `b` (created inside the namespaces), with `aCidr`/`bCidr`
   * ("192.0.2.1/24"; "" for none) assigned and both ends up. Interface names are `to-${peer}`
   * (plus a number if there is more than one link to the same peer), at most 15 bytes.
   */
  async link(a: Host, aCidr: string, b: Host, bCidr: string, opts: { mtu?: number } = {}): Promise<{ aIf: string; bIf: string }> {
    const aIf = this.ifName(a.name, `to-${b.short}`);
    const bIf = this.ifName(b.name, `to-${a.short}`);
    await mustExec(["ip", "-n", a.name, "link", "add", "name", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name]);
    for (const [host, ifname, cidr] of [[a, aIf, aCidr], [b, bIf, bCidr]] as const) {
      if (cidr) {
        const extra = cidr.includes(":") ? ["nodad"] : [];
        await mustExec(["ip", "-n", host.name, "addr", "add", cidr, "dev", ifname, ...extra]);
      }
      const mtu = opts.mtu === undefined ? [] : ["mtu", String(opts.mtu)];
      await mustExec(["ip", "-n", host.name, "link", "set", ifname, ...mtu, "up"]);
    }
    return { aIf, bIf };
  }

  private ifName(netns: string, base: string): string {
    const used = this.ifNames.get(netns);
    if (!used) throw new Error(`${netns} is not a host of lab ${this.id}`);
    const stem = base.slice(0, 12);
    let name = base.slice(0, 15);
    for (let n = 1; used.has(name); n++) name = `${stem}${n}`;
    used.add(name);
    return name;
  }

  /**
   * Stops every process started through the hosts (SIGTERM, up to 2 s, then SIGKILL), kills
   * anything else still inside the namespaces, and deletes them. Safe to call more than once.
   */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    const running = [...this.procs].filter((p) => p.exitCode === null && p.signalCode === null);
    for (const p of running) p.kill("SIGTERM");
    await Promise.race([Promise.all(running.map((p) => p.exited)), sleep(2000)]);
    for (const p of running) {
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
    await Promise.all(running.map((p) => p.exited));
    this.procs.clear();
    for (const ns of this.namespaces) {
      // Processes the tracked ones left behind (children, daemons) would keep the namespace
      // and its interfaces alive after `ip netns del`.
      const pids = await exec(["ip", "netns", "pids", ns]);
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
        try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
      }
      await exec(["ip", "netns", "del", ns]);
    }
    this.namespaces.length = 0;
    process.off("exit", this.onExit);
    this.stopSentinel();
  }

  private stopSentinel(): void {
    if (this.sentinelPid > 0) {
      try { process.kill(this.sentinelPid, "SIGTERM"); } catch { /* gone */ }
    }
  }

  /** Last-resort cleanup from process.on("exit"): synchronous, SIGKILL only. */
  private cleanupSync(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const p of this.procs) {
      try { p.kill("SIGKILL"); } catch { /* gone */ }
    }
    for (const ns of this.namespaces) {
      const pids = Bun.spawnSync(["ip", "netns", "pids", ns]).stdout.toString();
      for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
        try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      }
      Bun.spawnSync(["ip", "netns", "del", ns]);
    }
    this.stopSentinel();
  }
}

// --- packet loss --------------------------------------------------------------------------

let netemKnown: boolean | undefined;

/**
 * Whether the kernel has the netem qdisc (CONFIG_NET_SCH_NETEM). Checked once, in a
 * throwaway network namespace made by `unshare --net`.
 */
export function hasNetem(): boolean {
  if (netemKnown === undefined) {
    const r = Bun.spawnSync(["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]);
    netemKnown = r.exitCode === 0;
  }
  return netemKnown;
}

export type ImpairMethod = "netem" | "bpf-drop";

const LOSS_ONLY = /^\s*loss\s+(?:random\s+)?(\d+(?:\.\d+)?)%\s*$/;
const BLACKHOLE = ["wtlossbh0", "wtlossbh1"] as const;

/**
 * Impairs egress of `ifname` in `host`: `tc qdisc replace dev IF root netem SPEC`
 * (e.g. spec "loss 30%", "delay 20ms loss 5%").
 *
 * Kernels without netem (like this project's test machines) get a fallback for plain
 * "loss N%" specs: a classic-BPF tc filter on the clsact egress hook that picks packets with
 * the kernel's per-packet random number and redirects them into a veth pair that discards
 * them. Other specs then throw. Returns which mechanism was used.
 */
export async function netem(host: Host, ifname: string, spec: string): Promise<ImpairMethod> {
  if (hasNetem()) {
    await mustExec(["tc", "-n", host.name, "qdisc", "replace", "dev", ifname, "root", "netem", ...spec.trim().split(/\s+/)]);
    return "netem";
  }
  const m = LOSS_ONLY.exec(spec);
  if (!m) {
    throw new Error(
      `netem is not available in this kernel (CONFIG_NET_SCH_NETEM is off); only "loss N%" can be emulated, not "${spec}"`,
    );
  }
  await setRandomLoss(host, ifname, Number(m[1]));
  return "bpf-drop";
}

/** Removes what netem() installed on `ifname`. */
export async function clearNetem(host: Host, ifname: string): Promise<void> {
  if (hasNetem()) {
    await exec(["tc", "-n", host.name, "qdisc", "del", "dev", ifname, "root"]);
  } else {
    await exec(["tc", "-n", host.name, "qdisc", "del", "dev", ifname, "clsact"]);
  }
}

async function setRandomLoss(host: Host, ifname: string, percent: number): Promise<void> {
  if (!(percent >= 0 && percent <= 100)) throw new Error(`loss ${percent}% is not in 0-100%`);
  const tc = ["tc", "-n", host.name];
  const [bh0, bh1] = BLACKHOLE;
  if ((await exec(["ip", "-n", host.name, "link", "show", bh0])).code !== 0) {
    await mustExec(["ip", "-n", host.name, "link", "add", "name", bh0, "type", "veth", "peer", "name", bh1]);
    for (const dev of BLACKHOLE) {
      // No IPv6 link-local addresses: the pair should stay silent.
      await mustExec(["ip", "-n", host.name, "link", "set", dev, "addrgenmode", "none"]);
      await mustExec(["ip", "-n", host.name, "link", "set", dev, "up"]);
    }
  }
  await mustExec([...tc, "qdisc", "replace", "dev", ifname, "clsact"]);
  await exec([...tc, "filter", "del", "dev", ifname, "egress"]);
  if (percent === 0) return;
  // Classic BPF, as "count,code jt jf k,...":
  //   ld  rand                (BPF_LD|BPF_W|BPF_ABS, k = SKF_AD_OFF + SKF_AD_RANDOM = -0x1000 + 56)
  //   jge #threshold, pass    (BPF_JMP|BPF_JGE|BPF_K: jt skips one instruction)
  //   ret #-1                 (match: run the action, i.e. drop)
  //   ret #0                  (no match: packet goes on)
  const threshold = Math.round((percent / 100) * 2 ** 32);
  const program = threshold >= 2 ** 32
    ? "1,6 0 0 4294967295"
    : `4,32 0 0 ${(-0x1000 + 56) >>> 0},53 1 0 ${threshold},6 0 0 4294967295,6 0 0 0`;
  await mustExec([
    ...tc, "filter", "add", "dev", ifname, "egress", "bpf", "bytecode", program,
    "action", "mirred", "egress", "redirect", "dev", bh0,
  ]);
}
