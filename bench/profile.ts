// Where a single TCP flow's (or a 64-byte UDP flood's) CPU time goes, per end, in WireGuard mode:
// `perf record` over the whole machine (software clock, call graphs) while iperf3 runs a -> b through two wontun hosts, with
// Bun's JIT code named through JSC's JITDump (BUN_JSC_useJITDump), read here (perf inject --jit
// rejects the names Bun gives its dump files, and JSC reuses code addresses, so a static perf map
// would name the wrong functions). Each sample of
// a wontun process is put in one bucket: AEAD (libgcrypt/libcrypto/libsodium), checksums / segmentation (JS
// functions whose names say so, anywhere on the stack), a syscall (kernel time under that syscall,
// including the softirq work the kernel does inline in it), other kernel time (interrupts,
// softirqs, page faults), GC/runtime threads, and the rest of the JS thread ("JS + runtime").
//
//   bun bench/profile.ts [--seconds 10] [--offload all] [--mtu N] [--udp] [--freq 1999] [--compiled] [--keep DIR]
//   bun bench/profile.ts --analyse DIR     (the samples of an earlier --keep DIR run, again)
//
// --udp profiles a flood of 64-byte UDP datagrams (iperf3 -u -l 64 -b 0) instead of a TCP flow:
// the small-packet path. With WONTUN_THREADS=N the data-path threads (Workers) count as the main
// thread does; other threads of the process are the GC and runtime.
//
// Root, iperf3 and perf (Debian: linux-perf) needed. Namespaces and interfaces start with "h15"
// (BENCH_LAB_PREFIX overrides); nothing outside them is touched. By default the daemons run from
// source (`bun src/cli/main.ts up`), so JS function names are not minified; --compiled runs
// dist/wontun instead.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandLine, numberOption } from "./lib/args.ts";

process.env.BENCH_LAB_PREFIX ??= "h15";
const { withLab, waitFor, waitForFast, REPO, BINARY, machineInfo, loadAverage } = await import("./lib/lab.ts");
const { newKeys, wgQuickConfig } = await import("../test/helpers/wireguard.ts");
const { cpuSeconds } = await import("./lib/proc.ts");
const { iperfTcp, iperfUdp } = await import("./lib/measure.ts");

const HELP = `bun bench/profile.ts [--seconds 10] [--offload all] [--mtu N] [--udp] [--freq 1999] [--compiled] [--keep DIR] [--analyse DIR]`;
const opts = commandLine(HELP, ["compiled", "udp"]);
const udp = opts.has("udp");
const seconds = numberOption(opts, "seconds", 10, 2);
const freq = numberOption(opts, "freq", 1999, 10);
const offload = opts.get("offload") ?? "all";
/** The tunnel's MTU (both ends); unset, wontun's default (1408 in WireGuard mode). */
const mtu = opts.has("mtu") ? numberOption(opts, "mtu", 1420, 576) : null;
const compiled = opts.has("compiled");
const keep = opts.get("keep");
const analyseOnly = opts.get("analyse");

if (!Bun.which("perf")) throw new Error("perf not found (Debian: apt-get install linux-perf)");
const work = keep ?? join("/tmp", `h15-profile-${process.pid}`);
if (!analyseOnly) mkdirSync(work, { recursive: true });

// ---- JITDump -> perf map ---------------------------------------------------------------------

interface JitCode { t: bigint; start: bigint; end: bigint; name: string }

/**
 * Reads every JITDump file in `dir` (JIT_CODE_LOAD and JIT_CODE_MOVE records). JSC frees and reuses
 * code memory without telling JITDump, so an address is resolved to the latest code loaded there
 * before the sample was taken (timestamps are CLOCK_MONOTONIC, as perf's with -k mono).
 */
function readJitdumps(dir: string): JitCode[] {
  const out: JitCode[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.startsWith("jit-") || !f.endsWith(".dump")) continue;
    const buf = readFileSync(join(dir, f));
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (dv.getUint32(0, true) !== 0x4a695444) continue; // "JiTD", little-endian
    const names = new Map<bigint, string>(); // code_index -> name, for moves
    let off = dv.getUint32(8, true);
    while (off + 16 <= buf.length) {
      const id = dv.getUint32(off, true);
      const size = dv.getUint32(off + 4, true);
      if (size < 16 || off + size > buf.length) break;
      const t = dv.getBigUint64(off + 8, true);
      const body = off + 16;
      if (id === 0) {
        const codeAddr = dv.getBigUint64(body + 16, true);
        const codeSize = dv.getBigUint64(body + 24, true);
        const index = dv.getBigUint64(body + 32, true);
        let end = body + 40;
        while (end < off + size && buf[end] !== 0) end++;
        const name = buf.subarray(body + 40, end).toString("utf8").replace(/\s+/g, "_");
        names.set(index, name);
        if (codeSize > 0n) out.push({ t, start: codeAddr, end: codeAddr + codeSize, name });
      } else if (id === 1) {
        const newAddr = dv.getBigUint64(body + 24, true);
        const codeSize = dv.getBigUint64(body + 32, true);
        const index = dv.getBigUint64(body + 40, true);
        out.push({ t, start: newAddr, end: newAddr + codeSize, name: names.get(index) ?? "jit-moved" });
      }
      off += size;
    }
  }
  return out.sort((x, y) => (x.t < y.t ? -1 : x.t > y.t ? 1 : 0));
}

/** Address -> the name of the JIT code there at time t (ns), through a 4 KiB-page index. */
function jitResolver(codes: JitCode[]): (addr: bigint, t: bigint) => string | null {
  const pages = new Map<bigint, JitCode[]>();
  for (const c of codes) {
    for (let p = c.start >> 12n; p <= (c.end - 1n) >> 12n; p++) {
      let list = pages.get(p);
      if (!list) pages.set(p, (list = []));
      list.push(c);
    }
  }
  return (addr, t) => {
    const list = pages.get(addr >> 12n);
    if (!list) return null;
    let best: JitCode | null = null;
    for (const c of list) {
      if (c.t > t) break;
      if (addr >= c.start && addr < c.end) best = c;
    }
    return best?.name ?? null;
  };
}

// ---- classification ------------------------------------------------------------------------

type Frame = { sym: string; dso: string };
const BUCKETS = [
  "AEAD (libgcrypt/libcrypto/libsodium)",
  "checksums (JS)",
  "segmentation / coalescing (JS)",
  "sendmmsg/sendmsg (UDP out)",
  "recvmmsg/recvmsg (UDP in)",
  "read (TUN in)",
  "write (TUN out)",
  "epoll_wait",
  "other syscalls",
  "kernel: irq/softirq/faults",
  "GC / runtime threads",
  "JS + runtime (data-path threads)",
] as const;
type Bucket = (typeof BUCKETS)[number];

/** "JSC-FTL:_sumBytes#Di2LSl" -> "sumBytes". */
const jsName = (sym: string) => /^JSC-[^:]*:_?([A-Za-z0-9_$]+)#/.exec(sym)?.[1] ?? null;

/** Function and method names declared in src/net/offload/ (checksum.ts's are the checksum bucket). */
function offloadNames(): { checksum: Set<string>; other: Set<string> } {
  const checksum = new Set<string>();
  const other = new Set<string>();
  const dir = join(REPO, "src/net/offload");
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".ts")) continue;
    const text = readFileSync(join(dir, f), "utf8");
    const re = /^\s*(?:export\s+)?(?:function\s+([A-Za-z0-9_$]+)|(?:private\s+|static\s+|public\s+)*([A-Za-z0-9_$]+)\s*\([^)]*\)?[^;=]*\{\s*$)/gm;
    for (const m of text.matchAll(re)) {
      const name = m[1] ?? m[2];
      if (!name || /^(if|for|while|switch|catch|constructor|return)$/.test(name)) continue;
      (f === "checksum.ts" ? checksum : other).add(name);
    }
  }
  return { checksum, other };
}
const { checksum: CHECKSUM_FNS, other: OFFLOAD_FNS } = offloadNames();

const isKernel = (f: Frame) => f.dso.includes("kernel.kallsyms") || f.dso.startsWith("[kernel");

function syscallBucket(name: string): Bucket {
  if (/^(sendmmsg|sendmsg|sendto)$/.test(name)) return "sendmmsg/sendmsg (UDP out)";
  if (/^(recvmmsg|recvmsg|recvfrom)$/.test(name)) return "recvmmsg/recvmsg (UDP in)";
  if (/^(read|readv|pread64)$/.test(name)) return "read (TUN in)";
  if (/^(write|writev|pwrite64)$/.test(name)) return "write (TUN out)";
  if (/^epoll_(p?wait2?)$/.test(name) || name === "epoll_wait") return "epoll_wait";
  return "other syscalls";
}

function classify(stack: Frame[], dataPath: boolean): Bucket {
  if (!dataPath) return "GC / runtime threads";
  const leaf = stack[0];
  if (!leaf) return "JS + runtime (data-path threads)";
  if (isKernel(leaf)) {
    // The syscall is the frame just under do_syscall_64 (its wrappers are often inlined, so it may
    // be ksys_write, __sys_sendmmsg, __x64_sys_epoll_wait...). No do_syscall_64: an interrupt,
    // softirq or page fault taken in user mode.
    const i = stack.findIndex((f) => f.sym === "do_syscall_64");
    if (i > 0) return syscallBucket(stack[i - 1].sym.replace(/^(__x64_sys_|__se_sys_|__do_sys_|ksys_|__sys_|do_)/, ""));
    return "kernel: irq/softirq/faults";
  }
  // Native frames up to the first JS/Bun frame: libcrypto's own strcmp/memcpy calls count as AEAD.
  for (const f of stack) {
    if (/libgcrypt|libcrypto|libsodium/.test(f.dso)) return "AEAD (libgcrypt/libcrypto/libsodium)";
    if (f.dso === "JIT" || /bun|wontun/.test(f.dso)) break;
  }
  for (const f of stack) {
    const fn = jsName(f.sym);
    if (fn && (CHECKSUM_FNS.has(fn) || /checksum/i.test(fn))) return "checksums (JS)";
  }
  for (const f of stack) {
    const fn = jsName(f.sym);
    if (fn && OFFLOAD_FNS.has(fn)) return "segmentation / coalescing (JS)";
  }
  return "JS + runtime (data-path threads)";
}

/** What iperf3 carried: one TCP flow's goodput, or the 64-byte datagrams received. */
function describeLoad(m: { gbps: number; kpps?: number; lossPercent?: number }): string {
  if (m.kpps === undefined) return `iperf3 1 flow a -> b: ${m.gbps.toFixed(2)} Gbit/s`;
  return `iperf3 64-byte UDP flood a -> b: ${m.kpps.toFixed(1)} kpps received (${(m.lossPercent ?? 0).toFixed(1)} % lost)`;
}

// ---- the run -------------------------------------------------------------------------------

interface SideResult {
  pid: number;
  samples: number;
  cpuPercent: number;
  buckets: Record<string, number>;
  topSymbols: Array<{ sym: string; dso: string; samples: number }>;
}

interface Meta {
  gbps: number;
  /** --udp: datagrams received per second (thousands), and the share lost. */
  kpps?: number;
  lossPercent?: number;
  wall: number;
  pids: { a: number; b: number };
  cpuPercent: { a: number; b: number };
  jd: { a: string; b: string };
  perfData: string;
}

const meta: Meta = analyseOnly ? JSON.parse(readFileSync(join(analyseOnly, "meta.json"), "utf8")) : await withLab("profile", async (env) => {
  const a = await env.lab.host("a");
  const b = await env.lab.host("b");
  const vA = `${env.lab.id}va`;
  const vB = `${env.lab.id}vb`;
  await a.ip(`link add ${vA} type veth peer name ${vB} netns ${b.name}`);
  await a.ip(`addr add 192.0.2.2/24 dev ${vA}`);
  await b.ip(`addr add 192.0.2.1/24 dev ${vB}`);
  await a.ip(`link set ${vA} up`);
  await b.ip(`link set ${vB} up`);

  const ka = newKeys();
  const kb = newKeys();
  const port = 51815;
  const confB = env.dir.write(`${env.lab.id}tb.conf`, wgQuickConfig({
    keys: kb, addresses: ["10.15.0.1/24"], listenPort: port, mtu: mtu ?? undefined,
    peers: [{ publicKey: ka.publicKey, allowedIps: ["10.15.0.2/32"], endpoint: `192.0.2.2:${port}` }],
  }));
  const confA = env.dir.write(`${env.lab.id}ta.conf`, wgQuickConfig({
    keys: ka, addresses: ["10.15.0.2/24"], listenPort: port, mtu: mtu ?? undefined,
    peers: [{ publicKey: kb.publicKey, allowedIps: ["10.15.0.1/32"], endpoint: `192.0.2.1:${port}` }],
  }));

  const start = async (host: typeof a, conf: string, side: string) => {
    const jd = join(work, `jitdump-${side}`);
    rmSync(jd, { recursive: true, force: true });
    mkdirSync(jd, { recursive: true });
    const cmd = compiled ? [BINARY] : [process.execPath, join(REPO, "src/cli/main.ts")];
    const proc = host.spawn([...cmd, "up", conf, "--log-level", "info", "--offload", offload], {
      env: { BUN_JSC_useJITDump: "1", BUN_JSC_jitDumpDirectory: jd },
    });
    await waitForFast(() => {
      if (proc.proc.exitCode !== null) throw new Error(`wontun on ${side} exited:\n${proc.output()}`);
      return proc.output().includes("running");
    }, 30_000, `wontun on ${side}`);
    return { proc, jd };
  };
  const wb = await start(b, confB, "b");
  const wa = await start(a, confA, "a");
  await waitFor(async () => (await a.run(["ping", "-n", "-c", "1", "-W", "1", "10.15.0.1"])).code === 0, 20_000, "ping through the tunnel");
  const server = b.spawn(["iperf3", "-s", "-1"]);
  await Bun.sleep(300);
  console.error(`[profile] lab ${env.lab.id}: warm-up 3 s, then perf over ${seconds} s of iperf3 a -> b`);
  // One TCP flow, or a 64-byte UDP flood as fast as iperf3 sends (bench/lib/measure.ts); throws if iperf3 fails.
  const load = (secs: number) => (udp ? iperfUdp(a, "10.15.0.1", { seconds: secs }) : iperfTcp(a, "10.15.0.1", { seconds: secs }));
  await load(3);
  await server.exited.catch(() => {});
  const server2 = b.spawn(["iperf3", "-s", "-1"]);
  await Bun.sleep(300);

  const perfData = join(work, "perf.data");
  const iperfP = load(seconds + 2);
  await Bun.sleep(1000);
  const cpu0 = [cpuSeconds(wa.proc.proc.pid), cpuSeconds(wb.proc.proc.pid)];
  const t0 = performance.now();
  const perf = Bun.spawn(["perf", "record", "-a", "-g", "-k", "mono", "-e", "cpu-clock", "-F", String(freq), "-o", perfData, "--", "sleep", String(seconds)], { stdout: "ignore", stderr: "pipe" });
  await perf.exited;
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = [cpuSeconds(wa.proc.proc.pid), cpuSeconds(wb.proc.proc.pid)];
  const ip = await iperfP;
  await server2.exited.catch(() => {});
  const gbps = "gbps" in ip ? ip.gbps : (ip.receivedPps * 64 * 8) / 1e9;
  const kpps = "receivedPps" in ip ? ip.receivedPps / 1000 : undefined;
  const lossPercent = "lossPercent" in ip ? ip.lossPercent : undefined;

  const pids = { a: wa.proc.proc.pid, b: wb.proc.proc.pid };
  const cpuPercent = { a: ((cpu1[0] - cpu0[0]) / wall) * 100, b: ((cpu1[1] - cpu0[1]) / wall) * 100 };
  const meta: Meta = { gbps, kpps, lossPercent, wall, pids, cpuPercent, jd: { a: wa.jd, b: wb.jd }, perfData };
  writeFileSync(join(work, "meta.json"), JSON.stringify(meta));
  console.error(`[profile] ${describeLoad(meta)}; reading samples...`);
  return meta;
});
const result = analyse(meta);

function analyse(meta: Meta) {
  const { pids, perfData } = meta;
  const resolve = { a: jitResolver(readJitdumps(meta.jd.a)), b: jitResolver(readJitdumps(meta.jd.b)) };
  const script = Bun.spawnSync(["perf", "script", "-i", perfData, "--ns", "-F", "comm,pid,tid,time,ip,sym,dso"], { stdout: "pipe", stderr: "ignore", maxBuffer: 2 ** 31 });
  const text = script.stdout.toString();
  const perSide: Record<"a" | "b", { buckets: Map<Bucket, number>; syms: Map<string, number>; n: number }> = {
    a: { buckets: new Map(), syms: new Map(), n: 0 },
    b: { buckets: new Map(), syms: new Map(), n: 0 },
  };
  const byComm = new Map<string, number>();
  const otherComms = new Map<string, number>();
  let total = 0;
  for (const block of text.split("\n\n")) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    if (!lines.length) continue;
    const head = /^\s*(.+?)\s+(\d+)\/(\d+)\s+(\d+)\.(\d+):?\s*$/.exec(lines[0]);
    if (!head) continue;
    const [, comm, pidS, tidS, sec, frac] = head;
    const pid = Number(pidS);
    const tid = Number(tidS);
    const t = BigInt(sec) * 1_000_000_000n + BigInt(frac.padEnd(9, "0").slice(0, 9));
    total++;
    const side = pid === pids.a ? "a" : pid === pids.b ? "b" : null;
    const who = side ? `wontun ${side}` : pid === 0 ? "idle" : comm.startsWith("iperf3") ? "iperf3" : /^(ksoftirqd|kworker)/.test(comm) ? "kernel threads" : "other";
    byComm.set(who, (byComm.get(who) ?? 0) + 1);
    if (who === "other") otherComms.set(comm, (otherComms.get(comm) ?? 0) + 1);
    if (!side) continue;
    const stack: Frame[] = [];
    for (const l of lines.slice(1)) {
      const m = /^\s*([0-9a-f]+)\s+(.*?)\s+\(([^)]*)\)\s*$/.exec(l);
      if (!m) continue;
      let sym = m[2].replace(/\+0x[0-9a-f]+$/, "");
      let dso = m[3];
      if (dso.startsWith("[JIT]") || dso.includes("/tmp/perf-")) {
        sym = resolve[side](BigInt(`0x${m[1]}`), t) ?? "[JIT unknown]";
        dso = "JIT";
      }
      stack.push({ sym, dso });
    }
    const s = perSide[side];
    s.n++;
    // The main thread, and with WONTUN_THREADS the data-path Workers (Bun names them "Worker").
    const bucket = classify(stack, tid === pid || comm === "Worker");
    s.buckets.set(bucket, (s.buckets.get(bucket) ?? 0) + 1);
    const leaf = stack[0] ? `${stack[0].sym}\t${stack[0].dso.split("/").pop()}` : "?";
    s.syms.set(leaf, (s.syms.get(leaf) ?? 0) + 1);
  }
  const sides = {} as Record<"a" | "b", SideResult>;
  for (const side of ["a", "b"] as const) {
    const s = perSide[side];
    sides[side] = {
      pid: pids[side],
      samples: s.n,
      cpuPercent: meta.cpuPercent[side],
      buckets: Object.fromEntries(BUCKETS.map((k) => [k, s.buckets.get(k) ?? 0])),
      topSymbols: [...s.syms.entries()].sort((x, y) => y[1] - x[1]).slice(0, 25).map(([k, n]) => {
        const [sym, dso] = k.split("\t");
        return { sym, dso, samples: n };
      }),
    };
  }
  const others = [...otherComms.entries()].sort((x, y) => y[1] - x[1]).slice(0, 6).map(([c, n]) => `${c} ${n}`).join(", ");
  return { gbps: meta.gbps, kpps: meta.kpps, lossPercent: meta.lossPercent, wall: meta.wall, total, byComm: Object.fromEntries(byComm), others, sides };
}

// ---- report --------------------------------------------------------------------------------

const pct = (n: number, d: number) => (d ? ((100 * n) / d).toFixed(1) : "0.0").padStart(5);
console.log(`# profile ${new Date().toISOString()}  ${machineInfo().cpu}, ${machineInfo().cores} cores, load ${loadAverage()}`);
console.log(`WireGuard mode, offload ${offload}${mtu === null ? "" : `, MTU ${mtu}`}, ${compiled ? "dist/wontun" : "bun src/cli/main.ts"}; ${describeLoad(result)}`);
console.log(`perf cpu-clock ${freq} Hz, all CPUs, ${result.wall.toFixed(1)} s: ${result.total} samples`);
console.log(`machine: ${Object.entries(result.byComm).sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${pct(n, result.total).trim()} %`).join(", ")}`);
if (result.others) console.log(`other (not this run's processes): ${result.others} samples`);
console.log("");
console.log(`| bucket | a (sender, seals) % busy | b (receiver, opens) % busy |`);
console.log(`|---|---:|---:|`);
const busy = (side: "a" | "b") => result.sides[side].samples - (result.sides[side].buckets["epoll_wait"] ?? 0);
for (const k of BUCKETS) {
  if (k === "epoll_wait") continue;
  console.log(`| ${k} | ${pct(result.sides.a.buckets[k], busy("a"))} | ${pct(result.sides.b.buckets[k], busy("b"))} |`);
}
console.log(`| (epoll_wait, % of all samples) | ${pct(result.sides.a.buckets["epoll_wait"], result.sides.a.samples)} | ${pct(result.sides.b.buckets["epoll_wait"], result.sides.b.samples)} |`);
console.log(`| CPU of the process (% of one core, /proc) | ${result.sides.a.cpuPercent.toFixed(0)} | ${result.sides.b.cpuPercent.toFixed(0)} |`);
for (const side of ["a", "b"] as const) {
  console.log(`\ntop leaf symbols, ${side}:`);
  for (const t of result.sides[side].topSymbols.slice(0, 18)) console.log(`  ${pct(t.samples, result.sides[side].samples)} %  ${t.sym}  (${t.dso})`);
}
if (keep || analyseOnly) writeFileSync(join(analyseOnly ?? work, "profile.json"), JSON.stringify({ date: new Date().toISOString(), offload, compiled, seconds, freq, ...result }, null, 2));

if (!keep && !analyseOnly) rmSync(work, { recursive: true, force: true });
