// Control-plane figures of the WireGuard userspace API, wontun against wireguard-go side by side
// in one run (see bench/README.md, "npm run bench:control"):
//   1. `get=1` on a daemon with N peers (default 1000): time per request over the raw control
//      socket and through `wg show IFACE dump`, answer size, daemon RSS;
//   2. adding those N peers one `wg set IFACE peer ...` at a time: total and per peer, RSS;
//   3. iperf3 TCP through a two-host tunnel whose receiving end is that N-peer daemon, with and
//      without `wg show IFACE` polling it every 100 ms.
// Writes bench/results/control-<timestamp>.json and control-latest.json. Needs root.
//
//   bun bench/control.ts [--peers 1000] [--gets 50] [--dumps 20] [--runs 3] [--seconds 5]
//                        [--poll-ms 100] [--only wontun,wg-go,wg-go-current] [--quick] [--out DIR]
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { canRunIntegration } from "../test/helpers/netns.ts";
import { newKeys, type WgKeys } from "../test/helpers/wireguard.ts";
import { commandLine, numberOption } from "./lib/args.ts";
import { startDaemon, stopDaemon, socketPath, wasInterrupted, withControlLab, type Host, type SpawnedProcess } from "./lib/control-lab.ts";
import { uapiRequest } from "./lib/control-uapi.ts";
import { BINARY, REPO, RESULTS, loadAverage, machineInfo, toolVersion } from "./lib/lab.ts";
import { iperfTcp } from "./lib/measure.ts";
import { cpuMeter, statusMiB } from "./lib/proc.ts";
import { fmt, quantile, summarize, type Summary } from "./lib/stats.ts";

const HELP = `bun bench/control.ts — WireGuard userspace API: get=1, wg set, data path under wg show polling

Options:
  --peers N        peers added to the daemon under test (default 1000)
  --gets N         timed get=1 requests over the raw socket (default 50)
  --dumps N        timed \`wg show IFACE dump\` runs (default 20)
  --runs N         iperf3 runs per implementation and case (default 3)
  --seconds S      length of each iperf3 run (default 5)
  --poll-ms MS     interval of the \`wg show IFACE\` poll during the data-path test (default 100)
  --only LIST      implementations, comma-separated: wontun, wg-go, wg-go-current (default: all found)
  --quick          a fast pass for checking the harness (100 peers, 10 gets, 1 run of 2 s)
  --out DIR        where to write results (default bench/results)
  --help

Environment: WIREGUARD_GO=PATH runs that binary as "wireguard-go (current)"; WONTUN=PATH runs
that executable as wontun (default dist/wontun).`;

const opts = commandLine(HELP, ["quick"]);
const quick = opts.has("quick");
const config = {
  peers: numberOption(opts, "peers", quick ? 100 : 1000, 1),
  gets: numberOption(opts, "gets", quick ? 10 : 50, 1),
  dumps: numberOption(opts, "dumps", quick ? 5 : 20, 1),
  runs: numberOption(opts, "runs", quick ? 1 : 3, 1),
  seconds: numberOption(opts, "seconds", quick ? 2 : 5, 1),
  pollMs: numberOption(opts, "poll-ms", 100, 10),
  out: opts.get("out") ?? RESULTS,
  quick,
};
if (config.peers > 65_000) {
  console.error("--peers must be at most 65000 (they get /32s in 10.200.0.0/16)");
  process.exit(2);
}

// ---- the implementations -----------------------------------------------------------------

interface Impl {
  id: "wontun" | "wg-go" | "wg-go-current";
  label: string;
  version: string;
  binary: string;
}

const versionOf = (binary: string) => /v?(\d+\.\d+\.\d+)/.exec(toolVersion([binary, "--version"]))?.[1] ?? "unknown";

function implementations(): Impl[] {
  const found: Impl[] = [];
  const wontun = process.env.WONTUN || BINARY;
  if (existsSync(wontun)) found.push({ id: "wontun", label: "wontun", version: versionOf(wontun), binary: wontun });
  const debian = "/usr/bin/wireguard-go";
  if (existsSync(debian)) found.push({ id: "wg-go", label: "wireguard-go (Debian)", version: versionOf(debian), binary: debian });
  // The current upstream build, when one was provided next to the repository (or named).
  const current = process.env.WIREGUARD_GO || join(REPO, "../shared/ref/wireguard-go");
  if (existsSync(current)) found.push({ id: "wg-go-current", label: "wireguard-go (current)", version: versionOf(current), binary: current });
  const only = opts.get("only")?.split(",").map((s) => s.trim());
  return only ? found.filter((i) => only.includes(i.id)) : found;
}

const impls = implementations();
const missing: string[] = [];
if (!canRunIntegration) missing.push("root, /dev/net/tun and iproute2's ip");
if (!Bun.which("wg")) missing.push("wg (wireguard-tools)");
if (!Bun.which("iperf3")) missing.push("iperf3");
if (impls.length === 0) missing.push("an implementation (dist/wontun: npm run build; wireguard-go)");
if (missing.length) {
  console.error(`bench:control: cannot run, missing: ${missing.join("; ")}`);
  process.exit(1);
}

const t0 = performance.now();
const progress = (line: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}\n`);

// ---- helpers -----------------------------------------------------------------------------

/** Runs `wg ARGS` and returns its wall time in ms. `wg` needs no namespace: it only talks to
 *  the daemon's control socket in /var/run/wireguard. */
async function wg(args: string[], stdin?: string): Promise<{ ms: number; stdout: string }> {
  const start = performance.now();
  const p = Bun.spawn(["wg", ...args], {
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const ms = performance.now() - start;
  if (code !== 0) throw new Error(`wg ${args.slice(0, 3).join(" ")} …: exit ${code}: ${stderr.trim().split("\n")[0] || stdout.trim()}`);
  return { ms, stdout };
}

const setPrivateKey = (ifname: string, keys: WgKeys, port: number) =>
  wg(["set", ifname, "private-key", "/dev/stdin", "listen-port", String(port)], `${keys.privateKey}\n`);

/** The address of the i-th added peer (1-based), one /32 each in 10.200.0.0/16. */
const peerAddress = (i: number) => `10.200.${i >> 8}.${i & 255}`;

const mib = (pid: number) => ({ rss: statusMiB(pid, "VmRSS"), anon: statusMiB(pid, "RssAnon") });

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 200);

// ---- per implementation --------------------------------------------------------------------

/** A figure that could not be measured; `partial` holds what was measured around the failures. */
type Failed = { failed: string; partial?: unknown };

interface PeersResult {
  peers: number;
  totalSeconds: number;
  perPeerMs: Summary & { p90: number };
  rssFreshMiB: number;
  rssMiB: number;
  rssAnonMiB: number;
}

interface GetResult {
  peersInAnswer: number;
  answerBytes: number;
  rawMs: Summary & { p90: number };
  dumpMs: Summary & { p90: number };
  dumpLines: number;
  rssMiB: number;
  rssAnonMiB: number;
}

interface DataRun {
  run: number;
  poll: boolean;
  gbps: number;
  retransmits: number;
  /** CPU of the polled daemon (b, the receiving end with all the peers), % of one core. */
  daemonCpuPercent: number;
  polls: number;
  /** Polls where `wg show` failed (their time is left out of pollMedianMs). */
  pollFailures: number;
  pollError: string;
  pollMedianMs: number;
}

interface DataResult {
  gbpsNoPoll: Summary;
  gbpsPoll: Summary;
  /** median with the poll ÷ median without. */
  pollRatio: number;
  daemonCpuNoPoll: Summary;
  daemonCpuPoll: Summary;
  pollsPerRun: number;
  pollFailures: number;
  /** The first reason a poll failed ("" if none did). */
  pollError: string;
  pollMedianMs: number;
  runs: DataRun[];
}

interface State {
  impl: Impl;
  index: number;
  ifB: string;
  ifA: string;
  keysB: WgKeys | null;
  procB: SpawnedProcess | null;
  procA: SpawnedProcess | null;
  innerB: string;
  peers: PeersResult | Failed;
  get: GetResult | Failed;
  data: DataResult | Failed;
  dataRuns: DataRun[];
}

const withP90 = (values: number[]) => ({ ...summarize(values), p90: quantile(values, 0.9) });

/** The daemon on b: a key, then `config.peers` peers one `wg set` each. */
async function addPeers(s: State, b: Host): Promise<PeersResult> {
  s.procB = await startDaemon(b, s.impl.binary, s.ifB);
  const pid = s.procB.proc.pid;
  const rssFresh = mib(pid).rss;
  s.keysB = newKeys();
  await setPrivateKey(s.ifB, s.keysB, 51900 + s.index);
  const keys = Array.from({ length: config.peers }, () => newKeys().publicKey);
  const times: number[] = [];
  const start = performance.now();
  for (let i = 1; i <= config.peers; i++) {
    const endpoint = `192.0.2.${10 + (i % 200)}:${20000 + i}`;
    const r = await wg(["set", s.ifB, "peer", keys[i - 1], "allowed-ips", `${peerAddress(i)}/32`, "endpoint", endpoint]).catch((e) => {
      throw new Error(`peer ${i}: ${errorText(e)}`);
    });
    times.push(r.ms);
    if (wasInterrupted()) throw new Error("interrupted");
  }
  const totalSeconds = (performance.now() - start) / 1000;
  const m = mib(pid);
  return { peers: config.peers, totalSeconds, perPeerMs: withP90(times), rssFreshMiB: rssFresh, rssMiB: m.rss, rssAnonMiB: m.anon };
}

/** Requests that failed: how many of how many, and the first reason (the rest usually repeat it). */
interface Failures {
  count: number;
  of: number;
  first: string;
}

const failureText = (what: string, f: Failures) => `${f.count} of ${f.of} ${what} failed: ${f.first}`;

async function measureGet(s: State): Promise<GetResult | Failed> {
  if (!s.procB) throw new Error("no daemon");
  const path = socketPath(s.ifB);
  const rawFailures: Failures = { count: 0, of: config.gets + 1, first: "" };
  const dumpFailures: Failures = { count: 0, of: config.dumps, first: "" };
  const failed = (f: Failures, e: unknown) => {
    f.count++;
    if (!f.first) f.first = errorText(e);
  };
  const raw: number[] = [];
  let bytes = Number.NaN;
  let peersInAnswer = Number.NaN;
  // The first request is untimed (first use of the code paths) but checked like the others.
  for (let i = 0; i <= config.gets; i++) {
    try {
      const r = await uapiRequest(path, "get=1\n\n");
      if (r.errno !== 0) throw new Error(`get=1 answered errno=${r.errno}`);
      peersInAnswer = r.text.split("\n").filter((l) => l.startsWith("public_key=")).length;
      if (peersInAnswer !== config.peers) throw new Error(`get=1 lists ${peersInAnswer} peers, not the ${config.peers} added`);
      if (i > 0) raw.push(r.ms);
      bytes = r.bytes;
    } catch (e) {
      failed(rawFailures, e);
    }
  }
  const dump: number[] = [];
  let dumpLines = Number.NaN;
  for (let i = 0; i < config.dumps; i++) {
    try {
      const r = await wg(["show", s.ifB, "dump"]);
      dumpLines = r.stdout.trim().split("\n").length;
      if (dumpLines !== config.peers + 1) throw new Error(`wg show dump printed ${dumpLines} lines, not ${config.peers + 1}`);
      dump.push(r.ms);
    } catch (e) {
      failed(dumpFailures, e);
    }
  }
  const m = mib(s.procB.proc.pid);
  const result = { peersInAnswer, answerBytes: bytes, rawMs: withP90(raw), dumpMs: withP90(dump), dumpLines, rssMiB: m.rss, rssAnonMiB: m.anon };
  const reasons = [
    ...(rawFailures.count ? [failureText("get=1 requests", rawFailures)] : []),
    ...(dumpFailures.count ? [failureText("wg show dump runs", dumpFailures)] : []),
  ];
  return reasons.length ? { failed: reasons.join("; "), partial: { ...result, rawFailures, dumpFailures } } : result;
}

/** Host a gets a one-peer daemon of the same implementation; b (the N-peer daemon) gets a as a peer. */
async function setupTunnel(s: State, a: Host, b: Host): Promise<void> {
  if (!s.procB || s.procB.proc.exitCode !== null || s.procB.proc.signalCode !== null) {
    throw new Error("the daemon on b is not running");
  }
  const port = 51900 + s.index;
  const net = `10.${90 + s.index}.0`;
  const ka = newKeys();
  s.procA = await startDaemon(a, s.impl.binary, s.ifA);
  await setPrivateKey(s.ifA, ka, port);
  await wg(["set", s.ifA, "peer", s.keysB!.publicKey, "allowed-ips", `${net}.1/32`, "endpoint", `192.0.2.1:${port}`]);
  await wg(["set", s.ifB, "peer", ka.publicKey, "allowed-ips", `${net}.2/32`, "endpoint", `192.0.2.2:${port}`]);
  for (const [host, ifname, addr] of [[b, s.ifB, `${net}.1/24`], [a, s.ifA, `${net}.2/24`]] as const) {
    await host.ip(`addr add ${addr} dev ${ifname}`);
    await host.ip(`link set ${ifname} mtu 1420 up`);
  }
  s.innerB = `${net}.1`;
  const deadline = performance.now() + 20_000;
  for (;;) {
    const r = await a.run(["ping", "-n", "-c", "1", "-W", "1", s.innerB], { timeoutMs: 3000 });
    if (r.code === 0) return;
    if (performance.now() > deadline) throw new Error(`no ping through the tunnel to ${s.innerB}`);
  }
}

/** `wg show IFACE` every `intervalMs` (the next one starts right away if one took longer). */
function startPoll(ifname: string, intervalMs: number): { stop(): Promise<{ times: number[]; firstError: string }> } {
  let running = true;
  const times: number[] = [];
  let firstError = "";
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      try {
        times.push((await wg(["show", ifname])).ms);
      } catch (e) {
        times.push(Number.NaN);
        firstError ||= errorText(e);
      }
      const wait = intervalMs - (performance.now() - started);
      if (wait > 0 && running) await Bun.sleep(wait);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { times, firstError };
    },
  };
}

async function dataRun(s: State, a: Host, run: number, poll: boolean): Promise<DataRun> {
  const pid = s.procB!.proc.pid;
  const poller = poll ? startPoll(s.ifB, config.pollMs) : null;
  const cpu = cpuMeter([pid]);
  try {
    const r = await iperfTcp(a, s.innerB, { seconds: config.seconds });
    const daemonCpuPercent = cpu.stop()[0];
    const { times, firstError } = poller ? await poller.stop() : { times: [], firstError: "" };
    const pollFailures = times.filter((t) => !Number.isFinite(t)).length;
    return {
      run,
      poll,
      gbps: r.gbps,
      retransmits: r.retransmits,
      daemonCpuPercent,
      polls: times.length,
      pollFailures,
      pollError: firstError,
      pollMedianMs: quantile(times, 0.5),
    };
  } finally {
    await poller?.stop();
  }
}

function summarizeData(runs: DataRun[]): DataResult {
  const pick = (poll: boolean, f: (r: DataRun) => number) => runs.filter((r) => r.poll === poll).map(f);
  const noPoll = summarize(pick(false, (r) => r.gbps));
  const withPoll = summarize(pick(true, (r) => r.gbps));
  return {
    gbpsNoPoll: noPoll,
    gbpsPoll: withPoll,
    pollRatio: withPoll.median / noPoll.median,
    daemonCpuNoPoll: summarize(pick(false, (r) => r.daemonCpuPercent)),
    daemonCpuPoll: summarize(pick(true, (r) => r.daemonCpuPercent)),
    pollsPerRun: quantile(pick(true, (r) => r.polls), 0.5),
    pollFailures: runs.reduce((n, r) => n + r.pollFailures, 0),
    pollError: runs.find((r) => r.pollError)?.pollError ?? "",
    pollMedianMs: quantile(pick(true, (r) => r.pollMedianMs), 0.5),
    runs,
  };
}

// ---- the run ---------------------------------------------------------------------------------

const started = new Date();
const loadBefore = loadAverage();
progress(`implementations: ${impls.map((i) => `${i.label} ${i.version}`).join(", ")}`);

const states = await withControlLab(async ({ id, a, b }) => {
  const states: State[] = impls.map((impl, index) => ({
    impl,
    index,
    ifB: `${id}b${index}`,
    ifA: `${id}a${index}`,
    keysB: null,
    procB: null,
    procA: null,
    innerB: "",
    peers: { failed: "not run" },
    get: { failed: "not run" },
    data: { failed: "not run" },
    dataRuns: [],
  }));
  try {
    for (const s of states) {
      progress(`${s.impl.label}: adding ${config.peers} peers, one wg set each...`);
      try {
        s.peers = await addPeers(s, b);
      } catch (e) {
        s.peers = { failed: errorText(e) };
        s.get = { failed: `no daemon with peers (${s.peers.failed})` };
        progress(`${s.impl.label}: failed: ${s.peers.failed}`);
        continue;
      }
      progress(`${s.impl.label}: get=1 ×${config.gets} over the socket, wg show dump ×${config.dumps}...`);
      try {
        s.get = await measureGet(s);
      } catch (e) {
        s.get = { failed: errorText(e) };
        progress(`${s.impl.label}: failed: ${s.get.failed}`);
      }
    }
    for (const s of states) {
      if ("failed" in s.peers) {
        s.data = { failed: `no daemon with peers (${s.peers.failed})` };
        continue;
      }
      progress(`${s.impl.label}: tunnel between a and b...`);
      try {
        await setupTunnel(s, a, b);
      } catch (e) {
        s.data = { failed: errorText(e) };
        progress(`${s.impl.label}: failed: ${s.data.failed}`);
      }
    }
    const live = () => states.filter((s) => s.innerB && !("failed" in s.data && s.data.failed !== "not run"));
    if (live().length) {
      b.spawn(["iperf3", "-s", "-p", "5201"]);
      await Bun.sleep(300);
    }
    // Interleaved, and the order of the two cases swapped every run, so that drift of the
    // machine's load hits every implementation and both cases alike.
    for (let run = 1; run <= config.runs && !wasInterrupted(); run++) {
      for (const s of live()) {
        for (const poll of run % 2 === 1 ? [false, true] : [true, false]) {
          progress(`run ${run}/${config.runs}: ${s.impl.label}, TCP a→b ${config.seconds} s${poll ? `, wg show every ${config.pollMs} ms` : ""}...`);
          try {
            s.dataRuns.push(await dataRun(s, a, run, poll));
          } catch (e) {
            s.data = { failed: errorText(e), partial: s.dataRuns.length ? summarizeData(s.dataRuns) : undefined };
            progress(`${s.impl.label}: failed: ${s.data.failed}`);
            break;
          }
        }
      }
    }
    for (const s of live()) {
      if (!s.dataRuns.length) continue;
      const data = summarizeData(s.dataRuns);
      // A failed poll did not load the daemon as the figure says: no "polled" figure to compare.
      const polls = s.dataRuns.filter((r) => r.poll).reduce((n, r) => n + r.polls, 0);
      s.data = data.pollFailures ? { failed: `${data.pollFailures} of ${polls} wg show polls failed: ${data.pollError}`, partial: data } : data;
    }
  } finally {
    for (const s of states) {
      if (s.procA) await stopDaemon(s.procA, s.ifA);
      if (s.procB) await stopDaemon(s.procB, s.ifB);
    }
  }
  return states;
});
// Interrupted: the signal handler is removing the lab and exits; write no partial results.
if (wasInterrupted()) await new Promise(() => {});

// ---- the table -------------------------------------------------------------------------------

const ok = <T extends object>(r: T | Failed): r is T => !("failed" in r);
/** The figures of a result, or of what was measured before it failed (undefined: nothing). */
const got = <T extends object>(r: T | Failed): T | undefined => (ok(r) ? r : (r.partial as T | undefined));
const wontun = states.find((s) => s.impl.id === "wontun");
const references = states.filter((s) => s.impl.id !== "wontun");

interface Column {
  head: string;
  section: "peers" | "get" | "data";
  value: (s: State) => number;
  digits?: (x: number) => string;
}

const columns: Column[] = [
  { section: "get", head: "get=1 ms", value: (s) => got(s.get)?.rawMs.median ?? NaN },
  { section: "get", head: "p90", value: (s) => got(s.get)?.rawMs.p90 ?? NaN },
  { section: "get", head: "bytes", value: (s) => got(s.get)?.answerBytes ?? NaN, digits: (x) => (Number.isFinite(x) ? x.toFixed(0) : "–") },
  { section: "get", head: "dump ms", value: (s) => got(s.get)?.dumpMs.median ?? NaN },
  { section: "get", head: "p90", value: (s) => got(s.get)?.dumpMs.p90 ?? NaN },
  { section: "get", head: "RSS MiB", value: (s) => got(s.peers)?.rssMiB ?? NaN },
  { section: "peers", head: "total s", value: (s) => got(s.peers)?.totalSeconds ?? NaN },
  { section: "peers", head: "per peer ms", value: (s) => got(s.peers)?.perPeerMs.median ?? NaN },
  { section: "peers", head: "p90", value: (s) => got(s.peers)?.perPeerMs.p90 ?? NaN },
  { section: "peers", head: "RSS before", value: (s) => got(s.peers)?.rssFreshMiB ?? NaN },
  { section: "peers", head: "RSS after", value: (s) => got(s.peers)?.rssMiB ?? NaN },
  { section: "data", head: "Gbit/s", value: (s) => got(s.data)?.gbpsNoPoll.median ?? NaN },
  { section: "data", head: "polled", value: (s) => got(s.data)?.gbpsPoll.median ?? NaN },
  { section: "data", head: "polled÷not", value: (s) => got(s.data)?.pollRatio ?? NaN },
  { section: "data", head: "CPU % b", value: (s) => got(s.data)?.daemonCpuNoPoll.median ?? NaN },
  { section: "data", head: "polled", value: (s) => got(s.data)?.daemonCpuPoll.median ?? NaN },
];

const sections = {
  get: `get=1 with ${config.peers} peers (raw socket ×${config.gets}; wg show dump ×${config.dumps}; daemon RSS)`,
  peers: `adding ${config.peers} peers, one wg set each`,
  data: `iperf3 TCP a→b, ${config.runs}× ${config.seconds} s, median; polled = wg show on b every ${config.pollMs} ms`,
} as const;

const label = (s: State) => `${s.impl.label} ${s.impl.version}`;
const ratioLabel = (r: State) => `wontun ÷ ${r.impl.label}`;

function renderTable(): string {
  const lines: string[] = [];
  const nameWidth = Math.max(...states.map((s) => label(s).length), ...references.map((r) => ratioLabel(r).length), 10);
  for (const section of ["get", "peers", "data"] as const) {
    const cols = columns.filter((c) => c.section === section);
    const widths = cols.map((c) => Math.max(c.head.length, 8));
    const row = (name: string, cells: string[]) =>
      `  ${name.padEnd(nameWidth)}  ${cells.map((c, i) => c.padStart(widths[i])).join("  ")}`.trimEnd();
    lines.push(sections[section], row("", cols.map((c) => c.head)));
    for (const s of states) {
      const result = s[section];
      if (got(result)) lines.push(row(label(s), cols.map((c) => (c.digits ?? fmt)(c.value(s)))));
      if (!ok(result)) lines.push(`  ${(got(result) ? "" : label(s)).padEnd(nameWidth)}  failed: ${result.failed}`);
    }
    if (wontun && ok(wontun[section])) {
      for (const r of references) {
        if (!ok(r[section])) continue;
        lines.push(row(ratioLabel(r), cols.map((c) => `${fmt(c.value(wontun) / c.value(r))}×`)));
      }
    }
    lines.push("");
  }
  return lines.join("\n").trimEnd();
}

const table = renderTable();
console.log(table);

// ---- results ---------------------------------------------------------------------------------

const ratios: Record<string, Record<string, number>> = {};
if (wontun) {
  for (const r of references) {
    ratios[`wontun/${r.impl.id}`] = Object.fromEntries(
      columns.map((c) => [`${c.section}.${c.head}`, c.value(wontun) / c.value(r)]).filter(([, v]) => Number.isFinite(v)),
    );
  }
}
const report = {
  schema: "wontun-bench-control/1",
  date: started.toISOString(),
  command: ["bun", "bench/control.ts", ...process.argv.slice(2)].join(" "),
  options: config,
  machine: { ...machineInfo(), loadAverageBefore: loadBefore, loadAverageAfter: loadAverage() },
  tools: { wg: toolVersion(["wg", "--version"]), iperf3: toolVersion(["iperf3", "--version"]) },
  implementations: states.map((s) => ({
    id: s.impl.id,
    label: s.impl.label,
    version: s.impl.version,
    addPeers: s.peers,
    get: s.get,
    dataPath: s.data,
  })),
  ratios,
  table: table.split("\n"),
};
mkdirSync(config.out, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, "-");
const json = `${JSON.stringify(report, null, 2)}\n`;
writeFileSync(join(config.out, `control-${stamp}.json`), json);
writeFileSync(join(config.out, "control-latest.json"), json);
progress(`wrote ${join(config.out, "control-latest.json")}`);
