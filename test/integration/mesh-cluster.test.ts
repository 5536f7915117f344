// The mesh on a 3-member etcd cluster with 6 nodes started at once (two without endpoints, which
// reach each other through a relay): no address collides and every node pings every other. A node
// moves its endpoint (SIGHUP): the others follow with no new handshake with anyone else. The etcd
// leader is killed, then every member is stopped for 20 s: pings never stop, a node restarted
// meanwhile comes back from its cache, and a node that joined meanwhile is seen by all when etcd
// returns. Every namespace and interface name starts with "h13".
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { canRunIntegration, Lab, waitFor, type Host, type SpawnedProcess } from "../helpers/netns.ts";
import { ConfigDir, ping, startWontun } from "../helpers/wontun-node.ts";
import { newKeys, type WgKeys } from "../helpers/wireguard.ts";
import { meshScratchPerTest, meshSwitch, plugIn, showNode } from "../helpers/mesh-lab.ts";
import { etcdctl, etcdLeader, type EtcdMember, hasEtcd, spawnEtcd, startEtcdCluster } from "../helpers/etcd.ts";

const PREFIX = "/wontun/h13cluster";
const ETCD_IPS = ["192.0.2.101", "192.0.2.102", "192.0.2.103"];
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
  ip: string;
}


function meshConfig(keys: WgKeys, name: string, endpoint: string | null, extra = ""): string {
  return `[Interface]
PrivateKey = ${keys.privateKey}
ListenPort = 51820
${extra}
[Mesh]
Store = ${ETCD_IPS.map((ip) => `http://${ip}:2379`).join(", ")}
Network = 10.70.0.0/16
Prefix = ${PREFIX}
Name = ${name}
${endpoint ? `Endpoint = ${endpoint}:51820\n` : ""}Cache = ${join(data!, `${name}.mesh.json`)}
`;
}

const show = showNode;

async function peerKeys(node: Node): Promise<string[]> {
  return (await show(node.host, node.name)).peers.map((p: { publicKey: string }) => p.publicKey);
}

/** A ping that runs in the background; resolves to [sent, received]. */
function pingLoop(host: Host, address: string, seconds: number): Promise<[number, number]> {
  const count = Math.round(seconds / 0.2);
  return host.run(["ping", "-c", String(count), "-i", "0.2", "-W", "1", address], { timeoutMs: (seconds + 10) * 1000 }).then((r) => {
    const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
    return m ? [Number(m[1]), Number(m[2])] : [0, 0];
  });
}

describe.skipIf(!canRunIntegration || !hasEtcd)("mesh on a 3-member etcd cluster", () => {
  test("6 nodes, endpoint change, leader kill, etcd down 20 s, restart from cache, join meanwhile", async () => {
    ({ lab, dir, data } = await scratch.open("mesh-cluster"));
    const sw = await meshSwitch(lab, "h13");
    const cluster: EtcdMember[] = [];
    for (const [i, ip] of ETCD_IPS.entries()) {
      const host = await lab.host(`e${i + 1}`);
      await plugIn(sw, host, "h13", 10 + i, [ip]);
      cluster.push({ host, ip, name: `e${i + 1}` });
    }
    const hosts: Host[] = [];
    for (let i = 1; i <= 7; i++) {
      const h = await lab.host(`n${i}`);
      await plugIn(sw, h, "h13", i, [`192.0.2.${i}`]);
      // Nodes with endpoints relay for those without: forwarding on (inside this namespace only).
      await h.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      hosts.push(h);
    }
    const etcd = await startEtcdCluster(cluster, data);

    // Six nodes at once; n5 and n6 have no endpoint.
    const specs = [1, 2, 3, 4, 5, 6].map((i) => ({ i, name: `h13c${i}`, keys: newKeys(), endpoint: i <= 4 ? `192.0.2.${i}` : null }));
    const nodes: Node[] = await Promise.all(specs.map(async (s) => {
      const config = dir!.write(`${s.name}.conf`, meshConfig(s.keys, s.name, s.endpoint));
      const proc = await startWontun(hosts[s.i - 1], config);
      const address = /mesh: joined as \S+ with (\S+)/.exec(proc.output())?.[1] ?? "";
      return { name: s.name, host: hosts[s.i - 1], keys: s.keys, proc, address, config, ip: `192.0.2.${s.i}` };
    }));
    expect(nodes.every((n) => n.address.startsWith("10.70."))).toBe(true);
    expect(new Set(nodes.map((n) => n.address)).size).toBe(6);
    const pairs: [Node, Node][] = [];
    for (const a of nodes) for (const b of nodes) if (a !== b) pairs.push([a, b]);
    await Promise.all(pairs.map(([a, b]) => waitFor(() => ping(a.host, b.address), 15_000, `${a.name} → ${b.name}`)));

    // n2 moves to a second address (SIGHUP): the others follow in place; n1's session with n3 is untouched.
    const n1 = nodes[0];
    const before = (await show(n1.host, n1.name)).peers.find((p: any) => p.publicKey === nodes[2].keys.publicKey).latestHandshake;
    await hosts[1].ip("addr add 192.0.2.12/24 dev h13v2a");
    writeFileSync(nodes[1].config, meshConfig(nodes[1].keys, nodes[1].name, "192.0.2.12"));
    nodes[1].proc.kill("SIGHUP");
    await waitFor(async () => (await show(n1.host, n1.name)).peers.find((p: any) => p.publicKey === nodes[1].keys.publicKey)?.endpoint === "192.0.2.12:51820", 5000, "n1 follows n2's new endpoint");
    const after = (await show(n1.host, n1.name)).peers.find((p: any) => p.publicKey === nodes[2].keys.publicKey).latestHandshake;
    expect(after).toBe(before);
    expect(await ping(n1.host, nodes[1].address)).toBe(true);

    // The node restarted during the outage must not be the relay the NAT nodes use (the oldest
    // member with endpoints): a restarted relay loses the NAT nodes' sessions, and WireGuard takes
    // its ~15 s to notice, which is not what this test is about. Nor may it be a ping target.
    const relayKey = (await show(nodes[4].host, nodes[4].name)).peers.find((p: any) => p.allowedIps.includes(`${nodes[5].address}/32`))?.publicKey;
    expect(relayKey).toBeDefined();
    const notVictim = (list: Node[], victim: Node) => list.find((n) => n !== victim)!;
    const n3 = [nodes[2], nodes[3], nodes[1]].find((n) => n.keys.publicKey !== relayKey)!;
    const targetA = notVictim([nodes[3], nodes[1], nodes[2]], n3);
    const targetC = notVictim([nodes[1], nodes[2], nodes[3]], n3);

    // Leader killed, then all of etcd stopped for 20 s while pings run.
    const loops = [pingLoop(n1.host, targetA.address, 30), pingLoop(nodes[4].host, nodes[5].address, 30), pingLoop(nodes[5].host, targetC.address, 30)];
    const leader = await etcdLeader(cluster);
    etcd[leader].kill("SIGKILL");
    await etcd[leader].exited;
    await Bun.sleep(3000);
    for (const [i, p] of etcd.entries()) if (i !== leader) p.kill("SIGKILL");
    await Promise.all(etcd.map((p) => p.exited));
    const downAt = Date.now();

    // A node restarted while etcd is down comes back with its cached peers and address.
    n3.proc.kill("SIGTERM");
    expect(await n3.proc.exited).toBe(0);
    n3.proc = await startWontun(n3.host, n3.config);
    expect(n3.proc.output()).toContain("store unreachable; starting with");
    expect((await show(n3.host, n3.name)).mesh.address).toBe(n3.address);
    await waitFor(() => ping(n3.host, n1.address), 5000, "restarted n3 → n1 from the cache");
    await waitFor(() => ping(n1.host, n3.address), 5000, "n1 → restarted n3");

    // A node joins while etcd is down (its address given in the config): it waits for the store.
    const k7 = newKeys();
    const c7 = dir.write("h13c7.conf", meshConfig(k7, "h13c7", "192.0.2.7", "Address = 10.70.77.7/16"));
    const n7proc = await startWontun(hosts[6], c7);
    const n7: Node = { name: "h13c7", host: hosts[6], keys: k7, proc: n7proc, address: "10.70.77.7", config: c7, ip: "192.0.2.7" };

    await Bun.sleep(Math.max(0, 20_000 - (Date.now() - downAt)));
    const restarted = cluster.map((m) => spawnEtcd(m, cluster, data!));
    await waitFor(async () => (await etcdctl(cluster[0].host, ETCD_IPS, ["endpoint", "health"])).code === 0, 20_000, `etcd back:\n${restarted.map((p) => p.output()).join("\n")}`);
    const [a, b, c] = await Promise.all(loops);
    expect(a[1]).toBeGreaterThanOrEqual(a[0] - 2);
    expect(b[1]).toBeGreaterThanOrEqual(b[0] - 2); // n5 → n6 through the relay
    expect(c[1]).toBeGreaterThanOrEqual(c[0] - 2);

    // When etcd is back, n7 is seen by all and reaches them.
    const all = [...nodes, n7];
    await waitFor(async () => (await Promise.all(nodes.map(peerKeys))).every((keys) => keys.includes(k7.publicKey)), 20_000, "n7 seen by all after etcd returns");
    for (const other of nodes) await waitFor(() => ping(n7.host, other.address), 5000, `n7 → ${other.name}`);
    await waitFor(async () => (await show(n1.host, n1.name)).mesh.storeState === "connected", 10_000, "n1 reconnected");
    expect(n1.proc.output()).toContain("mesh: store reachable again");
    // The restarted n3 is still in everyone's peer set (its record was put back under a new lease).
    for (const n of all) if (n !== n3 && n.ip !== "192.0.2.5" && n.ip !== "192.0.2.6") expect(await peerKeys(n)).toContain(n3.keys.publicKey);
  }, 150_000);
});
