// The mesh mode on a real etcd (Debian's etcd-server) in namespaces: nodes claim addresses, see
// each other, ping over the mesh; a node joins (seen within 5 s), stops (SIGTERM revokes its
// lease: gone within 2 s), is SIGKILLed (gone after its TTL); bad records written with etcdctl
// are ignored; with etcd stopped the tunnels keep working. Every namespace and interface name
// starts with "h13". Hosts share one bridge (192.0.2.0/24) in a switch namespace.
import { describe, expect, test } from "bun:test";
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { canRunIntegration, Lab, waitFor, type Host, type SpawnedProcess } from "../helpers/netns.ts";
import { COMPILED, ConfigDir, ping, startWontun, wontunCommand } from "../helpers/wontun-node.ts";
import { newKeys, type WgKeys } from "../helpers/wireguard.ts";
import { meshScratchPerTest, meshSwitch, plugIn, showNode } from "../helpers/mesh-lab.ts";
import { etcdctl, hasEtcd, spawnEtcd, startEtcd } from "../helpers/etcd.ts";

const ETCD_IP = "192.0.2.100";
const PREFIX = "/wontun/h13test";
let lab: Lab | null = null;
let dir: ConfigDir | null = null;
let data: string | null = null;

const scratch = meshScratchPerTest("h13");

interface Node {
  name: string;
  host: Host;
  keys: WgKeys;
  proc: SpawnedProcess;
  address: string;
  config: string;
}


function meshConfig(keys: WgKeys, opts: { name: string; ip: string | null; cache: string; ttl: number }): string {
  return `[Interface]
PrivateKey = ${keys.privateKey}
ListenPort = 51820

[Mesh]
Store = http://${ETCD_IP}:2379
Network = 10.70.0.0/16
Prefix = ${PREFIX}
Name = ${opts.name}
${opts.ip ? `Endpoint = ${opts.ip}:51820\n` : ""}TTL = ${opts.ttl}
Cache = ${opts.cache}
`;
}

async function startNode(host: Host, name: string, ip: string | null, ttl = 30, binary?: string): Promise<Node> {
  const keys = newKeys();
  const config = dir!.write(`${name}.conf`, meshConfig(keys, { name, ip, cache: join(data!, `${name}.mesh.json`), ttl }));
  return await runNode(host, name, keys, config, binary);
}

async function runNode(host: Host, name: string, keys: WgKeys, config: string, binary?: string): Promise<Node> {
  const proc = await startWontun(host, config, { binary });
  const m = /mesh: (?:joined|published again) as \S+ with (\S+)|mesh: store unreachable/.exec(proc.output());
  let address = m?.[1] ?? "";
  if (!address) {
    const shown = await show(host, name);
    address = shown.mesh.address;
  }
  return { name, host, keys, proc, address, config };
}

const show = showNode;

async function peerKeys(node: Node): Promise<string[]> {
  return (await show(node.host, node.name)).peers.map((p: { publicKey: string }) => p.publicKey);
}

describe.skipIf(!canRunIntegration || !hasEtcd)("mesh on etcd", () => {
  test("three nodes mesh; join, leave, crash, bad records, etcd down", async () => {
    ({ lab, dir, data } = await scratch.open("mesh"));
    const sw = await meshSwitch(lab, "h13");
    const e = await lab.host("e");
    await plugIn(sw, e, "h13", 0, [ETCD_IP]);
    const hosts: Host[] = [];
    for (let i = 1; i <= 4; i++) {
      const h = await lab.host(`n${i}`);
      await plugIn(sw, h, "h13", i, [`192.0.2.${i}`]);
      hosts.push(h);
    }
    let etcd = await startEtcd(e, ETCD_IP, data);

    // Three nodes with endpoints; the third runs the compiled executable (etcd3's gRPC inside it).
    const binary = existsSync(COMPILED) ? COMPILED : undefined;
    const nodes = [
      await startNode(hosts[0], "h13m1", "192.0.2.1"),
      await startNode(hosts[1], "h13m2", "192.0.2.2"),
      await startNode(hosts[2], "h13m3", "192.0.2.3", 3, binary),
    ];
    const addresses = nodes.map((n) => n.address);
    expect(new Set(addresses).size).toBe(3);
    for (const a of addresses) expect(a).toMatch(/^10\.70\./);
    for (const from of nodes) {
      for (const to of nodes) {
        if (from !== to) await waitFor(() => ping(from.host, to.address), 8000, `${from.name} → ${to.name} (${to.address})`);
      }
    }
    // The cache is private.
    await waitFor(() => existsSync(join(data!, "h13m1.mesh.json")), 3000, "cache file");
    expect(statSync(join(data!, "h13m1.mesh.json")).mode & 0o777).toBe(0o600);

    // A node without an endpoint joins: every node has it within 5 s, and it reaches them.
    let t0 = Date.now();
    const late = await startNode(hosts[3], "h13m4", null);
    await waitFor(async () => (await Promise.all(nodes.map(peerKeys))).every((keys) => keys.includes(late.keys.publicKey)), 5000, "h13m4 seen by all");
    expect(Date.now() - t0).toBeLessThan(15_000);
    for (const to of nodes) await waitFor(() => ping(late.host, to.address), 5000, `h13m4 → ${to.name}`);
    // It dials out: keepalive 25 towards nodes with endpoints.
    const lateShow = await show(late.host, "h13m4");
    expect(lateShow.peers.every((p: { persistentKeepalive: number }) => p.persistentKeepalive === 25)).toBe(true);
    expect(lateShow.mesh.storeState).toBe("connected");

    // SIGTERM revokes its lease: gone from the others within 2 s.
    late.proc.kill("SIGTERM");
    t0 = Date.now();
    await waitFor(async () => (await Promise.all(nodes.map(peerKeys))).every((keys) => !keys.includes(late.keys.publicKey)), 2000, "h13m4 gone after SIGTERM (2 s)");
    expect(await late.proc.exited).toBe(0);

    // SIGKILL: gone after its lease (TTL 3 s).
    nodes[2].proc.kill("SIGKILL");
    await nodes[2].proc.exited;
    // A killed daemon cannot remove its control socket; the test must not leave it behind.
    rmSync("/var/run/wireguard/h13m3.sock", { force: true });
    await waitFor(async () => (await Promise.all(nodes.slice(0, 2).map(peerKeys))).every((keys) => !keys.includes(nodes[2].keys.publicKey)), 8000, "h13m3 gone after its TTL");

    // Bad records: malformed, huge, another node's address, our own key with another name.
    const n1Key = nodes[0].keys.publicKey.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const stranger = newKeys();
    const strangerSeg = stranger.publicKey.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const bad: [string, string][] = [
      [`${PREFIX}/nodes/garbage`, "{not json"],
      [`${PREFIX}/nodes/huge`, "x".repeat(100_000)],
      [`${PREFIX}/nodes/${strangerSeg}`, JSON.stringify({ publicKey: stranger.publicKey, name: "thief", address: nodes[1].address, endpoints: ["192.0.2.9:51820"], subnets: [], version: "x" })],
      [`${PREFIX}/nodes/${n1Key}`, JSON.stringify({ publicKey: nodes[0].keys.publicKey, name: "impostor", address: nodes[0].address, endpoints: ["192.0.2.9:51820"], subnets: [], version: "x" })],
    ];
    for (const [key, value] of bad) {
      const r = await etcdctl(e, ETCD_IP, ["put", key], value);
      expect(r.code).toBe(0);
    }
    await waitFor(() => nodes[1].proc.output().includes("belongs to another node"), 3000, "warning about the stolen address");
    await waitFor(() => nodes[0].proc.output().includes("record under our own key was replaced"), 3000, "warning about our own key");
    expect(nodes[1].proc.output()).toContain("record is not JSON");
    expect(nodes[1].proc.output()).toContain("bytes (at most 4096)");
    expect((await peerKeys(nodes[1])).sort()).toEqual([nodes[0].keys.publicKey]);
    // n1's own record is back to its name.
    await waitFor(async () => (await etcdctl(e, ETCD_IP, ["get", `${PREFIX}/nodes/${n1Key}`, "--print-value-only"])).stdout.includes('"name":"h13m1"'), 3000, "n1's record restored");
    expect(await ping(nodes[0].host, nodes[1].address)).toBe(true);
    // n1's record deleted by hand: n1 puts it back.
    expect((await etcdctl(e, ETCD_IP, ["del", `${PREFIX}/nodes/${n1Key}`])).code).toBe(0);
    await waitFor(async () => (await etcdctl(e, ETCD_IP, ["get", `${PREFIX}/nodes/${n1Key}`, "--print-value-only"])).stdout.includes('"name":"h13m1"'), 5000, "n1's deleted record restored");
    await waitFor(async () => (await peerKeys(nodes[1])).includes(nodes[0].keys.publicKey), 5000, "n2 has n1 again");

    // n2 cut off from the store while the store changes, is compacted and restarts: when it is back its
    // watch cannot resume from its revision, so it reads everything again and logs what changed.
    await hosts[1].ip("link set h13v2a down");
    // A restart of etcd ends n2's connection (it learns so when its link is back), so it misses what follows.
    etcd.kill("SIGTERM");
    await etcd.exited;
    etcd = await startEtcd(e, ETCD_IP, data);
    await etcdctl(e, ETCD_IP, ["del", `${PREFIX}/nodes/garbage`]);
    await etcdctl(e, ETCD_IP, ["del", `${PREFIX}/nodes/huge`]);
    const status = JSON.parse((await etcdctl(e, ETCD_IP, ["endpoint", "status", "-w", "json"])).stdout)[0].Status;
    expect((await etcdctl(e, ETCD_IP, ["compact", String(status.header.revision)])).code).toBe(0);
    await hosts[1].ip("link set h13v2a up");
    await waitFor(() => /watch ended .*reading the store again/.test(nodes[1].proc.output()), 20_000, `n2 re-reads after compaction:\n${nodes[1].proc.output().slice(-1500)}`);
    await waitFor(async () => (await show(nodes[1].host, "h13m2")).mesh.members.every((m: { key: string }) => !m.key.endsWith("/garbage")), 5000, "n2 dropped the deleted bad record");
    expect(await ping(nodes[1].host, nodes[0].address)).toBe(true);

    // etcd stopped: the tunnels keep their peers and traffic flows; show says unreachable.
    etcd.kill("SIGKILL");
    await etcd.exited;
    for (let i = 0; i < 3; i++) {
      expect(await ping(nodes[0].host, nodes[1].address)).toBe(true);
      expect(await ping(nodes[1].host, nodes[0].address)).toBe(true);
      await Bun.sleep(500);
    }
    await waitFor(async () => (await show(nodes[0].host, "h13m1")).mesh.storeState === "unreachable", 10_000, "store unreachable in show");
    expect((await peerKeys(nodes[0])).sort()).toEqual([nodes[1].keys.publicKey]);
    const text = await nodes[0].host.run([...wontunCommand(), "show", "h13m1"]);
    expect(text.stdout).toContain("mesh store");
  }, 120_000);

  test("TLS: the right CA connects, a wrong CA is refused with a clear error", async () => {
    ({ lab, dir, data } = await scratch.open("mesh-tls"));
    const sw = await meshSwitch(lab, "h13");
    const e = await lab.host("e");
    await plugIn(sw, e, "h13", 0, [ETCD_IP]);
    const n1 = await lab.host("n1");
    await plugIn(sw, n1, "h13", 1, ["192.0.2.1"]);
    const ssl = (...args: string[]) => {
      const r = Bun.spawnSync(["openssl", ...args], { cwd: data!, stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    for (const ca of ["ca", "other"]) {
      ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${ca}.key`, "-out", `${ca}.pem`, "-days", "1", "-subj", `/CN=h13-${ca}`);
    }
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=etcd");
    Bun.write(join(data, "san.ext"), `subjectAltName=DNS:etcd.h13.test,IP:${ETCD_IP}\n`);
    await Bun.sleep(10);
    ssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "1", "-extfile", "san.ext");
    const etcd = spawnEtcd({ host: e, ip: ETCD_IP, name: "e1" }, [{ host: e, ip: ETCD_IP, name: "e1" }], data, { certFile: join(data, "srv.pem"), keyFile: join(data, "srv.key") });
    await waitFor(async () => (await e.run(["env", "ETCDCTL_API=3", "etcdctl", "--endpoints", `https://${ETCD_IP}:2379`, "--cacert", join(data!, "ca.pem"), "endpoint", "health"])).code === 0, 15_000, `etcd with TLS:\n${etcd.output()}`);
    const tlsConfig = (keys: WgKeys, ca: string) => `[Interface]
PrivateKey = ${keys.privateKey}
ListenPort = 51820

[Mesh]
Store = https://${ETCD_IP}:2379
CAFile = ${join(data!, ca)}
ServerName = etcd.h13.test
Network = 10.70.0.0/16
Endpoint = 192.0.2.1:51820
Cache = ${join(data!, "h13t1.mesh.json")}
`;
    // A wrong CA: refused at start, exit 1, a message that says why.
    const wrong = dir.write("h13t1.conf", tlsConfig(newKeys(), "other.pem"));
    const bad = await n1.run([...wontunCommand(), "up", wrong], { timeoutMs: 20_000 });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/TLS failed, the server's certificate is not trusted by CAFile .*other\.pem/);
    // The right CA: joins.
    const keys = newKeys();
    const good = dir.write("h13t1.conf", tlsConfig(keys, "ca.pem"));
    const proc = await startWontun(n1, good);
    expect(proc.output()).toMatch(/mesh: joined as \S+ with 10\.70\./);
  }, 60_000);
});
