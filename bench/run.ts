// The data-plane benchmark: two hosts (network namespaces joined by a veth pair) and, in one
// run, side by side: bare veth, the current wireguard-go <-> itself (the reference every ratio
// is taken against), Debian's wireguard-go <-> itself (a second row, when installed), a socat
// relay without crypto (the floor of any userspace tunnel, when socat is installed), wontun <->
// wontun in WireGuard mode and wontun <-> wontun in its plaintext protocol. For each: iperf3 TCP one flow both ways,
// four flows, UDP with 64-byte payloads, ping RTT, the tunnel processes' CPU during the one-flow
// test, their idle CPU and peak RSS. Every figure is the median of --runs runs, with min–max.
// Each tunnel first carries --warm seconds of TCP, unmeasured, so every kind is measured in its
// steady state (wontun's data path compiled by the JIT, every program's buffers grown).
// Writes bench/results/<timestamp>.json, latest.json and latest.svg. Needs root. See bench/README.md.
//
//   bun bench/run.ts [--runs 3] [--seconds 5] [--only veth,wg-go-current,wg-go,wontun-wg,...]
//                    [--idle 5] [--pings 50] [--warm 2] [--quick] [--out DIR]
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandLine, numberOption } from "./lib/args.ts";
import {
  BINARY,
  RESULTS,
  loadAverage,
  machineInfo,
  toolVersion,
  wasInterrupted,
  withLab,
  type Host,
  type SpawnedProcess,
} from "./lib/lab.ts";
import { iperfTcp, iperfUdp, pingSeries } from "./lib/measure.ts";
import { cpuMeter, statusMiB } from "./lib/proc.ts";
import { fmt, summarize, type Summary } from "./lib/stats.ts";
import { groupedBarChart } from "./lib/svg.ts";
import { KIND_LABELS, KINDS, setupHosts, startTunnel, type Kind, type Tunnel } from "./lib/tunnels.ts";
import { findWireguardGo, referenceNote } from "./lib/wg-go.ts";
import { canRunIntegration } from "../test/helpers/netns.ts";

const HELP = `bun bench/run.ts — throughput, packet rate, latency and CPU of wontun vs wireguard-go vs bare veth

Options:
  --runs N        runs per figure; each figure is the median (default 3)
  --seconds S     length of each iperf3 test (default 5)
  --only LIST     comma-separated subset of: ${KINDS.join(",")}
                  (default all that are available)
  --idle S        idle-CPU window per run (default 5)
  --pings N       pings per run, 10 ms apart (default 50)
  --warm S        unmeasured TCP through each tunnel before the first run (default 2; 0: none)
  --quick         1 run, 1 s tests, 1 s idle window, 10 pings (a smoke run)
  --out DIR       where to write the results (default bench/results)
  --help

Ratios are against wireguard-go (current), the current upstream build (WIREGUARD_GO=PATH names
one; otherwise the one provided next to the repository), with Debian's wireguard-go as a second
row when installed. Without a current build, Debian's is the reference and the output says so.`;

interface MetricDef {
  id: string;
  label: string;
  unit: string;
  better: "higher" | "lower";
  /** Only meaningful for tunnels (no process for bare veth). */
  tunnelOnly?: boolean;
  /** Shown in the table and chart (others are in the JSON only). */
  shown: boolean;
}

/** The paced UDP test's rate (iperf3 -b: payload bits/s): 64-byte datagrams every tunnel here carries without loss. */
const PACED_UDP = "10M";

const METRICS: MetricDef[] = [
  { id: "tcp_fwd", label: "TCP, 1 flow a→b", unit: "Gbit/s", better: "higher", shown: true },
  { id: "tcp_rev", label: "TCP, 1 flow b→a (-R)", unit: "Gbit/s", better: "higher", shown: true },
  { id: "tcp_p4", label: "TCP, 4 flows a→b (-P 4)", unit: "Gbit/s", better: "higher", shown: true },
  { id: "udp64_kpps", label: "UDP 64 B, received", unit: "kpps", better: "higher", shown: true },
  { id: "udp64_loss", label: "UDP 64 B, loss", unit: "%", better: "lower", shown: true },
  { id: "udp64_sent_kpps", label: "UDP 64 B, sent by iperf3", unit: "kpps", better: "higher", shown: false },
  { id: "ping_median", label: "ping RTT, median", unit: "ms", better: "lower", shown: true },
  { id: "ping_p90", label: "ping RTT, p90", unit: "ms", better: "lower", shown: true },
  { id: "cpu_a", label: "CPU, sending end (1 flow a→b)", unit: "% core", better: "lower", tunnelOnly: true, shown: true },
  { id: "cpu_b", label: "CPU, receiving end (1 flow a→b)", unit: "% core", better: "lower", tunnelOnly: true, shown: true },
  { id: "cpu_per_gbit", label: "CPU both ends per Gbit/s (a→b)", unit: "%/Gbps", better: "lower", tunnelOnly: true, shown: true },
  { id: "cpu_udp_paced", label: `CPU both ends, UDP 64 B at ${PACED_UDP} (~20 kpps)`, unit: "% core", better: "lower", tunnelOnly: true, shown: true },
  { id: "udp_paced_loss", label: `UDP 64 B at ${PACED_UDP}, loss`, unit: "%", better: "lower", shown: false },
  { id: "cpu_rev_a", label: "CPU, a end during b→a", unit: "% core", better: "lower", tunnelOnly: true, shown: false },
  { id: "cpu_rev_b", label: "CPU, b end during b→a", unit: "% core", better: "lower", tunnelOnly: true, shown: false },
  { id: "idle_cpu", label: "idle CPU, both ends", unit: "% core", better: "lower", tunnelOnly: true, shown: true },
  { id: "rss_peak", label: "peak RSS (larger end)", unit: "MiB", better: "lower", tunnelOnly: true, shown: true },
];

const COLORS: Record<Kind, string> = {
  veth: "#9e9e9e",
  "wg-go-current": "#1f4e9c",
  "wg-go": "#8fb8de",
  socat: "#4d4d4d",
  "wontun-wg": "#d62728",
  "wontun-plain": "#ff9f1c",
  "wontun-wg-none": "#f7b6b6",
  "wontun-wg-tso": "#ee8383",
  "wontun-wg-tso-gro": "#e35050",
  "wontun-wg-no-uso": "#c44e52",
  "wontun-wg-mtu1420": "#a05195",
  "wontun-wg-no-linger": "#6b4c9a",
  "wontun-wg-byte-csum": "#b39ddb",
  "wontun-wg-verify-csum": "#9575cd",
  "wontun-wg-no-writev": "#7e57c2",
  "wontun-wg-t2": "#8b1e1e",
  "wontun-wg-t2-automq": "#5c1010",
  "wontun-plain-none": "#ffd9a0",
};

// ---- options -------------------------------------------------------------------------------

const opts = commandLine(HELP, ["quick"]);
const quick = opts.has("quick");
const config = {
  runs: numberOption(opts, "runs", quick ? 1 : 3, 1),
  seconds: numberOption(opts, "seconds", quick ? 1 : 5, 1),
  idleSeconds: numberOption(opts, "idle", quick ? 1 : 5, 0.5),
  pings: numberOption(opts, "pings", quick ? 10 : 50, 1),
  warmSeconds: numberOption(opts, "warm", quick ? 0 : 2, 0),
  pingIntervalMs: 10,
  quick,
  kinds: [] as Kind[],
  out: opts.get("out") ?? RESULTS,
};
const wgGo = findWireguardGo();
{
  const explicit = opts.has("only");
  const only = (opts.get("only") ?? KINDS.join(",")).split(",").map((s) => s.trim()).filter(Boolean);
  for (const k of only) {
    if (!(KINDS as readonly string[]).includes(k)) {
      console.error(`--only: unknown kind "${k}" (choose from ${KINDS.join(", ")})`);
      process.exit(2);
    }
  }
  // Kinds whose program is not there (a wireguard-go build, socat): an error when asked for by
  // name, else skipped.
  const absent = (k: string) =>
    (k === "wg-go-current" && !wgGo.current) || (k === "wg-go" && !wgGo.debian) || (k === "socat" && !Bun.which("socat"));
  for (const k of only.filter(absent)) {
    if (explicit) {
      const why = k === "wg-go-current" ? wgGo.notes.join("; ") : k === "socat" ? "socat is not installed" : "no wireguard-go installed";
      console.error(`--only: ${KIND_LABELS[k as Kind]} is not available (${why})`);
      process.exit(1);
    }
  }
  config.kinds = KINDS.filter((k) => only.includes(k) && !absent(k));
  if (config.kinds.length === 0) {
    console.error("--only: nothing selected");
    process.exit(2);
  }
}

// ---- preconditions -------------------------------------------------------------------------

const missing: string[] = [];
if (!canRunIntegration) missing.push("root, /dev/net/tun and iproute2's ip");
for (const tool of ["iperf3", "ping"]) if (!Bun.which(tool)) missing.push(tool);
if (config.kinds.some((k) => k.startsWith("wg-go")) && !wgGo.hasWg) missing.push("wg (to configure wireguard-go)");
if (config.kinds.some((k) => k.startsWith("wontun")) && !existsSync(BINARY)) missing.push(`${BINARY} (run npm run build)`);
if (missing.length) {
  console.error(`bench: cannot run, missing: ${missing.join("; ")}`);
  process.exit(1);
}

// ---- measuring -----------------------------------------------------------------------------

type Runs = Record<string, number[]>;
const progress = (line: string) => process.stderr.write(`${line}\n`);

function pidsOf(t: Tunnel): number[] {
  return t.procs ? [t.procs.a.proc.pid, t.procs.b.proc.pid] : [];
}

function assertAlive(t: Tunnel): void {
  if (!t.procs) return;
  for (const side of ["a", "b"] as const) {
    const p = t.procs[side];
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) {
      throw new Error(`${t.kind}: tunnel process on ${side} died:\n${p.output().slice(-2000)}`);
    }
  }
}

/** CPU of `pids` over the middle of an iperf3 test of `seconds` (skipping its set-up and end). */
async function cpuDuring<T>(pids: number[], seconds: number, work: Promise<T>): Promise<{ result: T; cpu: number[] }> {
  if (pids.length === 0) return { result: await work, cpu: [] };
  const startDelay = Math.min(0.5, seconds * 0.3) * 1000;
  const endAt = (seconds - Math.min(0.2, seconds * 0.1)) * 1000;
  const sampler = (async () => {
    await Bun.sleep(startDelay);
    const meter = cpuMeter(pids);
    await Bun.sleep(endAt - startDelay);
    return meter.stop();
  })();
  const [result, cpu] = await Promise.all([work, sampler]);
  // A tunnel process that carried the transfer used CPU: a reading of 0 (seen once, both ends at
  // once, 2026-11-30) is a failed reading, left out of the medians rather than counted.
  if (cpu.some((c) => !(c > 0))) {
    progress(`  CPU reading of ${cpu.map((c) => fmt(c)).join("/")} % during a transfer: not counted`);
    return { result, cpu: cpu.map(() => Number.NaN) };
  }
  return { result, cpu };
}

class IperfServer {
  private proc: SpawnedProcess | null = null;
  constructor(private readonly host: Host) {}

  async start(): Promise<void> {
    this.proc = this.host.spawn(["iperf3", "-s", "-p", "5201"]);
    await Bun.sleep(300);
  }

  async restart(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await this.proc?.exited;
    await this.start();
  }
}

/** Runs `f`; if it fails, restarts the iperf3 server once and tries again. */
async function withRetry<T>(server: IperfServer, what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (wasInterrupted()) throw e;
    progress(`  ${what} failed (${(e as Error).message.split("\n")[0]}); restarting iperf3 -s and retrying`);
    await server.restart();
    return await f();
  }
}

async function measureKind(t: Tunnel, a: Host, server: IperfServer, runs: Runs): Promise<void> {
  const push = (id: string, v: number) => (runs[id] ??= []).push(v);
  const pids = pidsOf(t);
  const s = config.seconds;
  const addr = t.bAddress;

  const fwd = await withRetry(server, "tcp a→b", () => cpuDuring(pids, s, iperfTcp(a, addr, { seconds: s })));
  push("tcp_fwd", fwd.result.gbps);
  if (pids.length) {
    push("cpu_a", fwd.cpu[0]);
    push("cpu_b", fwd.cpu[1]);
    push("cpu_per_gbit", (fwd.cpu[0] + fwd.cpu[1]) / fwd.result.gbps);
  }
  assertAlive(t);

  const rev = await withRetry(server, "tcp b→a", () => cpuDuring(pids, s, iperfTcp(a, addr, { seconds: s, reverse: true })));
  push("tcp_rev", rev.result.gbps);
  if (pids.length) {
    push("cpu_rev_a", rev.cpu[0]);
    push("cpu_rev_b", rev.cpu[1]);
  }
  assertAlive(t);

  const p4 = await withRetry(server, "tcp -P 4", () => iperfTcp(a, addr, { seconds: s, parallel: 4 }));
  push("tcp_p4", p4.gbps);
  assertAlive(t);

  const udp = await withRetry(server, "udp 64 B", () => iperfUdp(a, addr, { seconds: s, udpPayload: 64 }));
  push("udp64_kpps", udp.receivedPps / 1000);
  push("udp64_sent_kpps", udp.sentPps / 1000);
  push("udp64_loss", udp.lossPercent);
  assertAlive(t);

  // What the same small packets cost at a rate every tunnel carries (the flood above measures
  // how many get through, which iperf3's own server limits as much as the tunnel).
  await Bun.sleep(500);
  const paced = await withRetry(server, "udp 64 B paced", () =>
    cpuDuring(pids, s, iperfUdp(a, addr, { seconds: s, udpPayload: 64, udpBitrate: PACED_UDP })),
  );
  if (pids.length) push("cpu_udp_paced", paced.cpu[0] + paced.cpu[1]);
  push("udp_paced_loss", paced.result.lossPercent);
  assertAlive(t);

  // Let queues left by the UDP tests drain before timing single packets.
  await Bun.sleep(500);
  const ping = await pingSeries(a, addr, config.pings, config.pingIntervalMs);
  push("ping_median", ping.medianMs);
  push("ping_p90", ping.p90Ms);
  assertAlive(t);

  if (pids.length) push("rss_peak", Math.max(...pids.map((pid) => statusMiB(pid, "VmHWM"))));

  progress(
    `  ${t.kind.padEnd(18)} tcp ${fmt(fwd.result.gbps)}/${fmt(rev.result.gbps)} Gbit/s, -P4 ${fmt(p4.gbps)}, ` +
      `udp64 ${fmt(udp.receivedPps / 1000)} kpps (${fmt(udp.lossPercent)}% loss)` +
      (pids.length ? `, paced ${fmt(paced.cpu[0] + paced.cpu[1])}% cpu` : "") +
      `, ping ${fmt(ping.medianMs)}/${fmt(ping.p90Ms)} ms` +
      (pids.length ? `, cpu ${fmt(fwd.cpu[0])}%/${fmt(fwd.cpu[1])}%` : ""),
  );
}

// ---- the run -------------------------------------------------------------------------------

const started = new Date();
const loadBefore = loadAverage();
/** What ratios are taken against: the current wireguard-go, else Debian's. */
const referenceKind: Kind | null = config.kinds.includes("wg-go-current") ? "wg-go-current" : config.kinds.includes("wg-go") ? "wg-go" : null;
const referenceBuild = referenceKind === "wg-go-current" ? wgGo.current : referenceKind === "wg-go" ? wgGo.debian : null;
const referenceLine =
  referenceKind === "wg-go-current"
    ? `reference: ${referenceBuild!.label} ${referenceBuild!.version}` +
      (config.kinds.includes("wg-go") ? `; second row: ${wgGo.debian!.label} ${wgGo.debian!.version}` : "")
    : referenceKind === "wg-go"
      ? wgGo.current
        ? `reference: ${referenceBuild!.label} ${referenceBuild!.version} (wireguard-go (current) not selected)`
        : referenceNote()
      : "no wireguard-go selected: no ratios to wireguard-go";
if (referenceKind === "wg-go" && !wgGo.current) progress(referenceNote());
progress(
  `bench: ${config.kinds.join(", ")}; ${config.runs} run(s) x ${config.seconds} s per test, idle ${config.idleSeconds} s, ` +
    `${config.pings} pings (load average ${fmt(loadBefore)} on ${navigator.hardwareConcurrency} cores)`,
);

const runsByKind: Record<string, Runs> = Object.fromEntries(config.kinds.map((k) => [k, {}]));
const mtus: Record<string, number> = {};
let wontunVersion = "n/a";
if (existsSync(BINARY)) wontunVersion = toolVersion([BINARY, "--version"]);

try {
  await withLab("bench", async (env) => {
    progress(`lab ${env.lab.id}: namespaces ${env.lab.id}-a and ${env.lab.id}-b`);
    const { a, b } = await setupHosts(env);
    const server = new IperfServer(b);
    await server.start();
    const tunnels: Tunnel[] = [];
    for (const kind of config.kinds) {
      progress(`starting ${kind}...`);
      const t = await startTunnel(kind, env, a, b);
      tunnels.push(t);
      mtus[kind] = t.mtu;
    }
    if (config.warmSeconds > 0) {
      progress(`warming up: ${config.warmSeconds} s of TCP through each tunnel`);
      for (const t of tunnels) {
        await withRetry(server, `warm-up ${t.kind}`, () => iperfTcp(a, t.bAddress, { seconds: config.warmSeconds }));
        assertAlive(t);
      }
    }
    for (let run = 1; run <= config.runs; run++) {
      progress(`run ${run}/${config.runs}`);
      // Idle CPU: every tunnel is up, nothing is sent (a moment first for the last test's tail).
      const tunnelsWithProcs = tunnels.filter((t) => t.procs);
      if (tunnelsWithProcs.length) {
        await Bun.sleep(1000);
        const meter = cpuMeter(tunnelsWithProcs.flatMap(pidsOf), "schedstat");
        await Bun.sleep(config.idleSeconds * 1000);
        const cpu = meter.stop();
        tunnelsWithProcs.forEach((t, i) => (runsByKind[t.kind].idle_cpu ??= []).push(cpu[2 * i] + cpu[2 * i + 1]));
      }
      for (const t of tunnels) await measureKind(t, a, server, runsByKind[t.kind]);
    }
  });
} catch (e) {
  if (wasInterrupted()) await new Promise(() => {}); // the signal handler is cleaning up and exits
  console.error(`bench failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
}

// ---- results -------------------------------------------------------------------------------

const results: Record<string, Record<string, Summary>> = {};
for (const kind of config.kinds) {
  results[kind] = {};
  for (const m of METRICS) {
    if (m.tunnelOnly && kind === "veth") continue;
    const runs = runsByKind[kind][m.id] ?? [];
    const s = summarize(runs);
    // VmHWM only grows: the peak is the last (largest) reading, not a median of readings.
    if (m.id === "rss_peak") s.median = s.max;
    results[kind][m.id] = s;
  }
}

const ratio = (kind: Kind, metric: string, ref: Kind): number => {
  const v = results[kind]?.[metric]?.median;
  const r = results[ref]?.[metric]?.median;
  return v !== undefined && r !== undefined && r !== 0 ? v / r : Number.NaN;
};
const ratios: Record<string, Record<string, { vsReference: number | null; vsVeth: number | null }>> = {};
for (const kind of config.kinds) {
  ratios[kind] = {};
  for (const m of METRICS) {
    if (!results[kind][m.id]) continue;
    const w = referenceKind ? ratio(kind, m.id, referenceKind) : Number.NaN;
    const v = ratio(kind, m.id, "veth");
    ratios[kind][m.id] = { vsReference: Number.isFinite(w) ? w : null, vsVeth: Number.isFinite(v) ? v : null };
  }
}

const finished = new Date();
const report = {
  schema: "wontun-bench/1",
  date: started.toISOString(),
  durationSeconds: Math.round((finished.getTime() - started.getTime()) / 1000),
  command: ["bun", "bench/run.ts", ...process.argv.slice(2)].join(" "),
  options: config,
  machine: { ...machineInfo(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
  tools: {
    wontun: wontunVersion,
    /** Versions only (never paths): the current build and Debian's, null when absent. */
    wireguardGoCurrent: wgGo.current?.version ?? null,
    wireguardGoDebian: wgGo.debian?.version ?? null,
    iperf3: toolVersion(["iperf3", "--version"]),
    ping: toolVersion(["ping", "-V"]),
  },
  topology:
    "two network namespaces a (192.0.2.2, iperf3 client) and b (192.0.2.1, iperf3 server) joined by one veth pair; " +
    "every tunnel runs between them over that veth; all selected tunnels are up during the whole run",
  /** The kind every vsReference ratio divides by, and what it is. */
  reference: referenceKind ? { kind: referenceKind, label: KIND_LABELS[referenceKind], version: referenceBuild?.version ?? null } : null,
  referenceNote: referenceLine,
  kinds: config.kinds.map((k) => ({ id: k, label: KIND_LABELS[k], innerMtu: mtus[k] ?? null })),
  metrics: METRICS.map(({ id, label, unit, better, shown }) => ({ id, label, unit, better, shown })),
  results,
  ratios,
};

// The table: per metric, one line per kind with median, spread and the two ratios.
const lines: string[] = [];
const has = (k: Kind) => config.kinds.includes(k);
const labelWidth = Math.max(20, ...config.kinds.map((k) => KIND_LABELS[k].length + 1));
const refTag = referenceKind === "wg-go-current" ? "×wg-cur" : "×wg-deb";
const refCols = [referenceKind ? `${refTag} = ÷ ${KIND_LABELS[referenceKind]}` : "", has("veth") ? "×veth = ÷ bare veth" : ""].filter(Boolean);
lines.push(
  `wontun bench ${report.date}: ${config.runs} run(s) x ${config.seconds} s, median (min–max)` +
    (refCols.length ? `; ratios = value ÷ reference (${refCols.join(", ")})` : ""),
  referenceLine,
);
for (const m of METRICS.filter((m) => m.shown)) {
  lines.push("", `${m.label} [${m.unit}, ${m.better} is better]`);
  for (const kind of config.kinds) {
    const s = results[kind][m.id];
    if (!s) continue;
    const spread = config.runs > 1 && m.id !== "rss_peak" ? `(${fmt(s.min)}–${fmt(s.max)})` : "";
    const cols = [`  ${KIND_LABELS[kind].padEnd(labelWidth)}`, fmt(s.median).padStart(8), spread.padEnd(18)];
    if (referenceKind) cols.push(`${fmt(ratio(kind, m.id, referenceKind))}${refTag}`.padStart(14));
    if (has("veth") && !m.tunnelOnly) cols.push(`${fmt(ratio(kind, m.id, "veth"))}×veth`.padStart(12));
    lines.push(cols.join(" "));
  }
}
const table = lines.join("\n");
console.log(table);

mkdirSync(config.out, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, "-");
const json = `${JSON.stringify({ ...report, table }, null, 2)}\n`;
const jsonFile = join(config.out, `${stamp}.json`);
writeFileSync(jsonFile, json);
writeFileSync(join(config.out, "latest.json"), json);

const reference: Kind = referenceKind ?? config.kinds.find((k) => k !== "veth") ?? config.kinds[0];
const svg = groupedBarChart({
  title:
    referenceKind === "wg-go-current"
      ? `wontun vs wireguard-go (current ${wgGo.current!.version}${has("wg-go") ? ` and Debian's ${wgGo.debian!.version}` : ""}) vs bare veth`
      : referenceKind === "wg-go"
        ? `wontun vs Debian's wireguard-go ${wgGo.debian!.version} (no current build found) vs bare veth`
        : "wontun vs bare veth",
  subtitle:
    `${report.date.slice(0, 16).replace("T", " ")} UTC, ${navigator.hardwareConcurrency} cores, kernel ${report.machine.kernel}; ` +
    `median of ${config.runs} run(s) x ${config.seconds} s, whiskers min–max`,
  series: config.kinds.map((k) => ({ key: k, label: KIND_LABELS[k], color: COLORS[k] })),
  reference,
  valueFormat: fmt,
  groups: METRICS.filter((m) => m.shown).map((m) => ({
    label: m.label,
    unit: m.unit,
    better: m.better,
    values: Object.fromEntries(config.kinds.filter((k) => results[k][m.id]).map((k) => [k, results[k][m.id]])),
  })),
});
writeFileSync(join(config.out, "latest.svg"), svg);
console.log(`\nwrote ${jsonFile}, ${join(config.out, "latest.json")}, ${join(config.out, "latest.svg")}`);
