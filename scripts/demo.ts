#!/usr/bin/env bun
// `npm run demo`: the original wontun's three-host topology in throwaway network namespaces.
//
//   client-A (192.0.2.3) ──veth──┐
//                                 br0 192.0.2.1 in the server namespace
//   client-B (192.0.2.2) ──veth──┘
//
// Each host runs dist/wontun with examples/demo/<host>.conf. The server forwards (ip_forward=1 in
// its namespace only), so client-A reaches client-B through it: the packet enters and leaves the
// server's TUN. Nothing is created in the root namespace; everything is removed on exit, on
// Ctrl-C and on errors. Needs root, iproute2, iputils-ping, traceroute and procps (sysctl).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const BIN = join(ROOT, "dist", "wontun");
const CONF_DIR = join(ROOT, "examples", "demo");

interface Host {
  key: "server" | "client-A" | "client-B";
  ns: string;
  /** Underlay address (192.0.2.0/24, on br0 for the server, on eth0 for a client). */
  underlay: string;
  /** Tunnel address from the example config. */
  tunnel: string;
  conf: string;
  log: string;
  proc?: Bun.Subprocess;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------- output

const useColor = process.stdout.isTTY ?? false;
const paint = (code: string, s: string) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);
const section = (title: string) => console.log(`\n${paint("1", `== ${title}`)}`);
const ok = (msg: string) => console.log(`  ${paint("32", "ok")}    ${msg}`);
const bad = (msg: string) => console.log(`  ${paint("31", "FAIL")}  ${msg}`);
const info = (msg: string) => console.log(`        ${msg}`);
const indent = (text: string) =>
  text.trimEnd().split("\n").map((l) => `        ${paint("2", l)}`).join("\n");

class DemoError extends Error {}

// ---------------------------------------------------------------------------------- processes

interface RunResult {
  code: number;
  out: string;
  err: string;
}

/** Runs a command to completion; SIGKILL after `timeoutMs`. Never throws for a non-zero exit. */
async function exec(cmd: string[], timeoutMs = 10_000): Promise<RunResult> {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe", cwd: ROOT });
  active.add(proc);
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  try {
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code, out, err };
  } finally {
    clearTimeout(timer);
    active.delete(proc);
  }
}

/** Short-lived commands running right now (the build, a ping, ...), stopped first on teardown. */
const active = new Set<Bun.Subprocess>();

/** `exec` for the demo's steps: stops the step once teardown has begun. */
async function run(cmd: string[], timeoutMs?: number): Promise<RunResult> {
  if (teardownPromise) throw new DemoError("interrupted");
  const result = await exec(cmd, timeoutMs);
  if (teardownPromise) throw new DemoError("interrupted"); // e.g. a ping cut short by Ctrl-C
  return result;
}

/** Runs a command and throws a DemoError naming it (with its stderr) when it fails. */
async function must(cmd: string[], timeoutMs?: number): Promise<string> {
  const r = await run(cmd, timeoutMs);
  if (r.code !== 0) throw new DemoError(`\`${cmd.join(" ")}\` failed (exit ${r.code}): ${r.err.trim() || r.out.trim()}`);
  return r.out;
}

const inNs = (h: Host, cmd: string[]) => ["ip", "netns", "exec", h.ns, ...cmd];

/** True when process `proc` has exited (without waiting). */
const hasExited = (proc: Bun.Subprocess) => proc.exitCode !== null || proc.signalCode !== null;

async function waitExit(proc: Bun.Subprocess, ms: number): Promise<number | null> {
  return Promise.race([proc.exited, sleep(ms).then(() => null)]);
}

function logTail(h: Host, lines = 15): string {
  try {
    return readFileSync(h.log, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---------------------------------------------------------------------------------- state

const tag = `wtdemo-${process.pid}`;
/** Where the wontun logs go; created when the tunnels start. */
let logDir = "";
const hosts: Record<Host["key"], Host> = {
  server: { key: "server", ns: `${tag}-server`, underlay: "192.0.2.1", tunnel: "10.10.0.1", conf: "", log: "" },
  "client-A": { key: "client-A", ns: `${tag}-client-A`, underlay: "192.0.2.3", tunnel: "10.10.0.3", conf: "", log: "" },
  "client-B": { key: "client-B", ns: `${tag}-client-B`, underlay: "192.0.2.2", tunnel: "10.10.0.2", conf: "", log: "" },
};
for (const h of Object.values(hosts)) h.conf = join(CONF_DIR, `${h.key}.conf`);
const { server, "client-A": clientA, "client-B": clientB } = hosts;
/** Namespaces this run created (and so must delete). */
const created: Host[] = [];
/** Set once teardown starts; from then on no demo step starts a new process. */
let teardownPromise: Promise<boolean> | null = null;

// ---------------------------------------------------------------------------------- steps

async function preflight(): Promise<void> {
  section("Preflight");
  if (process.getuid?.() !== 0) throw new DemoError("run as root (network namespaces and TUN devices need it): sudo npm run demo");
  const missing = ["ip", "ping", "traceroute", "sysctl"].filter((t) => Bun.which(t) === null);
  if (missing.length > 0) {
    throw new DemoError(
      `missing tool(s): ${missing.join(", ")}; install them with: apt-get install iproute2 iputils-ping traceroute procps`,
    );
  }
  if (!existsSync("/dev/net/tun")) throw new DemoError("/dev/net/tun does not exist (no TUN support in this kernel/container)");
  ok("root; ip, ping, traceroute, sysctl and /dev/net/tun present");

  const npm = Bun.which("npm");
  const cmd = npm
    ? [npm, "run", "build"]
    : [process.execPath, "build", "--compile", "--minify", "src/cli/main.ts", "--outfile", "dist/wontun"];
  const started = performance.now();
  const r = await run(cmd, 180_000);
  if (r.code !== 0 || !existsSync(BIN)) {
    throw new DemoError(`could not build dist/wontun with \`${cmd.join(" ")}\` (exit ${r.code}):\n${indent(r.out + r.err)}`);
  }
  ok(`built dist/wontun (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

async function createTopology(): Promise<void> {
  section("Underlay: three namespaces, 192.0.2.0/24 on a bridge inside the server namespace");
  for (const h of [server, clientA, clientB]) {
    created.push(h); // first: a Ctrl-C can arrive while `ip netns add` runs
    await must(["ip", "netns", "add", h.ns]);
    await must(["ip", "-n", h.ns, "link", "set", "lo", "up"]);
  }
  await must(["ip", "-n", server.ns, "link", "add", "br0", "type", "bridge"]);
  await must(["ip", "-n", server.ns, "addr", "add", `${server.underlay}/24`, "dev", "br0"]);
  await must(["ip", "-n", server.ns, "link", "set", "br0", "up"]);
  for (const [h, port] of [[clientA, "to-A"], [clientB, "to-B"]] as const) {
    // Both veth ends are created from the server namespace; one end moves straight into the client's.
    await must(["ip", "-n", server.ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns]);
    await must(["ip", "-n", server.ns, "link", "set", port, "master", "br0", "up"]);
    await must(["ip", "-n", h.ns, "addr", "add", `${h.underlay}/24`, "dev", "eth0"]);
    await must(["ip", "-n", h.ns, "link", "set", "eth0", "up"]);
  }
  // The hub forwards tunnel traffic back out of the interface it came in on, which would make the
  // kernel send ICMP redirects ("Redirect Host" lines in ping). On a TUN they mean nothing, and they
  // also use up the per-host ICMP rate limit that traceroute's Time Exceeded replies need.
  // (`default` applies to the TUN interface wontun creates later.)
  await must(inNs(server, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0"]));
  for (const h of [server, clientA, clientB]) ok(`${h.ns.padEnd(28)} ${h.key.padEnd(8)} underlay ${h.underlay}`);
  info("in the server namespace only: ip_forward=1, send_redirects=0");
  for (const h of [clientA, clientB]) {
    const r = await run(inNs(h, ["ping", "-c", "1", "-W", "2", server.underlay]));
    if (r.code !== 0) throw new DemoError(`underlay broken: ${h.key} cannot ping ${server.underlay}`);
  }
  ok("underlay works (both clients ping 192.0.2.1)");
}

async function startTunnels(): Promise<void> {
  section("Tunnel: dist/wontun up examples/demo/<host>.conf in each namespace");
  logDir = mkdtempSync(join(tmpdir(), "wontun-demo-"));
  for (const h of Object.values(hosts)) h.log = join(logDir, `${h.key}.log`);
  info(`logs (--log-level debug) in ${logDir}, kept if the demo fails`);
  for (const h of [server, clientA, clientB]) {
    if (teardownPromise) throw new DemoError("interrupted");
    h.proc = Bun.spawn(inNs(h, [BIN, "up", h.conf, "--log-level", "debug"]), {
      cwd: ROOT,
      stdin: "ignore",
      stdout: "ignore",
      stderr: Bun.file(h.log),
      // Own session: a Ctrl-C in the terminal reaches only the demo, which then stops each wontun
      // exactly once with SIGTERM (a second signal would make wontun exit at once, with status 1).
      detached: true,
    });
    // The TUN interface is named after the config file: server, client-A, client-B.
    const deadline = Date.now() + 5_000;
    while ((await run(["ip", "-n", h.ns, "link", "show", "dev", h.key])).code !== 0) {
      if (hasExited(h.proc)) throw new DemoError(`wontun (${h.key}) exited with ${h.proc.exitCode}:\n${indent(logTail(h))}`);
      if (Date.now() > deadline) throw new DemoError(`wontun (${h.key}) did not create interface ${h.key}:\n${indent(logTail(h))}`);
      await sleep(100);
    }
    ok(`${h.key.padEnd(8)} pid ${String(h.proc.pid).padEnd(7)} interface ${h.key} ${h.tunnel}/24`);
  }

  const started = performance.now();
  for (const [from, to] of [[clientA, server], [clientB, server]] as const) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if ((await run(inNs(from, ["ping", "-c", "1", "-W", "1", to.tunnel]))).code === 0) break;
      for (const h of [server, clientA, clientB]) {
        if (hasExited(h.proc!)) throw new DemoError(`wontun (${h.key}) exited with ${h.proc!.exitCode}:\n${indent(logTail(h))}`);
      }
      if (Date.now() > deadline) {
        throw new DemoError(`${from.key} could not ping ${to.tunnel} within 10 s; ${from.key}'s log:\n${indent(logTail(from))}`);
      }
    }
    ok(`${from.key} reaches the server over the tunnel (ping ${to.tunnel}) after ${Math.round(performance.now() - started)} ms`);
  }
}

interface Rtt {
  min: number;
  avg: number;
  max: number;
  loss: string;
}

async function pingStats(from: Host, to: string, count = 10): Promise<Rtt> {
  const r = await run(inNs(from, ["ping", "-q", "-n", "-c", String(count), "-i", "0.2", "-W", "1", to]), 20_000);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\//.exec(r.out);
  const loss = /([\d.]+)% packet loss/.exec(r.out)?.[1] ?? "?";
  if (r.code !== 0 || !rtt) throw new DemoError(`ping ${to} from ${from.key} failed:\n${indent(r.out + r.err)}`);
  return { min: +rtt[1], avg: +rtt[2], max: +rtt[3], loss: `${loss}%` };
}

async function showTraffic(): Promise<void> {
  section(`ping -c 3 ${clientB.tunnel} from client-A (client-A -> server -> client-B, all over the tunnel)`);
  const p = await run(inNs(clientA, ["ping", "-n", "-c", "3", clientB.tunnel]), 15_000);
  console.log(indent(p.out + p.err));
  if (p.code !== 0) throw new DemoError(`client-A cannot ping client-B (${clientB.tunnel}) through the server`);
  ok("client-A reaches client-B through the server");

  section(`traceroute -n ${clientB.tunnel} from client-A`);
  // -N 1: one probe at a time, so that the probes past the last hop do not trip the kernel's ICMP
  // rate limit (about one error per second per host, bursts of 6) and show up as "*".
  const t = await run(inNs(clientA, ["traceroute", "-n", "-N", "1", "-w", "2", "-m", "5", clientB.tunnel]), 30_000);
  console.log(indent(t.out + t.err));
  const hops = t.out.split("\n").filter((l) => /^\s*\d+\s/.test(l));
  const firstHop = /^\s*1\s+(\S+)/.exec(hops[0] ?? "")?.[1];
  const lastHop = /^\s*\d+\s+(\S+)/.exec(hops.at(-1) ?? "")?.[1];
  if (t.code !== 0 || firstHop !== server.tunnel || lastHop !== clientB.tunnel) {
    throw new DemoError(`expected hop 1 = ${server.tunnel} and last hop = ${clientB.tunnel}, got ${firstHop ?? "none"} / ${lastHop ?? "none"}`);
  }
  ok(`first hop is the server's tunnel address ${server.tunnel}, then ${clientB.tunnel}`);
}

async function summary(): Promise<void> {
  section("Summary (10 pings each, 0.2 s apart)");
  const rows: [string, Host, string][] = [
    ["client-A -> server    underlay", clientA, server.underlay],
    ["client-A -> server    tunnel  ", clientA, server.tunnel],
    ["client-A -> client-B  underlay", clientA, clientB.underlay],
    ["client-A -> client-B  tunnel  ", clientA, clientB.tunnel],
  ];
  info(`${"path".padEnd(31)} ${"dest".padEnd(10)} ${"min/avg/max ms".padEnd(22)} loss`);
  for (const [label, from, to] of rows) {
    const s = await pingStats(from, to);
    info(`${label} ${to.padEnd(10)} ${`${s.min.toFixed(3)}/${s.avg.toFixed(3)}/${s.max.toFixed(3)}`.padEnd(22)} ${s.loss}`);
  }
  info("(the tunnel adds a trip through userspace on each host; client-A -> client-B crosses the server's TUN twice)");

  console.log("");
  info("handshakes, from the wontun logs (debug level):");
  for (const h of [server, clientA, clientB]) {
    // Debug lines such as "peer client-A: none -> handshake-received", chained per peer.
    const chains = new Map<string, string[]>();
    for (const m of readFileSync(h.log, "utf8").matchAll(/peer (\S+): (\S+) -> (\S+)/g)) {
      const chain = chains.get(m[1]) ?? [m[2]];
      chain.push(m[3]);
      chains.set(m[1], chain);
    }
    const text = [...chains].map(([peer, states]) => `peer ${peer}: ${states.join(" -> ")}`).join("; ");
    info(`  ${h.key.padEnd(8)} ${text || "(no state transitions logged)"}`);
  }
}

// ---------------------------------------------------------------------------------- teardown

/** Stops the wontun processes and deletes the namespaces; true when everything went as expected. */
function teardown(): Promise<boolean> {
  teardownPromise ??= (async () => {
    // Stop the step in progress and let it finish (an `ip netns add` must not race the deletes).
    for (const proc of active) proc.kill("SIGTERM");
    await Promise.all([...active].map((proc) => waitExit(proc, 2_000)));
    if (created.length === 0) return true;
    section("Teardown");
    let clean = true;
    const running = Object.values(hosts).filter((h) => h.proc);
    for (const h of running) if (!hasExited(h.proc!)) h.proc!.kill("SIGTERM");
    for (const h of running) {
      let code = await waitExit(h.proc!, 5_000);
      if (code === null) {
        h.proc!.kill("SIGKILL");
        code = await waitExit(h.proc!, 2_000);
        bad(`wontun (${h.key}) did not exit within 5 s of SIGTERM; killed`);
        clean = false;
      } else if (code === 0) {
        ok(`wontun (${h.key}) exited with status 0`);
      } else {
        bad(`wontun (${h.key}) exited with status ${code}:\n${indent(logTail(h, 5))}`);
        clean = false;
      }
      if (created.includes(h)) {
        const still = await exec(["ip", "-n", h.ns, "link", "show", "dev", h.key]);
        if (still.code === 0) {
          bad(`interface ${h.key} still exists in ${h.ns}`);
          clean = false;
        } else {
          ok(`interface ${h.key} is gone`);
        }
      }
    }
    for (const h of [...created].reverse()) {
      if (!existsSync(`/var/run/netns/${h.ns}`)) continue; // never created
      // Anything still running in the namespace (an interrupted ping, a stuck wontun) goes first.
      const pids = (await exec(["ip", "netns", "pids", h.ns])).out.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // already gone
        }
      }
      const del = await exec(["ip", "netns", "del", h.ns]);
      if (del.code !== 0) {
        bad(`could not delete namespace ${h.ns}: ${del.err.trim()}`);
        clean = false;
      }
    }
    if (clean) ok(`deleted namespaces ${created.map((h) => h.ns).join(", ")}`);
    return clean;
  })();
  return teardownPromise;
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) {
      console.log(`\n${signal} again: teardown is already running, please wait`);
      return;
    }
    interrupted = true;
    console.log(`\n${signal}: stopping the demo`);
    void teardown().then((clean) => {
      console.log(logDir ? `\ninterrupted; logs kept in ${logDir}` : "\ninterrupted");
      process.exit(clean ? 130 : 1);
    });
  });
}

// ---------------------------------------------------------------------------------- main

async function main(): Promise<number> {
  let success = false;
  try {
    await preflight();
    await createTopology();
    await startTunnels();
    await showTraffic();
    await summary();
    success = true;
  } catch (err) {
    if (interrupted) return new Promise<number>(() => {}); // the signal handler finishes and exits
    section("Error");
    bad(err instanceof DemoError ? err.message : String((err as Error)?.stack ?? err));
  } finally {
    if (!interrupted) success = (await teardown()) && success;
  }
  if (interrupted) return new Promise<number>(() => {});
  if (success) {
    if (logDir) rmSync(logDir, { recursive: true, force: true });
    console.log(`\n${paint("32", "demo finished: all checks passed")}`);
    return 0;
  }
  console.log(`\n${paint("31", "demo failed")}${logDir ? `; logs kept in ${logDir}` : ""}`);
  return 1;
}

process.exit(await main());
