// The soak: hours of mixed traffic and trouble through wontun, watching for lost or corrupted bytes
// and for memory or file descriptors that grow.
//
// Lab: h10XXXX-a — h10XXXX-b (192.0.2.0/24), h10XXXX-c — h10XXXX-b (198.18.0.0/24). Tunnels a ↔ b:
// WireGuard (10.101.0.0/24, port 51900) and plaintext (10.102.0.0/24, port 19901), both with
// endpoints on both sides. Host c runs a third WireGuard daemon whose peer entry on b comes and goes.
//
// For --minutes M:
// - four checksummed byte streams (bench/lib/soak-stream.ts), one each way through each tunnel,
//   paced at --mbit each; a connection a restart breaks reconnects and resumes where the receiver's
//   verified bytes end;
// - WireGuard rekeys by itself every 120 s; daemons are restarted (SIGTERM, start again) every
//   --restart-every seconds, alternating sides: the WireGuard daemon on a, then the plaintext one on
//   b, and so on. The WireGuard daemon on b, the plaintext one on a and c's live the whole run:
//   their RSS and fd slopes are what says "no leak";
// - every --churn-every seconds, through the control socket (`wg set`): b gets c's peer (c then
//   pings through it) and 16 peers with dummy keys, a gets 16 dummy peers; the next time they are
//   removed again;
// - a hostile trickle (bench/lib/soak-hostile.ts) from a and from b at every listening port,
//   including WireGuard datagrams captured on the underlay replayed, truncated and bit-flipped;
// - every --sample seconds: VmRSS and open fds of every daemon, handshakes seen (`wontun show
//   --json`), bytes delivered.
// Writes bench/results/soak-latest.json and soak-latest.svg (and soak-<timestamp>.json), prints a
// summary, exits 1 if a byte was lost or corrupted, a stream stalled, a daemon died, or an RSS/fd
// slope of a long-lived daemon is clearly not flat.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandLine, numberOption } from "./lib/args.ts";
import { BINARY, REPO, RESULTS, machineInfo } from "./lib/lab.ts";
import { openFds, statusMiB } from "./lib/proc.ts";
import { fmt } from "./lib/stats.ts";
import { lineChart, linearFit, type LineSeries } from "./lib/soak-chart.ts";
import { createSoakLab, veth } from "./lib/soak-lab.ts";
import type { RecvStats, SendStats } from "./lib/soak-stream.ts";
import { canRunIntegration, waitFor, type Host, type SpawnedProcess } from "../test/helpers/netns.ts";
import { newKeys, wgQuickConfig } from "../test/helpers/wireguard.ts";
import { startCapture } from "../test/helpers/pcap.ts";

const HELP = `sudo npm run soak -- --minutes M — long-running traffic, restarts, peer churn and hostile datagrams
through wontun (WireGuard and plaintext), checking every byte and watching RSS and fds

Options:
  --minutes M          length of the run (default 60)
  --mbit R             pace of each of the four byte streams, Mbit/s (default 24)
  --restart-every S    seconds between daemon restarts (default 180; shorter runs: a fifth of the run, at least 30)
  --churn-every S      seconds between peer add / remove rounds (default 30)
  --sample S           seconds between samples (default 10)
  --warmup S           seconds left out of the slope fits (default 120)
  --out DIR            where to write soak-latest.json/.svg (default bench/results)
  --help

Exit 1 if a byte was lost or corrupted, a stream stalled, a daemon died, or the RSS or fd count
of a daemon that lives the whole run grows: slope > 10 MiB/hour or > 6 fds/hour over at least
10 minutes after warm-up, and the rise over the window is beyond 3 sd of the fit's residuals.
Ctrl-C stops the run early, still writes what was measured, and removes everything.`;

const opts = commandLine(HELP, []);
const minutes = numberOption(opts, "minutes", 60, 0.5);
const totalMs = minutes * 60_000;
const mbit = numberOption(opts, "mbit", 24, 0.1);
const restartEveryS = numberOption(opts, "restart-every", minutes >= 15 ? 180 : Math.max(30, (minutes * 60) / 5), 5);
const churnEveryS = numberOption(opts, "churn-every", 30, 5);
const sampleS = numberOption(opts, "sample", 10, 1);
const warmupS = numberOption(opts, "warmup", 120, 0);
const outDir = opts.get("out") ?? RESULTS;

const RSS_LIMIT_MIB_H = 10;
const FD_LIMIT_H = 6;
const MIN_WINDOW_MIN = 10;

if (!canRunIntegration) {
  console.error("soak: needs root, /dev/net/tun and ip (run with sudo)");
  process.exit(1);
}
for (const tool of ["wg", "ping", "tcpdump"]) {
  if (!Bun.which(tool)) {
    console.error(`soak: needs ${tool} (sudo bash scripts/install-deps.sh)`);
    process.exit(1);
  }
}
if (!existsSync(BINARY)) {
  console.error(`soak: ${BINARY} is missing (npm run build)`);
  process.exit(1);
}

const STREAM = join(REPO, "bench/lib/soak-stream.ts");
const HOSTILE = join(REPO, "bench/lib/soak-hostile.ts");
const A_IP = "192.0.2.2";
const B_IP = "192.0.2.1";
const C_IP = "198.18.0.2";
const BC_IP = "198.18.0.1";
const WG_PORT = 51900;
const PLAIN_PORT = 19901;
const C_PORT = 51903;

type Slot = "wg-a" | "wg-b" | "plain-a" | "plain-b" | "wg-c";
const SLOTS: Slot[] = ["wg-a", "wg-b", "plain-a", "plain-b", "wg-c"];
/** Restarted during the run, in this order; the others live the whole run. */
const RESTARTED: Slot[] = ["wg-a", "plain-b"];
const LONG_LIVED = SLOTS.filter((s) => !RESTARTED.includes(s));
const COLORS: Record<Slot, string> = { "wg-a": "#1f77b4", "wg-b": "#ff7f0e", "plain-a": "#2ca02c", "plain-b": "#d62728", "wg-c": "#9467bd" };
const FLOWS = ["wg a→b", "plain a→b", "wg b→a", "plain b→a"] as const;

interface Daemon {
  slot: Slot;
  host: Host;
  ifname: string;
  config: string;
  proc: SpawnedProcess;
  expectedExit: boolean;
  starts: number;
  /** Per peer (key or name): the last latestHandshake seen. */
  handshakeSeen: Map<string, number>;
  handshakes: number;
}

interface Sample {
  t: number; // seconds since the traffic started
  procs: Record<string, { pid: number; rssMiB: number; fds: number }>;
  flows: Record<string, { delivered: number; corrupted: number; lost: number; connections: number }>;
  handshakes: Record<string, number>;
}

const events: Array<{ t: number; kind: string; detail: string }> = [];
const samples: Sample[] = [];
const failures: string[] = [];
let t0 = performance.now();
const now = () => (performance.now() - t0) / 1000;
const event = (kind: string, detail: string) => {
  events.push({ t: Math.round(now() * 10) / 10, kind, detail });
  console.log(`[${fmtClock(now())}] ${kind}: ${detail}`);
};
function fmtClock(s: number): string {
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(Math.floor(s - m * 60)).padStart(2, "0")}`;
}

let forcedExitWriter: () => void = () => {};
const env = await createSoakLab(() => forcedExitWriter());
const { lab, dir } = env;
const sleep = (ms: number) => Promise.race([Bun.sleep(ms), env.stopped]);

let exitCode = 1;
try {
  exitCode = await run();
} catch (e) {
  console.error(`soak: ${(e as Error).stack ?? e}`);
  exitCode = 1;
} finally {
  await env.cleanup();
}
process.exit(env.stopRequested() ? 130 : exitCode);

async function run(): Promise<number> {
  const a = await lab.host("a");
  const b = await lab.host("b");
  const c = await lab.host("c");
  await veth(a, "h10a-b", `${A_IP}/24`, b, "h10b-a", `${B_IP}/24`);
  await veth(c, "h10c-b", `${C_IP}/24`, b, "h10b-c", `${BC_IP}/24`);

  const ka = newKeys();
  const kb = newKeys();
  const kc = newKeys();
  const ifname = (slot: Slot) => `${lab.id}${slot.replace("plain-", "p").replace("wg-", "w")}`;
  const plain = (self: string, address: string, peer: string, peerInner: string, endpoint: string) =>
    ["[Interface]", `Name=${self}`, `Address=${address}`, `ListenPort=${PLAIN_PORT}`, "", "[Peer]", `Name=${peer}`,
      `Endpoint=${endpoint}`, `AllowedIPs=${peerInner}/32`, ""].join("\n");
  const configs: Record<Slot, string> = {
    "wg-b": wgQuickConfig({ keys: kb, addresses: ["10.101.0.1/24"], listenPort: WG_PORT,
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.101.0.2/32"], endpoint: `${A_IP}:${WG_PORT}` }] }),
    "wg-a": wgQuickConfig({ keys: ka, addresses: ["10.101.0.2/24"], listenPort: WG_PORT,
      peers: [{ publicKey: kb.publicKey, allowedIps: ["10.101.0.1/32"], endpoint: `${B_IP}:${WG_PORT}` }] }),
    "wg-c": wgQuickConfig({ keys: kc, addresses: ["10.101.0.3/24"], listenPort: C_PORT,
      peers: [{ publicKey: kb.publicKey, allowedIps: ["10.101.0.1/32"], endpoint: `${BC_IP}:${WG_PORT}` }] }),
    "plain-b": plain("soak-b", "10.102.0.1/24", "soak-a", "10.102.0.2", `${A_IP}:${PLAIN_PORT}`),
    "plain-a": plain("soak-a", "10.102.0.2/24", "soak-b", "10.102.0.1", `${B_IP}:${PLAIN_PORT}`),
  };
  const hostOf: Record<Slot, Host> = { "wg-a": a, "wg-b": b, "plain-a": a, "plain-b": b, "wg-c": c };
  const daemons = new Map<Slot, Daemon>();

  const startDaemon = async (slot: Slot): Promise<void> => {
    const file = join(dir.path, `${ifname(slot)}.conf`);
    if (!existsSync(file)) writeFileSync(file, configs[slot], { mode: 0o600 });
    const host = hostOf[slot];
    const proc = host.spawn([BINARY, "up", file, "--log-level", "info"]);
    let exited = false;
    proc.exited.then(() => (exited = true));
    await waitFor(() => {
      if (exited) throw new Error(`${slot} exited at start:\n${proc.output()}`);
      return proc.output().includes("running");
    }, 30_000, `${slot} to start`);
    const old = daemons.get(slot);
    daemons.set(slot, {
      slot, host, ifname: ifname(slot), config: file, proc, expectedExit: false,
      starts: (old?.starts ?? 0) + 1, handshakeSeen: new Map(), handshakes: old?.handshakes ?? 0,
    });
  };
  const stopDaemon = async (slot: Slot): Promise<number> => {
    const d = daemons.get(slot)!;
    d.expectedExit = true;
    d.proc.kill("SIGTERM");
    const code = await Promise.race([d.proc.exited, Bun.sleep(15_000).then(() => -1)]);
    if (code === -1) {
      d.proc.kill("SIGKILL");
      await d.proc.exited;
    }
    return code;
  };

  for (const slot of ["wg-b", "plain-b", "wg-a", "plain-a", "wg-c"] as Slot[]) await startDaemon(slot);
  const pingOk = async (host: Host, addr: string) =>
    (await host.run(["ping", "-n", "-c", "1", "-W", "1", addr], { timeoutMs: 3000 })).code === 0;
  await waitFor(() => pingOk(a, "10.101.0.1"), 20_000, "a ping through the WireGuard tunnel");
  await waitFor(() => pingOk(a, "10.102.0.1"), 20_000, "a ping through the plaintext tunnel");

  // Streams: one process per host, receivers on 0.0.0.0 (they outlive the TUN's address).
  const statsA = join(dir.path, "streams-a.json");
  const statsB = join(dir.path, "streams-b.json");
  const seeds = { "wg a→b": 1001, "plain a→b": 1002, "wg b→a": 1003, "plain b→a": 1004 };
  const streamsB = b.spawn([process.execPath, STREAM, JSON.stringify({
    stats: statsB,
    recv: [{ name: "wg a→b", port: 5001, seed: seeds["wg a→b"] }, { name: "plain a→b", port: 5002, seed: seeds["plain a→b"] }],
    send: [{ name: "wg b→a", host: "10.101.0.2", port: 5003, seed: seeds["wg b→a"], mbit },
      { name: "plain b→a", host: "10.102.0.2", port: 5004, seed: seeds["plain b→a"], mbit }],
  })]);
  const streamsA = a.spawn([process.execPath, STREAM, JSON.stringify({
    stats: statsA,
    recv: [{ name: "wg b→a", port: 5003, seed: seeds["wg b→a"] }, { name: "plain b→a", port: 5004, seed: seeds["plain b→a"] }],
    send: [{ name: "wg a→b", host: "10.101.0.1", port: 5001, seed: seeds["wg a→b"], mbit },
      { name: "plain a→b", host: "10.102.0.1", port: 5002, seed: seeds["plain a→b"], mbit }],
  })]);
  for (const s of [streamsA, streamsB]) {
    await waitFor(() => s.output().includes("streams ready"), 15_000, "the stream processes");
  }
  const readJson = <T>(file: string): T | null => {
    try {
      return JSON.parse(readFileSync(file, "utf8")) as T;
    } catch {
      return null;
    }
  };
  type StreamFile = { at: number; recv: Record<string, RecvStats>; send: Record<string, SendStats> };
  const flowStats = (): Record<string, RecvStats> => {
    const fa = readJson<StreamFile>(statsA);
    const fb = readJson<StreamFile>(statsB);
    return { ...(fb?.recv ?? {}), ...(fa?.recv ?? {}) };
  };

  // Captured WireGuard datagrams for the hostile trickle to replay.
  const captured = join(dir.path, "captured.txt");
  const capture = async () => {
    const cap = await startCapture(a, "h10a-b", join(dir.path, "cap.pcap"), `udp port ${WG_PORT}`);
    await sleep(3000);
    const datagrams = await cap.stop();
    const lines = datagrams
      .filter((d) => d.payload.length >= 32 && d.payload[0] >= 1 && d.payload[0] <= 4)
      .slice(0, 400)
      .map((d) => `${d.dst} ${d.dstPort} ${Buffer.from(d.payload).toString("hex")}`);
    writeFileSync(`${captured}.tmp`, `${lines.join("\n")}\n`);
    Bun.spawnSync(["mv", `${captured}.tmp`, captured]);
    return lines.length;
  };

  t0 = performance.now();
  event("start", `${minutes} min, 4 streams at ${mbit} Mbit/s, restarts every ${restartEveryS} s, churn every ${churnEveryS} s`);
  event("capture", `${await capture()} WireGuard datagrams captured for replay`);
  const hostile: SpawnedProcess[] = [];
  const hostileStats: string[] = [];
  for (const [i, h] of [a, b].entries()) {
    const stats = join(dir.path, `hostile-${i}.json`);
    hostileStats.push(stats);
    const targets = [
      { host: B_IP, port: WG_PORT, mode: "wg", publicKey: kb.publicKey },
      { host: A_IP, port: WG_PORT, mode: "wg", publicKey: ka.publicKey },
      { host: B_IP, port: PLAIN_PORT, mode: "plain" },
      { host: A_IP, port: PLAIN_PORT, mode: "plain" },
    ];
    const p = h.spawn([process.execPath, HOSTILE, JSON.stringify({ rate: 25, seed: 77 + i, stats, captured, targets })]);
    await waitFor(() => p.output().includes("hostile ready"), 15_000, "the hostile trickle");
    hostile.push(p);
  }

  // ---- sampling ----------------------------------------------------------------------------
  const handshakes = async (d: Daemon) => {
    const r = await d.host.run([BINARY, "show", d.ifname, "--json"], { timeoutMs: 5000 });
    if (r.code !== 0) return;
    try {
      const j = JSON.parse(r.stdout) as { interfaces: Array<{ peers: Array<{ publicKey: string | null; name: string | null; latestHandshake: number | null }> }> };
      for (const p of j.interfaces[0]?.peers ?? []) {
        if (p.latestHandshake === null) continue;
        const key = p.publicKey ?? p.name ?? "?";
        if (d.handshakeSeen.get(key) !== p.latestHandshake) {
          d.handshakeSeen.set(key, p.latestHandshake);
          d.handshakes++;
        }
      }
    } catch {
      // mid-restart
    }
  };
  const sample = async () => {
    const s: Sample = { t: Math.round(now() * 10) / 10, procs: {}, flows: {}, handshakes: {} };
    for (const slot of SLOTS) {
      const d = daemons.get(slot)!;
      const pid = d.proc.proc.pid;
      if (!d.expectedExit && (d.proc.proc.exitCode !== null || d.proc.proc.signalCode !== null)) {
        failures.push(`${slot} died (exit ${d.proc.proc.exitCode ?? d.proc.proc.signalCode})`);
        event("died", `${slot}:\n${d.proc.output().slice(-2000)}`);
        d.expectedExit = true;
        await startDaemon(slot);
        continue;
      }
      s.procs[slot] = { pid, rssMiB: Math.round(statusMiB(pid, "VmRSS") * 100) / 100, fds: openFds(pid) };
      await handshakes(d);
      s.handshakes[slot] = d.handshakes;
    }
    for (const [name, f] of Object.entries(flowStats())) {
      s.flows[name] = { delivered: f.delivered, corrupted: f.corrupted, lost: f.lost, connections: f.connections };
    }
    samples.push(s);
  };

  // ---- restarts and peer churn (one at a time) ------------------------------------------------
  let restarts = 0;
  let peersAdded = 0;
  let peersRemoved = 0;
  const thirdHostPings = { ok: 0, failed: 0 };
  const present: Record<"wg-a" | "wg-b", string[]> = { "wg-a": [], "wg-b": [] };
  const wgSet = async (slot: "wg-a" | "wg-b", args: string[]) => {
    const d = daemons.get(slot)!;
    const r = await d.host.run(["wg", "set", d.ifname, ...args], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`wg set ${d.ifname} ${args.slice(0, 4).join(" ")}…: ${r.stderr.trim()}`);
  };
  let churnRound = 0;
  let thirdHostCheck: Promise<void> = Promise.resolve();
  const churn = async () => {
    churnRound++;
    if (present["wg-b"].length === 0 && present["wg-a"].length === 0) {
      const dummiesB = Array.from({ length: 16 }, () => newKeys().publicKey);
      const dummiesA = Array.from({ length: 16 }, () => newKeys().publicKey);
      const argsB = ["peer", kc.publicKey, "allowed-ips", "10.101.0.3/32", "endpoint", `${C_IP}:${C_PORT}`];
      dummiesB.forEach((k, i) => argsB.push("peer", k, "allowed-ips", `10.104.${churnRound % 250}.${i + 1}/32`, "endpoint", `198.18.0.${100 + i}:51820`));
      const argsA: string[] = [];
      dummiesA.forEach((k, i) => argsA.push("peer", k, "allowed-ips", `10.105.${churnRound % 250}.${i + 1}/32`));
      await wgSet("wg-b", argsB);
      present["wg-b"] = [kc.publicKey, ...dummiesB];
      await wgSet("wg-a", argsA);
      present["wg-a"] = dummiesA;
      peersAdded += 33;
      // c reaches b through its new peer entry. c may still hold the session from the last round,
      // which b forgot with the peer: WireGuard only handshakes again once data has gone
      // unanswered for 15 s, so this is checked in the background, with 25 s to succeed.
      const deadline = performance.now() + 25_000;
      thirdHostCheck = (async () => {
        let ok = false;
        while (!ok && performance.now() < deadline && !env.stopRequested()) ok = await pingOk(c, "10.101.0.1");
        if (env.stopRequested() && !ok) return;
        if (ok) thirdHostPings.ok++;
        else thirdHostPings.failed++;
        event("third host", `c → b through its added peer: ${ok ? "ok" : "FAILED"}`);
      })();
      event("peers added", "b: c's peer + 16 dummies with endpoints, a: 16 dummies");
    } else {
      await thirdHostCheck;
      for (const slot of ["wg-b", "wg-a"] as const) {
        if (present[slot].length === 0) continue;
        await wgSet(slot, present[slot].flatMap((k) => ["peer", k, "remove"]));
        peersRemoved += present[slot].length;
        present[slot] = [];
      }
      event("peers removed", `total added ${peersAdded}, removed ${peersRemoved}`);
    }
  };
  const restart = async () => {
    const slot = RESTARTED[restarts % RESTARTED.length];
    const code = await stopDaemon(slot);
    if (code !== 0) failures.push(`${slot} exited ${code} on SIGTERM`);
    if (slot === "wg-a" || slot === "wg-b") {
      // Peers added at run time go with the daemon (its config file does not have them).
      peersRemoved += present[slot].length;
      present[slot] = [];
    }
    await startDaemon(slot);
    restarts++;
    event("restart", `${slot} (exit ${code}), restart ${restarts}`);
  };

  const endAt = totalMs / 1000;
  const lastRestartBefore = endAt - Math.min(60, endAt / 4);
  let nextRestart = restartEveryS;
  let nextChurn = Math.min(churnEveryS, 15);
  let nextSample = 0;
  let nextCapture = 300;
  let nextReport = 60;
  while (now() < endAt && !env.stopRequested()) {
    const t = now();
    if (t >= nextSample) {
      await sample();
      nextSample += sampleS;
    }
    if (t >= nextRestart && t < lastRestartBefore) {
      await restart();
      nextRestart += restartEveryS;
    }
    if (t >= nextChurn) {
      try {
        await churn();
      } catch (e) {
        failures.push(`peer churn: ${(e as Error).message}`);
        event("churn failed", (e as Error).message);
      }
      nextChurn += churnEveryS;
    }
    if (t >= nextCapture) {
      event("capture", `${await capture()} WireGuard datagrams captured for replay`);
      nextCapture += 300;
    }
    if (t >= nextReport) {
      const last = samples.at(-1);
      if (last) {
        const line = SLOTS.map((s) => `${s} ${fmt(last.procs[s]?.rssMiB ?? NaN)} MiB/${last.procs[s]?.fds ?? "?"} fds`).join(", ");
        const delivered = Object.values(last.flows).reduce((x, f) => x + f.delivered, 0);
        event("status", `${(delivered / 2 ** 20).toFixed(0)} MiB delivered; ${line}`);
      }
      nextReport += 60;
    }
    await sleep(Math.max(10, Math.min(nextSample, nextChurn, nextRestart, nextReport) * 1000 - now() * 1000));
  }
  const interrupted = env.stopRequested();
  await thirdHostCheck;
  // Final figures: a last sample, then the streams' and the hostile senders' last word.
  if (!interrupted) await sample();
  for (const p of [...hostile, streamsA, streamsB]) p.kill("SIGTERM");
  await Promise.all([...hostile, streamsA, streamsB].map((p) => Promise.race([p.exited, Bun.sleep(5000)])));
  const finalFlows = flowStats();
  const hostileSent: Record<string, number> = {};
  for (const f of hostileStats) {
    for (const [k, n] of Object.entries(readJson<{ sent: Record<string, number> }>(f)?.sent ?? {})) hostileSent[k] = (hostileSent[k] ?? 0) + n;
  }
  for (const d of daemons.values()) await handshakes(d).catch(() => {});

  // ---- the verdict -----------------------------------------------------------------------
  const flowSummary: Record<string, RecvStats & { stalledAtEnd: boolean; mbitAverage: number }> = {};
  const secondsRun = now();
  for (const name of FLOWS) {
    const f = finalFlows[name];
    if (!f) {
      failures.push(`${name}: no figures from its receiver`);
      continue;
    }
    const stalled = !interrupted && Date.now() - f.lastProgressMs > 30_000;
    flowSummary[name] = { ...f, stalledAtEnd: stalled, mbitAverage: (f.delivered * 8) / 1e6 / secondsRun };
    if (f.corrupted > 0) failures.push(`${name}: ${f.corrupted} corrupted bytes (first at stream offset ${f.firstCorruptionAt})`);
    if (f.lost > 0) failures.push(`${name}: ${f.lost} bytes lost`);
    if (f.delivered === 0) failures.push(`${name}: delivered nothing`);
    if (stalled) failures.push(`${name}: no progress in the last ${Math.round((Date.now() - f.lastProgressMs) / 1000)} s`);
  }
  if (thirdHostPings.failed > 0) failures.push(`c could not reach b through its added peer ${thirdHostPings.failed} time(s)`);

  const slopes: Record<string, { rssMiBPerHour: number; fdsPerHour: number; windowMinutes: number; rssResidualSdMiB: number; judged: boolean; flat: boolean | null; pooledOverRestarts?: boolean }> = {};
  const after = samples.filter((s) => s.t >= warmupS);
  for (const slot of SLOTS) {
    let rss: Array<[number, number]>;
    let fds: Array<[number, number]>;
    let windowMin: number;
    const pooled = RESTARTED.includes(slot);
    if (!pooled) {
      rss = after.map((s) => [s.t / 3600, s.procs[slot]?.rssMiB ?? NaN]);
      fds = after.map((s) => [s.t / 3600, s.procs[slot]?.fds ?? NaN]);
      windowMin = after.length ? (after.at(-1)!.t - after[0].t) / 60 : 0;
    } else {
      // Restarted daemons: the slope within each instance (its own mean taken out), for the record.
      rss = [];
      fds = [];
      const byPid = new Map<number, Sample[]>();
      for (const s of samples) {
        const p = s.procs[slot];
        if (p) byPid.set(p.pid, [...(byPid.get(p.pid) ?? []), s]);
      }
      windowMin = 0;
      for (const [pid, ss] of byPid) {
        const start = ss[0].t;
        const kept = ss.filter((s) => s.t - start >= Math.min(warmupS, 60));
        if (kept.length < 3) continue;
        windowMin += (kept.at(-1)!.t - kept[0].t) / 60;
        const mt = kept.reduce((x, s) => x + s.t, 0) / kept.length;
        const mr = kept.reduce((x, s) => x + s.procs[slot]!.rssMiB, 0) / kept.length;
        const mf = kept.reduce((x, s) => x + s.procs[slot]!.fds, 0) / kept.length;
        for (const s of kept) {
          rss.push([(s.t - mt) / 3600, s.procs[slot]!.rssMiB - mr]);
          fds.push([(s.t - mt) / 3600, s.procs[slot]!.fds - mf]);
        }
        void pid;
      }
    }
    const fr = linearFit(rss);
    const ff = linearFit(fds);
    const judged = !pooled && windowMin >= MIN_WINDOW_MIN;
    let flat: boolean | null = null;
    if (judged) {
      const hours = windowMin / 60;
      const rssGrows = fr.slope > RSS_LIMIT_MIB_H && fr.slope * hours > 3 * fr.residualSd;
      const fdsGrow = ff.slope > FD_LIMIT_H && ff.slope * hours > Math.max(2, 3 * ff.residualSd);
      flat = !rssGrows && !fdsGrow;
      if (rssGrows) failures.push(`${slot}: RSS grows ${fmt(fr.slope)} MiB/hour over ${fmt(windowMin)} min`);
      if (fdsGrow) failures.push(`${slot}: open fds grow ${fmt(ff.slope)}/hour over ${fmt(windowMin)} min`);
    }
    slopes[slot] = {
      rssMiBPerHour: fr.slope, fdsPerHour: ff.slope, windowMinutes: windowMin, rssResidualSdMiB: fr.residualSd,
      judged, flat, ...(pooled ? { pooledOverRestarts: true } : {}),
    };
  }

  const handshakeCounts = Object.fromEntries(SLOTS.map((s) => [s, daemons.get(s)!.handshakes]));
  const result = {
    kind: "soak",
    date: new Date().toISOString(),
    machine: machineInfo(),
    lab: lab.id,
    interrupted,
    settings: { minutes, mbitPerStream: mbit, restartEverySeconds: restartEveryS, churnEverySeconds: churnEveryS, sampleSeconds: sampleS, warmupSeconds: warmupS },
    secondsRun,
    ok: failures.length === 0 && !interrupted,
    failures,
    flows: flowSummary,
    slopes,
    limits: { rssMiBPerHour: RSS_LIMIT_MIB_H, fdsPerHour: FD_LIMIT_H, minWindowMinutes: MIN_WINDOW_MIN },
    longLived: LONG_LIVED,
    restarted: RESTARTED,
    restarts,
    handshakes: handshakeCounts,
    peersAdded,
    peersRemoved,
    thirdHostPings,
    hostileSent,
    events,
    samples,
  };
  writeResults(result, secondsRun, interrupted);
  forcedExitWriter = () => {};

  // ---- the summary -----------------------------------------------------------------------
  console.log(`\nsoak ${interrupted ? "(interrupted) " : ""}after ${fmt(secondsRun / 60)} min:`);
  for (const [name, f] of Object.entries(flowSummary)) {
    console.log(`  ${name.padEnd(10)} ${(f.delivered / 2 ** 20).toFixed(1).padStart(9)} MiB intact (${fmt(f.mbitAverage)} Mbit/s), ` +
      `corrupted ${f.corrupted}, lost ${f.lost}, connections ${f.connections}`);
  }
  for (const slot of SLOTS) {
    const sl = slopes[slot];
    const last = samples.at(-1)?.procs[slot];
    const verdict = sl.pooledOverRestarts ? "restarted: within-instance, not judged" : sl.judged ? (sl.flat ? "flat" : "GROWS") : `not judged (window ${fmt(sl.windowMinutes)} < ${MIN_WINDOW_MIN} min)`;
    console.log(`  ${slot.padEnd(8)} RSS ${fmt(last?.rssMiB ?? NaN)} MiB, ${last?.fds ?? "?"} fds; slope ${fmt(sl.rssMiBPerHour)} MiB/h, ` +
      `${fmt(sl.fdsPerHour)} fds/h: ${verdict}; handshakes seen ${handshakeCounts[slot]}`);
  }
  console.log(`  restarts ${restarts}, peers added ${peersAdded} / removed ${peersRemoved}, c → b ${thirdHostPings.ok} ok / ${thirdHostPings.failed} failed`);
  console.log(`  hostile datagrams: ${Object.entries(hostileSent).map(([k, n]) => `${k} ${n}`).join(", ")}`);
  console.log(`  wrote ${join(outDir, "soak-latest.json")} and soak-latest.svg`);
  if (failures.length) {
    console.log(`FAILED:\n  ${failures.join("\n  ")}`);
    return 1;
  }
  console.log(interrupted ? "interrupted: no verdict" : "ok");
  return 0;
}

function writeResults(result: object, secondsRun: number, interrupted: boolean): void {
  mkdirSync(outDir, { recursive: true });
  const json = `${JSON.stringify(result, null, 1)}\n`;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  writeFileSync(join(outDir, `soak-${stamp}.json`), json);
  writeFileSync(join(outDir, "soak-latest.json"), json);
  const series = (f: (s: Sample) => number, slot: Slot): LineSeries => ({
    label: slot, color: COLORS[slot], points: samples.map((s) => [s.t / 60, s.procs[slot] ? f(s) : NaN]),
  });
  const flowColors = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"];
  const svg = lineChart({
    title: `wontun soak: ${fmt(secondsRun / 60)} min${interrupted ? " (interrupted)" : ""}`,
    subtitle: `4 streams at ${mbit} Mbit/s; ${events.filter((e) => e.kind === "restart").length} restarts (dashed); grey: warm-up, left out of the slopes`,
    totalMinutes: secondsRun / 60,
    warmupMinutes: warmupS / 60,
    markers: events.filter((e) => e.kind === "restart").map((e) => [e.t / 60, e.detail]),
    panels: [
      { title: "RSS of each daemon", unit: "MiB", series: SLOTS.map((slot) => series((s) => s.procs[slot]!.rssMiB, slot)) },
      { title: "Open file descriptors", unit: "fds", series: SLOTS.map((slot) => series((s) => s.procs[slot]!.fds, slot)) },
      {
        title: "Delivered intact", unit: "MiB",
        series: FLOWS.map((name, i) => ({ label: name, color: flowColors[i], points: samples.map((s) => [s.t / 60, (s.flows[name]?.delivered ?? NaN) / 2 ** 20]) })),
      },
    ],
  });
  writeFileSync(join(outDir, "soak-latest.svg"), svg);
}
