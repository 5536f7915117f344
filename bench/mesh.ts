// The mesh mode's costs (issue 13's benchmark; not a timed test). Needs root and etcd-server.
//   sudo bun bench/mesh.ts [--members 1000,5000] [--nodes 6]   (MESH_BENCH_DEBUG=1 prints apply batches)
// 1. Join latency: 6 real nodes on one etcd; a 7th joins; from its record being written (its
//    "mesh: joined" log line) to each node's "joined" line for it (log timestamps, one clock).
// 2. One node applying a store of N simulated members (records written by bench/mesh-writer.ts in
//    transactions of 32): while it runs (watch) and at start (full read). Time, RSS, and that no
//    handshake happens (the simulated endpoints never answer and no traffic is sent).
// 3. Watch traffic: bytes the node's link received per membership change while the members were
//    written (etcd's watch events over gRPC, with TCP/IP overhead).
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { newKeys } from "../test/helpers/wireguard.ts";
import { startEtcd } from "../test/helpers/etcd.ts";
import { withLab, startWontunBench, waitForFast, type Host, type SpawnedProcess } from "./lib/lab.ts";
import { statusMiB } from "./lib/proc.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const MEMBER_COUNTS = opt("members", "1000,5000").split(",").map(Number);
const NODES = Number(opt("nodes", "6"));
const ETCD_IP = "192.0.2.100";
const STORE = `http://${ETCD_IP}:2379`;

function stamp(line: string): number {
  return Date.parse(line.slice(0, 24));
}

function linesMatching(proc: SpawnedProcess, re: RegExp): string[] {
  return proc.output().split("\n").filter((l) => re.test(l));
}

async function rxBytes(host: Host, ifname: string): Promise<number> {
  const r = await host.run(["cat", "/proc/net/dev"]);
  const line = r.stdout.split("\n").find((l) => l.trim().startsWith(`${ifname}:`));
  return line ? Number(line.split(":")[1].trim().split(/\s+/)[0]) : 0;
}

await withLab("mesh-bench", async ({ lab, dir }) => {
  const data = mkdtempSync(join(tmpdir(), "h13-bench-"));
  try {
    const sw = await lab.host("sw");
    await sw.ip("link add br0 type bridge");
    await sw.ip("link set br0 up");
    const attach = async (host: Host, i: number, ip: string) => {
      await host.ip(`link add v${i}a type veth peer name v${i}b netns ${sw.name}`);
      await host.ip(`addr add ${ip}/24 dev v${i}a`);
      await host.ip(`link set v${i}a up`);
      await sw.ip(`link set v${i}b master br0`);
      await sw.ip(`link set v${i}b up`);
    };
    const e = await lab.host("e");
    await attach(e, 0, ETCD_IP);
    await startEtcd(e, ETCD_IP, data);
    const config = (name: string, ip: string, prefix: string) => `[Interface]
PrivateKey = ${newKeys().privateKey}
ListenPort = 51820
[Mesh]
Store = ${STORE}
Network = 10.70.0.0/16
Prefix = ${prefix}
Name = ${name}
Endpoint = ${ip}:51820
Cache = ${join(data, `${name}.mesh.json`)}
`;
    const ifn = (i: number) => `${lab.id}m${i}`;

    // 1. Join latency.
    const nodes: SpawnedProcess[] = [];
    const hosts: Host[] = [];
    for (let i = 1; i <= NODES + 1; i++) {
      const h = await lab.host(`n${i}`);
      await attach(h, i, `192.0.2.${i}`);
      hosts.push(h);
    }
    for (let i = 1; i <= NODES; i++) {
      nodes.push((await startWontunBench(hosts[i - 1], dir.write(`${ifn(i)}.conf`, config(`node${i}`, `192.0.2.${i}`, "/bench/join")))).proc);
    }
    const joins: number[] = [];
    for (let round = 0; round < 5; round++) {
      const name = `late${round}`;
      // Idle nodes: the device loop then waits up to 1 s between turns of Bun's event loop.
      await Bun.sleep(2500);
      const { proc } = await startWontunBench(hosts[NODES], dir.write(`${ifn(NODES + 1)}.conf`, config(name, `192.0.2.${NODES + 1}`, "/bench/join")));
      const written = stamp(linesMatching(proc, /mesh: joined as/)[0]);
      await waitForFast(() => nodes.every((n) => linesMatching(n, new RegExp(`mesh: ${name} .* joined`)).length > 0), 10_000, `${name} seen by all`);
      const seen = Math.max(...nodes.map((n) => stamp(linesMatching(n, new RegExp(`mesh: ${name} .* joined`))[0])));
      joins.push(seen - written);
      proc.kill("SIGTERM");
      await proc.exited;
      await waitForFast(() => nodes.every((n) => linesMatching(n, new RegExp(`mesh: ${name} .* left`)).length > 0), 10_000, `${name} gone`);
    }
    for (const n of nodes) n.kill("SIGTERM");
    await Promise.all(nodes.map((n) => n.exited));
    joins.sort((a, b) => a - b);
    console.log(`join latency (record written -> all ${NODES} idle nodes applied it), 5 joins: median ${joins[2]} ms, max ${joins[4]} ms`);

    // 2 and 3. One node, N simulated members.
    for (const n of MEMBER_COUNTS) {
      const prefix = `/bench/scale${n}`;
      const host = hosts[0];
      const { proc } = await startWontunBench(host, dir.write(`${ifn(1)}.conf`, config("subject", "192.0.2.1", prefix)));
      const pid = proc.proc.pid;
      const rssBefore = statusMiB(pid, "VmRSS");
      const rx0 = await rxBytes(host, "v1a");
      const w = await e.run([process.execPath, join(import.meta.dir, "mesh-writer.ts"), STORE, prefix, String(n)], { timeoutMs: 300_000 });
      if (w.code !== 0) throw new Error(`writer: ${w.stderr}`);
      const { startMs, endMs } = JSON.parse(w.stdout.trim().split("\n").pop()!);
      await waitForFast(() => linesMatching(proc, /mesh: sim\d+ .* joined/).length >= n, 120_000, `${n} members applied`);
      const lastApplied = Math.max(...linesMatching(proc, /mesh: sim\d+ .* joined/).map(stamp));
      if (process.env.MESH_BENCH_DEBUG) {
        const stamps = linesMatching(proc, /mesh: sim\d+ .* joined/).map(stamp);
        const batches = [...new Set(stamps)].map((t) => `${t - endMs}:${stamps.filter((x) => x === t).length}`);
        console.error(`batches (ms after last write: members): ${batches.join(" ")}`);
      }
      const rx1 = await rxBytes(host, "v1a");
      const rssWatch = statusMiB(pid, "VmRSS");
      const handshakes = linesMatching(proc, /handshake complete/).length;
      proc.kill("SIGTERM");
      await proc.exited;
      console.log(`${n} members written in ${endMs - startMs} ms; applied by the watching node ${lastApplied - endMs} ms after the last write; ` +
        `RSS ${rssBefore.toFixed(1)} -> ${rssWatch.toFixed(1)} MiB; ${handshakes} handshakes; watch traffic ${((rx1 - rx0) / n).toFixed(0)} bytes per member`);
      // At start: the store already holds them (full read, one change).
      const t0 = Date.now();
      const again = await startWontunBench(host, dir.write(`${ifn(1)}.conf`, config("subject2", "192.0.2.1", prefix)));
      await waitForFast(() => linesMatching(again.proc, /mesh: sim\d+ .* joined/).length >= n, 120_000, `${n} members at start`);
      const applied = Math.max(...linesMatching(again.proc, /mesh: sim\d+ .* joined/).map(stamp));
      const rssStart = statusMiB(again.proc.proc.pid, "VmRSS");
      again.proc.kill("SIGTERM");
      await again.proc.exited;
      console.log(`${n} members at start: applied ${applied - t0} ms after the process started (start-up included); RSS ${rssStart.toFixed(1)} MiB`);
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
