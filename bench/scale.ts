// Scale figures for wontun's WireGuard mode (see bench/README.md):
//   - start-up: `dist/wontun --version`, and `dist/wontun up` until its "running" line
//     (1 peer WireGuard, 1 peer plaintext, N peers WireGuard), with RSS once running;
//   - N configured peers (default 1000): all of them handshake with one `dist/wontun up`
//     responder over real UDP and get a ping through the tunnel, driven by one in-process
//     client (bench/lib/handshake-driver.ts) in another namespace;
//   - handshakes per second that responder completes over UDP, offered by the client at up to
//     ~9100/s (more than either responder takes on a small machine), and the same in-process on
//     the sans-IO WireGuardProtocol (no IO: what one core can do);
//   - the N-peer and handshake-rate tests again with the current wireguard-go as the responder
//     (the reference), and with Debian's wireguard-go when installed (bench/lib/wg-go.ts);
//   - the AllowedIPs trie with 100k prefixes (bench/trie.ts: inserts/s, lookups/s, memory).
// Writes bench/results/scale-<timestamp>.json and scale-latest.json. Needs root.
//
//   bun bench/scale.ts [--peers 1000] [--rate-seconds 5] [--rate-runs 3] [--sources 506] [--runs 10]
//                      [--prefixes 100000] [--no-wg-go] [--quick] [--out DIR]
//                      [--only version,inprocess,trie,startup,peers] [--binary PATH]
//                      [--variants 'NAME:K=V,K=V;NAME2:K=V'] [--variant-rounds N]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeKey, generatePrivateKey, publicKeyOf } from "../src/crypto/keys.ts";
import { canRunIntegration } from "../test/helpers/netns.ts";
import { newKeys, wgQuickConfig } from "../test/helpers/wireguard.ts";
import { commandLine, numberOption } from "./lib/args.ts";
import type { DriverJob } from "./lib/handshake-driver.ts";
import { measureInProcess } from "./lib/inprocess.ts";
import {
  BINARY,
  REPO,
  ifName,
  RESULTS,
  loadAverage,
  machineInfo,
  removeWgSocket,
  startWontunBench,
  toolVersion,
  waitForFast,
  wasInterrupted,
  withLab,
  type Host,
  type SpawnedProcess,
} from "./lib/lab.ts";
import { cpuMeter, openFds, statusMiB, threads } from "./lib/proc.ts";
import { fmt, summarize, type Summary } from "./lib/stats.ts";
import { findWireguardGo, referenceNote, startWgGoBuild, type WgGoBuild } from "./lib/wg-go.ts";

const HELP = `bun bench/scale.ts — handshake rate, many peers, trie size, start-up time

Options:
  --peers N          peers in the big config (default 1000)
  --rate-seconds S   timed window of the handshake-rate test (default 5)
  --rate-runs N      timed windows; the figure is their median (default 3; 0: connect only)
  --sources N        client source addresses (the responder limits each to 20 initiations/s
                     under load; the client paces each at 18/s; default and most 506)
  --runs N           start-ups timed per figure (default 10; --version gets twice as many)
  --prefixes N       prefixes for the trie figure (default 100000)
  --no-wg-go         skip the same handshake tests against wireguard-go (current, and
                     Debian's; each skipped anyway when missing, and both without wg)
  --quick            a small, fast pass (100 peers, one 2 s window, 3 runs, 10k prefixes)
  --out DIR          where to write results (default bench/results)
  --only LIST        run only these parts: version, inprocess, trie, startup, peers (the N-peer
                     connect and handshake-rate tests; with wireguard-go unless --no-wg-go)
  --binary PATH      the wontun to run (default dist/wontun; e.g. a script that runs
                     \`bun --cpu-prof-md src/cli/main.ts "$@"\` to profile the responder)
  --variants SPEC    A/B runs of the N-peer tests: "NAME:K=V,K=V;NAME2:K=V" runs the wontun
                     responder once per variant with those environment variables (e.g.
                     "off:WONTUN_HS_FAST=0;on:WONTUN_HS_FAST=1"), interleaved --variant-rounds
                     times; reports each variant's medians and its ratio to the first variant
  --variant-rounds N rounds of the variants (default 3)
  --help

The comparison is against wireguard-go (current), the current upstream build (WIREGUARD_GO=PATH
names one; otherwise the one provided next to the repository), with Debian's wireguard-go as a
second row when installed. Without a current build, the output says so.`;

const opts = commandLine(HELP, ["quick", "no-wg-go"]);
const quick = opts.has("quick");
const config = {
  peers: numberOption(opts, "peers", quick ? 100 : 1000, 1),
  rateSeconds: numberOption(opts, "rate-seconds", quick ? 2 : 5, 1),
  rateRuns: numberOption(opts, "rate-runs", quick ? 1 : 3, 0),
  sources: numberOption(opts, "sources", quick ? 64 : 506, 1),
  runs: numberOption(opts, "runs", quick ? 3 : 10, 1),
  prefixes: numberOption(opts, "prefixes", quick ? 10_000 : 100_000, 1),
  wgGo: !opts.has("no-wg-go") && findWireguardGo().hasWg,
  quick,
  out: opts.get("out") ?? RESULTS,
  only: new Set((opts.get("only") ?? "version,inprocess,trie,startup,peers").split(",").map((x) => x.trim())),
  binary: opts.get("binary") ?? BINARY,
  variants: parseVariants(opts.get("variants")),
  variantRounds: numberOption(opts, "variant-rounds", 3, 1),
};
for (const part of config.only) {
  if (!["version", "inprocess", "trie", "startup", "peers"].includes(part)) {
    console.error(`--only: unknown part "${part}" (version, inprocess, trie, startup, peers)`);
    process.exit(2);
  }
}

interface Variant {
  name: string;
  env: Record<string, string>;
}

/** "NAME:K=V,K=V;NAME2:K=V" -> variants (an empty list when absent). */
function parseVariants(spec: string | undefined): Variant[] {
  if (!spec) return [];
  return spec.split(";").filter((v) => v.trim()).map((v) => {
    const colon = v.indexOf(":");
    const name = (colon < 0 ? v : v.slice(0, colon)).trim();
    const env: Record<string, string> = {};
    for (const kv of (colon < 0 ? "" : v.slice(colon + 1)).split(",")) {
      if (!kv.trim()) continue;
      const eq = kv.indexOf("=");
      if (eq <= 0) {
        console.error(`--variants: "${kv}" is not K=V`);
        process.exit(2);
      }
      env[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
    }
    return { name, env };
  });
}

/** Runs `fn` with `env` added to process.env (what spawned processes inherit), then restores it. */
async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
if (config.peers > 65000 || config.sources > 506) {
  console.error("--peers must be at most 65000 and --sources at most 506 (two /24 documentation ranges)");
  process.exit(2);
}

/** Quiet seconds between the connect phase and the memory reading that follows it. */
const SETTLE_SECONDS = 3;

const missing: string[] = [];
if (!canRunIntegration) missing.push("root, /dev/net/tun and iproute2's ip");
if (!(await Bun.file(config.binary).exists())) missing.push(`${config.binary} (run npm run build)`);
if (missing.length) {
  console.error(`bench:scale: cannot run, missing: ${missing.join("; ")}`);
  process.exit(1);
}

const t0 = performance.now();
const progress = (line: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}\n`);
const started = new Date();
const loadBefore = loadAverage();
const report: Record<string, unknown> = {
  schema: "wontun-bench-scale/1",
  date: started.toISOString(),
  command: ["bun", "bench/scale.ts", ...process.argv.slice(2)].join(" "),
  options: config,
  machine: { ...machineInfo(), loadAverageBefore: loadBefore },
  tools: {
    wontun: toolVersion([BINARY, "--version"]),
    /** Versions only (never paths), null when absent. */
    wireguardGoCurrent: findWireguardGo().current?.version ?? null,
    wireguardGoDebian: findWireguardGo().debian?.version ?? null,
  },
};

// ---- 1. dist/wontun --version ------------------------------------------------------------

async function timeVersion(n: number): Promise<Summary> {
  const ms: number[] = [];
  for (let i = 0; i < n + 1; i++) {
    const t0 = performance.now();
    const p = Bun.spawn([BINARY, "--version"], { stdout: "ignore", stderr: "ignore" });
    const code = await p.exited;
    const t = performance.now() - t0;
    if (code !== 0) throw new Error(`dist/wontun --version exited ${code}`);
    if (i > 0) ms.push(t); // the first run also pays for reading 100 MB from disk
  }
  return summarize(ms);
}

if (config.only.has("version")) {
  progress(`--version start-up, ${config.runs * 2} runs...`);
  report.versionStartupMs = await timeVersion(config.runs * 2);
}

// ---- 2. in-process handshakes (sans-IO) --------------------------------------------------

const inProcessRuns = config.only.has("inprocess") ? Array.from({ length: quick ? 1 : 3 }, () => measureInProcess(config.peers, quick ? 1000 : 3000)) : [];
if (inProcessRuns.length) progress("handshakes in-process (sans-IO WireGuardProtocol)...");
const inProcess = !inProcessRuns.length ? null : {
  peers: config.peers,
  aead: inProcessRuns[0].aead,
  handshakesPerSecond: summarize(inProcessRuns.map((r) => r.handshakesPerSecond)),
  microsecondsEach: summarize(inProcessRuns.map((r) => r.microsecondsEach)),
  cookieRepliesPerSecond: summarize(inProcessRuns.map((r) => r.cookieRepliesPerSecond)),
  initiationsMadePerSecond: summarize(inProcessRuns.map((r) => r.initiationsMadePerSecond)),
  runs: inProcessRuns,
};
report.inProcess = inProcess;

// ---- 3. the trie (bench/trie.ts) ---------------------------------------------------------

const trie = !config.only.has("trie") ? null : await (async () => {
  progress(`AllowedIPs trie, ${config.prefixes} prefixes (bench/trie.ts)...`);
  const p = Bun.spawn([process.execPath, join(REPO, "bench/trie.ts"), String(config.prefixes), quick ? "500000" : "2000000"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`bench/trie.ts failed (${code}): ${err}`);
  const num = (re: RegExp) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : Number.NaN;
  };
  return {
    prefixes: config.prefixes,
    insertsPerSecondMillions: num(/^insert:.*?= ([\d.]+) M inserts\/s/m),
    heapMiB: num(/^memory: heap grew ([\d.]+) MiB/m),
    bytesPerPrefix: num(/^memory: .*?= ([\d.]+) B\/prefix/m),
    tablesMiB: num(/^memory: .*?tables ([\d.]+) MiB/m),
    lookupsPerSecondMillionsV4: num(/^lookup: IPv4 lookupPacket ([\d.]+) M lookups\/s/m),
    lookupNsV4: num(/^lookup: .*?= (\d+) ns each/m),
    lookupsPerSecondMillionsV6: num(/^ipv6: .*?([\d.]+) M lookups\/s/m),
    allocationKiB: num(/^alloc: heap changed by (-?[\d.]+) KiB/m),
    output: out.trim().split("\n"),
  };
})();
report.trie = trie;

// ---- 4. over the network: start-ups, N peers, handshake rate -----------------------------

interface Startup {
  startMs: Summary;
  stopMs: Summary;
  rssMiB: Summary;
}

async function timeUp(host: Host, conf: string, n: number): Promise<Startup> {
  const start: number[] = [];
  const stop: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < n; i++) {
    const { proc, startMs } = await startWontunBench(host, conf, { timeoutMs: 60_000, binary: config.binary });
    start.push(startMs);
    rss.push(statusMiB(proc.proc.pid, "VmRSS"));
    const t0 = performance.now();
    proc.kill("SIGTERM");
    const code = await proc.exited;
    stop.push(performance.now() - t0);
    if (code !== 0) throw new Error(`wontun exited ${code} on SIGTERM:\n${proc.output().slice(-1500)}`);
  }
  return { startMs: summarize(start), stopMs: summarize(stop), rssMiB: summarize(rss) };
}

/** Resolves when `line` appears in the process's output. */
function waitForLine(p: SpawnedProcess, line: string, timeoutMs: number): Promise<void> {
  return waitForFast(() => p.output().includes(line), timeoutMs, `"${line}" from the handshake driver`);
}

/**
 * Runs the handshake driver in `cli` against the responder process `pid` (already running with
 * the big config): the connect phase, then the timed rate windows. CPU, memory and fds of the
 * responder are read from /proc around the driver's MARK lines.
 */
async function drive(cli: Host, pid: number, jobFile: string) {
  const driver = cli.spawn([process.execPath, join(REPO, "bench/lib/handshake-driver.ts"), jobFile]);
  const driverDone = driver.exited;
  const c0 = cpuMeter([pid]);
  await waitForLine(driver, "MARK connect-end", 180_000);
  const connectCpu = c0.stop()[0];
  const afterConnect = {
    rssMiB: statusMiB(pid, "VmRSS"),
    hwmMiB: statusMiB(pid, "VmHWM"),
    openFds: openFds(pid),
    threads: threads(pid),
    settledRssMiB: 0,
    /** Of which pages of the executable and libraries, and anonymous memory (heap, buffers). */
    settledFileMiB: 0,
    settledAnonMiB: 0,
  };
  await waitForLine(driver, "MARK settled", (SETTLE_SECONDS + 30) * 1000);
  afterConnect.settledRssMiB = statusMiB(pid, "VmRSS");
  afterConnect.settledFileMiB = statusMiB(pid, "RssFile");
  afterConnect.settledAnonMiB = statusMiB(pid, "RssAnon");
  const rateCpu: number[] = [];
  for (let run = 1; run <= config.rateRuns; run++) {
    await waitForLine(driver, `MARK rate-window-start ${run}`, 180_000);
    const c1 = cpuMeter([pid]);
    await waitForLine(driver, `MARK rate-window-end ${run}`, (config.rateSeconds + 30) * 1000);
    rateCpu.push(c1.stop()[0]);
  }
  let timer: Timer | undefined;
  const code = await Promise.race([driverDone, new Promise<number>((resolve) => (timer = setTimeout(() => resolve(-1), 180_000)))]);
  clearTimeout(timer);
  const out = driver.output();
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (code !== 0 || !line) throw new Error(`handshake driver failed (exit ${code}):\n${out.slice(-3000)}`);
  if (process.env.DRIVER_DEBUG) process.stderr.write(out);
  const result = JSON.parse(line.slice("RESULT ".length));
  const runs: Array<Record<string, number>> = result.rate ?? [];
  if (!runs.length) return { connect: { afterConnect, responderCpuPercentDuringConnect: connectCpu, connect: result.connect }, rate: null as any };
  runs.forEach((r, i) => (r.responderCpuPercent = rateCpu[i]));
  return {
    connect: { afterConnect, responderCpuPercentDuringConnect: connectCpu, connect: result.connect },
    rate: {
      handshakesPerSecond: summarize(runs.map((r) => r.handshakesPerSecond)),
      /** Initiations the client sent per second in the timed window: what the responder was offered. */
      sentPerSecond: summarize(runs.map((r) => r.sentPerSecond)),
      /** Offered initiations that got no answer within 5 s (REKEY_TIMEOUT), in the timed windows. */
      timeoutsInWindow: runs.reduce((n, r) => n + r.timeoutsInWindow, 0),
      /** Initiations still unanswered when each window closed, summed over the runs. */
      unansweredAtEnd: runs.reduce((n, r) => n + r.unansweredAtEnd, 0),
      windowFullShare: Math.max(...runs.map((r) => r.windowFullShare)),
      limitedBy: limitedBy(runs),
      responderCpuPercent: summarize(rateCpu),
      clientCpuPercent: summarize(runs.map((r) => r.clientCpuPercent)),
      responses: runs.reduce((n, r) => n + r.responses, 0),
      verified: runs.reduce((n, r) => n + r.verified, 0),
      cookieReplies: runs.reduce((n, r) => n + r.cookieReplies, 0),
      timeouts: runs.reduce((n, r) => n + r.timeouts, 0),
      sourcesRanOut: Math.max(...runs.map((r) => r.sourcesRanOut)),
      offeredMaxPerSecond: runs[0]?.offeredMaxPerSecond,
      seconds: config.rateSeconds,
      runs,
      responderRssAfterMiB: statusMiB(pid, "VmRSS"),
      responderHwmMiB: statusMiB(pid, "VmHWM"),
      driverCounters: result.counters,
    },
  };
}

/**
 * What held the rate down: "responder" when the client offered clearly more than was answered
 * (initiations went unanswered, or the in-flight window filled up because answers lagged),
 * otherwise "offered rate": the responder kept up with all it was offered (a lower bound).
 */
function limitedBy(runs: Array<Record<string, number>>): "responder" | "offered rate" {
  const sent = runs.reduce((n, r) => n + r.sentPerSecond, 0);
  const taken = runs.reduce((n, r) => n + r.handshakesPerSecond, 0);
  const full = Math.max(...runs.map((r) => r.windowFullShare));
  return sent > taken * 1.05 || full > 0.2 ? "responder" : "offered rate";
}

const plainConf = (name: string, address: string) =>
  `[Interface]\nName=${name}\nAddress=${address}\nListenPort=19988\n\n[Peer]\nName=other\nAllowedIPs=10.99.0.2/32\n`;

try {
  await withLab("scale", async (env) => {
    progress(`lab ${env.lab.id}: namespaces ${env.lab.id}-srv and ${env.lab.id}-cli`);
    const srv = await env.lab.host("srv");
    const cli = await env.lab.host("cli");
    const { aIf: srvIf, bIf: cliIf } = await env.lab.link(srv, "192.0.2.1/24", cli, "192.0.2.2/24");
    // The client's source addresses come from the two documentation ranges the project's test
    // hosts may use: 198.51.100.1-253, then 203.0.113.1-253 (.254 is the server in each).
    const sources = Array.from({ length: config.sources }, (_, i) =>
      i < 253 ? `198.51.100.${i + 1}` : `203.0.113.${i - 252}`,
    );
    const batch = sources.map((a) => `addr add ${a}/24 dev ${cliIf}`).join("\n");
    const added = await cli.run(["ip", "-batch", "-"], { stdin: `${batch}\n`, timeoutMs: 60_000 });
    if (added.code !== 0) throw new Error(`adding source addresses: ${added.stderr}`);
    await srv.ip(`addr add 198.51.100.254/24 dev ${srvIf}`);
    await srv.ip(`addr add 203.0.113.254/24 dev ${srvIf}`);

    // -- start-up, small configs
    if (config.only.has("startup")) {
    const baseline: number[] = [];
    for (let i = 0; i < config.runs; i++) {
      const t0 = performance.now();
      await srv.run(["true"]);
      baseline.push(performance.now() - t0);
    }
    report.netnsExecBaselineMs = summarize(baseline);
    progress(`wontun up start-up (1 peer, WireGuard), ${config.runs} runs...`);
    const one = newKeys();
    const other = newKeys();
    // Config file names give the interface names (and control sockets): unique to this run.
    const wg1 = env.dir.write(`${ifName(env.lab, "w1")}.conf`, wgQuickConfig({
      keys: one,
      addresses: ["10.99.0.1/24"],
      listenPort: 51820,
      peers: [{ publicKey: other.publicKey, allowedIps: ["10.99.0.2/32"] }],
    }));
    report.upWg1 = await timeUp(srv, wg1, config.runs);
    progress(`wontun up start-up (1 peer, plaintext), ${config.runs} runs...`);
    report.upPlain1 = await timeUp(srv, env.dir.write(`${ifName(env.lab, "p1")}.conf`, plainConf("srv", "10.99.0.1/24")), config.runs);
    }

    // -- the big config
    const n = config.peers;
    const server = newKeys();
    const peers = Array.from({ length: n }, (_, i) => {
      const priv = generatePrivateKey();
      // 10.200.0.0/16, skipping .0.0 and .0.1 (the server).
      const host = i + 2;
      return { privateKey: encodeKey(priv), publicKey: encodeKey(publicKeyOf(priv)), address: `10.200.${host >> 8}.${host & 0xff}` };
    });
    const bigConf = env.dir.write(`${ifName(env.lab, "big")}.conf`, wgQuickConfig({
      keys: server,
      addresses: ["10.200.0.1/16"],
      listenPort: 51820,
      peers: peers.map((p) => ({ publicKey: p.publicKey, allowedIps: [`${p.address}/32`] })),
    }));
    if (config.only.has("startup")) {
      const bigRuns = Math.max(1, Math.ceil(config.runs / 3));
      progress(`wontun up start-up (${n} peers, WireGuard), ${bigRuns} runs...`);
      report.upWgBig = await timeUp(srv, bigConf, bigRuns);
    }
    if (!config.only.has("peers")) return;

    const jobFor = (prepareRate: number): string => {
      const job: DriverJob = {
        responderPublicKey: server.publicKey,
        endpoint: { host: "192.0.2.1", port: 51820 },
        tunnelAddress: "10.200.0.1",
        peers: peers.map(({ privateKey, address }) => ({ privateKey, address })),
        sources,
        perSourceRate: 18,
        perSourceBurst: 1, // evenly paced: see bench/README.md
        window: 128,
        rateWindow: 1_000_000, // no in-flight limit: only the pacing bounds what is offered
        connectTimeoutSeconds: 120,
        settleSeconds: SETTLE_SECONDS,
        rateSeconds: config.rateRuns > 0 ? config.rateSeconds : 0,
        rateRuns: config.rateRuns,
        warmupSeconds: 1,
        prepareRate,
      };
      return env.dir.write(`driver-job-${prepareRate}.json`, JSON.stringify(job));
    };

    // Every responder is offered the same: the most the pacing allows (per source address and per
    // peer), with initiations prepared for all of it, so that the offered rate is not the limit.
    const offeredCap = Math.min(sources.length * 18, n * 10);
    const runWontun = async (env: Record<string, string>) => {
      const { proc: responder, startMs } = await withEnv(env, () => startWontunBench(srv, bigConf, { timeoutMs: 60_000, binary: config.binary }));
      const rssRunning = statusMiB(responder.proc.pid, "VmRSS");
      const run = await drive(cli, responder.proc.pid, jobFor(offeredCap));
      responder.kill("SIGTERM");
      const code = await responder.exited;
      if (code !== 0) throw new Error(`wontun exited ${code} on SIGTERM:\n${responder.output().slice(-1500)}`);
      return { bigConfig: { peers: n, startMs, rssRunningMiB: rssRunning, ...run.connect }, overNetwork: run.rate };
    };
    if (config.variants.length) {
      // A/B: each variant once per round, in turn, so that drift of the machine hits all alike.
      const results = new Map<string, Array<Awaited<ReturnType<typeof runWontun>>>>(config.variants.map((v) => [v.name, []]));
      for (let round = 1; round <= config.variantRounds; round++) {
        for (const v of config.variants) {
          progress(`round ${round}/${config.variantRounds}, variant ${v.name} (${JSON.stringify(v.env)}): ${n} peers, then the handshake rate...`);
          results.get(v.name)!.push(await runWontun(v.env));
        }
      }
      report.variants = config.variants.map((v) => {
        const rs = results.get(v.name)!;
        return {
          name: v.name,
          env: v.env,
          connectSeconds: summarize(rs.map((x) => x.bigConfig.connect.elapsedSeconds)),
          connectCpuPercent: summarize(rs.map((x) => x.bigConfig.responderCpuPercentDuringConnect)),
          settledRssMiB: summarize(rs.map((x) => x.bigConfig.afterConnect.settledRssMiB)),
          settledFileMiB: summarize(rs.map((x) => x.bigConfig.afterConnect.settledFileMiB)),
          settledAnonMiB: summarize(rs.map((x) => x.bigConfig.afterConnect.settledAnonMiB)),
          rssRunningMiB: summarize(rs.map((x) => x.bigConfig.rssRunningMiB)),
          handshakesPerSecond: summarize(rs.map((x) => x.overNetwork?.handshakesPerSecond.median ?? Number.NaN)),
          responderCpuPercent: summarize(rs.map((x) => x.overNetwork?.responderCpuPercent.median ?? Number.NaN)),
          runs: rs,
        };
      });
    } else {
      progress(`${n} peers on wontun: handshake + ping each, then the handshake rate, ${config.rateRuns} x ${config.rateSeconds} s...`);
      Object.assign(report, await runWontun({}));
    }

    // The same peers, keys, client and pacing against wireguard-go: the current build (the
    // reference), then Debian's when installed.
    const builds = findWireguardGo();
    const others = config.wgGo ? [builds.current, builds.debian].filter((b): b is WgGoBuild => b !== null) : [];
    if (config.wgGo && !builds.current) progress(referenceNote());
    for (const build of others) {
      progress(`${n} peers on ${build.label} ${build.version}: the same...`);
      const ifname = ifName(env.lab, build.kind === "wg-go-current" ? "gc" : "gd");
      env.onCleanup(() => removeWgSocket(ifname));
      const wg = await startWgGoBuild(build, srv, env.dir, ifname, {
        keys: server,
        addresses: ["10.200.0.1/16"],
        listenPort: 51820,
        peers: peers.map((p) => ({ publicKey: p.publicKey, allowedIps: [`${p.address}/32`] })),
      });
      const rss = statusMiB(wg.proc.pid, "VmRSS");
      const wgRun = await drive(cli, wg.proc.pid, jobFor(offeredCap));
      wg.kill("SIGTERM");
      await wg.exited;
      const entry = { label: build.label, version: build.version, peers: n, rssConfiguredMiB: rss, ...wgRun.connect, overNetwork: wgRun.rate };
      if (build.kind === "wg-go-current") report.wireguardGoCurrent = entry;
      else report.wireguardGo = entry;
    }
  });
} catch (e) {
  if (wasInterrupted()) await new Promise(() => {});
  console.error(`bench:scale failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
}

// ---- report ------------------------------------------------------------------------------

(report.machine as Record<string, unknown>).loadAverageAfter = loadAverage();
const r = report as any;
const span = (s: Summary, unit = "ms") => `${fmt(s.median)} ${unit} (${fmt(s.min)}–${fmt(s.max)})`;
const net = r.overNetwork;
const rateLine = (label: string, x: any) =>
  `  ${label.padEnd(39)}${span(x.handshakesPerSecond, "/s")} taken of ${fmt(x.sentPerSecond.median)}/s offered ` +
  `(pacing allows ${x.offeredMaxPerSecond}/s; limited by the ${x.limitedBy}${x.limitedBy === "offered rate" ? ": a lower bound" : ""}), ` +
  `${config.rateRuns} x ${x.seconds} s, ${x.unansweredAtEnd} unanswered when the windows closed; ` +
  `responder CPU ${fmt(x.responderCpuPercent.median)}%, client CPU ${fmt(x.clientCpuPercent.median)}%; ` +
  `${x.verified}/${x.responses} responses verified, ${x.cookieReplies} cookie replies, ${x.timeouts} timeouts; ` +
  `RSS afterwards ${fmt(x.responderRssAfterMiB)} MiB (peak ${fmt(x.responderHwmMiB)})` +
  (x.sourcesRanOut > 0 ? ` [${x.sourcesRanOut} source(s) ran out of prepared initiations: a lower bound]` : "");
const connectLine = (label: string, x: any) =>
  `  ${label.padEnd(39)}${x.connect.completed}/${x.connect.peers} peers in ${fmt(x.connect.elapsedSeconds)} s ` +
  `(${x.connect.retries} retries; responder CPU ${fmt(x.responderCpuPercentDuringConnect)}%); afterwards RSS ${fmt(x.afterConnect.rssMiB)} MiB ` +
  `(peak ${fmt(x.afterConnect.hwmMiB)}), ${SETTLE_SECONDS} s later ${fmt(x.afterConnect.settledRssMiB)} MiB (${fmt(x.afterConnect.settledFileMiB)} file-backed, ${fmt(x.afterConnect.settledAnonMiB)} anonymous); ${x.afterConnect.openFds} fds, ${x.afterConnect.threads} threads`;
const wg = r.wireguardGo;
const wgc = r.wireguardGoCurrent;
const ratioTo = (label: string, v: number, ref: number, better: "higher" | "lower") =>
  `  ${label.padEnd(39)}${fmt(v / ref)}× (${better} is better)`;
const refRun = wgc ?? wg;
const variantLines = (): string[] => {
  const vs = r.variants as any[] | undefined;
  if (!vs?.length) return [];
  const first = vs[0];
  const ratio = (v: number, ref: number) => `×${fmt(v / ref)}`;
  return [
    `A/B variants of the wontun responder, ${config.variantRounds} interleaved rounds, median (min–max); ratio to "${first.name}"`,
    ...vs.flatMap((v) => [
      `  ${v.name.padEnd(10)} ${JSON.stringify(v.env)}`,
      `    ${config.peers} peers connected    ${span(v.connectSeconds, "s")} ${ratio(v.connectSeconds.median, first.connectSeconds.median)}; responder CPU ${fmt(v.connectCpuPercent.median)}%`,
      `    RSS ${SETTLE_SECONDS} s after          ${span(v.settledRssMiB, "MiB")} ${ratio(v.settledRssMiB.median, first.settledRssMiB.median)} (file ${fmt(v.settledFileMiB.median)}, anon ${fmt(v.settledAnonMiB.median)}); before any handshake ${fmt(v.rssRunningMiB.median)} MiB`,
      `    handshakes/s over UDP  ${span(v.handshakesPerSecond, "/s")} ${ratio(v.handshakesPerSecond.median, first.handshakesPerSecond.median)}; responder CPU ${fmt(v.responderCpuPercent.median)}%`,
    ]),
    "",
  ];
};
const table = [
  `wontun scale ${r.date} (${r.tools.wontun}), ${navigator.hardwareConcurrency} cores`,
  "",
  ...(r.versionStartupMs || r.upWg1 ? ["start-up, median (min–max)"] : []),
  ...(r.versionStartupMs ? [`  dist/wontun --version                  ${span(r.versionStartupMs)}`] : []),
  ...(r.upWg1
    ? [
        `  ip netns exec NS true (overhead below) ${span(r.netnsExecBaselineMs)}`,
        `  up -> "running", WireGuard, 1 peer     ${span(r.upWg1.startMs)}; RSS ${fmt(r.upWg1.rssMiB.median)} MiB; SIGTERM -> exit ${fmt(r.upWg1.stopMs.median)} ms`,
        `  up -> "running", plaintext, 1 peer     ${span(r.upPlain1.startMs)}; RSS ${fmt(r.upPlain1.rssMiB.median)} MiB; SIGTERM -> exit ${fmt(r.upPlain1.stopMs.median)} ms`,
        `  up -> "running", WireGuard, ${String(config.peers).padEnd(5)} peers ${span(r.upWgBig.startMs)}; RSS ${fmt(r.upWgBig.rssMiB.median)} MiB; SIGTERM -> exit ${fmt(r.upWgBig.stopMs.median)} ms`,
      ]
    : []),
  "",
  ...variantLines(),
  ...(r.bigConfig || wgc || wg
    ? [`${config.peers} peers on one responder, one client process over UDP from ${config.sources} source addresses: handshake + a ping through the tunnel each`]
    : []),
  ...(r.bigConfig ? [connectLine("wontun (dist/wontun up)", r.bigConfig) + `; ${fmt(r.bigConfig.rssRunningMiB)} MiB before any handshake`] : []),
  ...(wgc ? [connectLine(`${wgc.label} ${wgc.version}`, wgc) + `; ${fmt(wgc.rssConfiguredMiB)} MiB before any handshake`] : []),
  ...(wg ? [connectLine(`${wg.label} ${wg.version}`, wg) + `; ${fmt(wg.rssConfiguredMiB)} MiB before any handshake`] : []),
  "",
  ...(net || wgc || wg || inProcess ? ["handshakes per second (responder side: initiation in, response out), median (min–max)"] : []),
  ...(net ? [rateLine("wontun over UDP (dist/wontun up)", net)] : []),
  ...(wgc?.overNetwork ? [rateLine(`${wgc.label} over UDP`, wgc.overNetwork)] : []),
  ...(wg?.overNetwork ? [rateLine(`${wg.label} over UDP`, wg.overNetwork)] : []),
  ...(inProcess
    ? [
        `  ${"wontun in-process, sans-IO, one core".padEnd(39)}${span(inProcess.handshakesPerSecond, "/s")}, ${fmt(inProcess.microsecondsEach.median)} µs each; ` +
          `cookie replies under load ${fmt(inProcess.cookieRepliesPerSecond.median)}/s`,
        `  ${"(initiator side, in-process)".padEnd(39)}${fmt(inProcess.initiationsMadePerSecond.median)} initiations made/s`,
      ]
    : []),
  "",
  ...(refRun && r.bigConfig
    ? [
        `wontun ÷ ${refRun.label} ${refRun.version} (the reference${refRun === wg ? ": NO CURRENT BUILD FOUND, Debian's is used" : ""})`,
        ratioTo(`${config.peers} peers connected, time`, r.bigConfig.connect.elapsedSeconds, refRun.connect.elapsedSeconds, "lower"),
        ratioTo(`${config.peers} peers, RSS ${SETTLE_SECONDS} s after`, r.bigConfig.afterConnect.settledRssMiB, refRun.afterConnect.settledRssMiB, "lower"),
        ...(net && refRun.overNetwork ? [ratioTo("handshakes/s over UDP", net.handshakesPerSecond.median, refRun.overNetwork.handshakesPerSecond.median, "higher") +
          (net.limitedBy !== "responder" || refRun.overNetwork.limitedBy !== "responder" ? " [a responder kept up with the offered rate: not a ratio of limits]" : "")] : []),
        "",
      ]
    : []),
  ...(trie
    ? [
        `AllowedIPs trie, ${trie.prefixes} IPv4 prefixes (bench/trie.ts)`,
        `  inserts                                ${fmt(trie.insertsPerSecondMillions)} M/s`,
        `  lookups                                ${fmt(trie.lookupsPerSecondMillionsV4)} M/s IPv4 (${trie.lookupNsV4} ns), ${fmt(trie.lookupsPerSecondMillionsV6)} M/s IPv6`,
        `  memory                                 heap +${fmt(trie.heapMiB)} MiB = ${fmt(trie.bytesPerPrefix)} B/prefix (tables ${fmt(trie.tablesMiB)} MiB)`,
      ]
    : []),
].join("\n");
console.log(table);
r.table = table;

mkdirSync(config.out, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, "-");
const json = `${JSON.stringify(report, null, 2)}\n`;
const file = join(config.out, `scale-${config.variants.length ? "ab-" : ""}${stamp}.json`);
writeFileSync(file, json);
// Only a complete run (every part, no variants) is "the latest"; partial and A/B runs get their own file.
const complete = config.only.size === 5 && !config.variants.length;
if (complete) writeFileSync(join(config.out, "scale-latest.json"), json);
console.log(`\nwrote ${file}${complete ? `, ${join(config.out, "scale-latest.json")}` : ""}`);
