// The mesh on one etcd with authentication on (a role limited to the mesh's prefix), in
// namespaces whose names, like every interface name here, start with "h14". The tests run in
// order on one lab and one etcd (started in beforeAll), each building on the previous one:
// 1. [Mesh] Endpoint as a host name: the node resolves it (per-namespace /etc/netns/NS/hosts) and
//    publishes the address; a name that does not resolve does not hold up the start and is
//    published once it resolves; a changed answer is published again and the others follow.
// 2. Username/Password: the nodes of test 1 joined with the right ones; a wrong password, a user
//    whose role does not cover the prefix, and no credentials fail at start with one line each.
// 3. A static [Peer] (a wontun host outside the mesh) mixed into a mesh node's config: it reaches
//    both; a record overlapping the static peer's prefix is ignored with a warning.
// 4. --metrics on a mesh node: wontun_mesh_store_up and wontun_mesh_members{state} agree with
//    `wontun show --json`; with etcd stopped store_up is 0; etcd back (its auth tokens gone with
//    the restart), 1 again and changes are followed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canRunIntegration, Lab, waitFor, type Host, type SpawnedProcess } from "../helpers/netns.ts";
import { COMPILED, ConfigDir, ping, startWontun, wontunCommand } from "../helpers/wontun-node.ts";
import { newKeys, type WgKeys } from "../helpers/wireguard.ts";
import { etcdctl, hasEtcd, spawnEtcd, startEtcd } from "../helpers/etcd.ts";
import { meshSwitch, plugIn, showNode } from "../helpers/mesh-lab.ts";
import { parsePrometheusText, type PromFamily } from "../helpers/prometheus-text.ts";

const ETCD_IP = "192.0.2.100";
const PREFIX = "/wontun/h14";
const ROOT = ["--user", "root:h14rootpw"];
const METRICS = "127.0.0.1:9586";

interface World {
  lab: Lab;
  dir: ConfigDir;
  data: string;
  etcd: SpawnedProcess;
  e: Host;
  n: Host[]; // n[0..3] = 192.0.2.1 .. 192.0.2.4
  hosts: Map<Host, string>; // /etc/netns/NS/hosts of n1 and n3
}

let w: World | null = null;
const netnsDirs: string[] = [];
const nodes = new Map<string, { host: Host; keys: WgKeys; proc: SpawnedProcess }>();

function segment(publicKey: string): string {
  return publicKey.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const attach = (sw: Host, host: Host, index: number, ips: string[]) => plugIn(sw, host, "h14", index, ips);

/** Before any process runs in `host`: its own /etc/hosts and a resolv.conf whose server refuses at once. */
function netnsEtc(host: Host, hosts: string): string {
  const etc = `/etc/netns/${host.name}`;
  mkdirSync(etc, { recursive: true });
  netnsDirs.push(etc);
  writeFileSync(`${etc}/hosts`, hosts);
  writeFileSync(`${etc}/resolv.conf`, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
  return `${etc}/hosts`;
}

function meshConfig(keys: WgKeys, name: string, opts: { endpoint?: string; auth?: string | null; extra?: string; peers?: string } = {}): string {
  const auth = opts.auth === undefined ? "Username = h14node\nPassword = h14nodepw\n" : opts.auth ?? "";
  return `[Interface]
PrivateKey = ${keys.privateKey}
ListenPort = 51820
${opts.extra ?? ""}
${opts.peers ?? ""}
[Mesh]
Store = http://${ETCD_IP}:2379
${auth}Network = 10.70.0.0/16
Prefix = ${PREFIX}
Name = ${name}
${opts.endpoint ? `Endpoint = ${opts.endpoint}\n` : ""}TTL = 3
Cache = ${join(w!.data, `${name}.mesh.json`)}
`;
}

const show = showNode;

async function record(publicKey: string): Promise<any> {
  const r = await etcdctl(w!.e, ETCD_IP, [...ROOT, "get", `${PREFIX}/nodes/${segment(publicKey)}`, "--print-value-only"]);
  return r.stdout.trim() ? JSON.parse(r.stdout.trim()) : null;
}

function node(name: string) {
  const n = nodes.get(name);
  if (!n) throw new Error(`${name} is not running (the tests of this file run in order)`);
  return n;
}

async function peerOf(from: string, to: string): Promise<any> {
  const shown = await show(node(from).host, from);
  return shown.peers.find((p: { publicKey: string }) => p.publicKey === node(to).keys.publicKey);
}

async function scrape(host: Host): Promise<Map<string, PromFamily>> {
  const script = `const r = await fetch("http://${METRICS}/metrics"); console.log(JSON.stringify({ status: r.status, body: await r.text() }));`;
  const r = await host.run([process.execPath, "-e", script], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`scrape in ${host.short}: ${r.stderr}`);
  const answer = JSON.parse(r.stdout) as { status: number; body: string };
  expect(answer.status).toBe(200);
  return new Map(parsePrometheusText(answer.body).map((f) => [f.name, f]));
}

beforeAll(async () => {
  if (!canRunIntegration || !hasEtcd) return;
  const lab = await Lab.create("mesh-extras", "h14");
  const dir = new ConfigDir();
  const data = mkdtempSync(join(tmpdir(), "h14-mesh-"));
  const sw = await meshSwitch(lab, "h14");
  const e = await lab.host("e");
  await attach(sw, e, 0, [ETCD_IP]);
  const n: Host[] = [];
  const hosts = new Map<Host, string>();
  for (let i = 1; i <= 4; i++) {
    const h = await lab.host(`n${i}`);
    // n1 and n3 publish host names; their files exist before anything runs there.
    if (i === 1) hosts.set(h, netnsEtc(h, "127.0.0.1 localhost\n192.0.2.1 h14n1.test\n"));
    if (i === 3) hosts.set(h, netnsEtc(h, "127.0.0.1 localhost\n"));
    // n1 has a second address, the one its name moves to.
    await attach(sw, h, i, i === 1 ? ["192.0.2.1", "192.0.2.11"] : [`192.0.2.${i}`]);
    n.push(h);
  }
  const etcd = await startEtcd(e, ETCD_IP, data);
  w = { lab, dir, data, etcd, e, n, hosts };
  // Authentication: root, a node user whose role may read and write the mesh's prefix only, and
  // a user whose role covers another prefix.
  const setup = [
    ["user", "add", "root", "--new-user-password=h14rootpw"],
    ["role", "add", "h14mesh"],
    ["role", "grant-permission", "h14mesh", "readwrite", "--prefix=true", `${PREFIX}/`],
    ["user", "add", "h14node", "--new-user-password=h14nodepw"],
    ["user", "grant-role", "h14node", "h14mesh"],
    ["role", "add", "h14other"],
    ["role", "grant-permission", "h14other", "readwrite", "--prefix=true", "/other/"],
    ["user", "add", "h14other", "--new-user-password=h14otherpw"],
    ["user", "grant-role", "h14other", "h14other"],
    ["auth", "enable"],
  ];
  for (const args of setup) {
    const r = await etcdctl(e, ETCD_IP, args);
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr}`);
  }
}, 60_000);

afterAll(async () => {
  await w?.lab.cleanup();
  w?.dir.remove();
  if (w) rmSync(w.data, { recursive: true, force: true });
  for (const d of netnsDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  w = null;
});

describe.skipIf(!canRunIntegration || !hasEtcd)("mesh: host names, etcd auth, static peers, metrics", () => {
  test("Endpoint host names are resolved by their node and published as addresses", async () => {
    const { n, dir, hosts } = w!;
    // n1 names itself h14n1.test (192.0.2.1), and serves metrics; n2 has an IP literal and a
    // static peer (test 3); n3, the compiled executable, names itself h14n3.test, unknown at first.
    for (const [name, host, endpoint, args, binary, peers, extra] of [
      ["h14m1", n[0], "h14n1.test:51820", ["--metrics", METRICS], undefined, "", ""],
      ["h14m2", n[1], "192.0.2.2:51820", [], undefined, "static", "Address = 10.70.0.2/16, 172.31.0.1/24"],
      ["h14m3", n[2], "h14n3.test:51820", [], existsSync(COMPILED) ? COMPILED : undefined, "", ""],
    ] as const) {
      const keys = newKeys();
      // n2's static peer is the host outside the mesh (n4, started in test 3): its key now.
      let peerText = "";
      if (peers === "static") {
        const outside = newKeys();
        nodes.set("h14x", { host: n[3], keys: outside, proc: null as unknown as SpawnedProcess });
        peerText = `[Peer]\nPublicKey = ${outside.publicKey}\nEndpoint = 192.0.2.4:51820\nAllowedIPs = 172.31.0.2/32\n`;
      }
      const config = dir.write(`${name}.conf`, meshConfig(keys, name, { endpoint, extra, peers: peerText }));
      const t0 = Date.now();
      const proc = await startWontun(host, config, { args: [...args], binary });
      // A name that does not resolve does not hold up the start.
      expect(Date.now() - t0).toBeLessThan(8000);
      nodes.set(name, { host, keys, proc });
    }
    const [m1, m2, m3] = ["h14m1", "h14m2", "h14m3"].map(node);
    expect(m1.proc.output()).toContain("mesh: Endpoint h14n1.test resolves to 192.0.2.1");
    expect((await record(m1.keys.publicKey)).endpoints).toEqual(["192.0.2.1:51820"]);
    expect(m3.proc.output()).toMatch(/mesh: cannot resolve Endpoint h14n3\.test \(.*\); not published until it resolves/);
    expect(m3.proc.output()).toMatch(/mesh: joined as h14m3 with 10\.70\./);
    expect((await record(m3.keys.publicKey)).endpoints).toEqual([]);
    const address = async (name: string) => (await show(node(name).host, name)).mesh.address as string;
    const [a1, a2, a3] = [await address("h14m1"), await address("h14m2"), await address("h14m3")];
    expect(a2).toBe("10.70.0.2");
    await waitFor(() => ping(m2.host, a1), 8000, "h14m2 → h14m1");
    // n3 without a published endpoint dials out to the others.
    await waitFor(() => ping(m3.host, a1), 8000, "h14m3 → h14m1");
    await waitFor(() => ping(m3.host, a2), 8000, "h14m3 → h14m2");

    // h14n3.test appears: n3 publishes it (retries back off 1, 2, 3 s), the others take it.
    writeFileSync(hosts.get(n[2])!, "127.0.0.1 localhost\n192.0.2.3 h14n3.test\n");
    // (n1 may already have that endpoint by roaming, from n3's packets: the record is what counts.)
    await waitFor(async () => (await record(m3.keys.publicKey)).endpoints[0] === "192.0.2.3:51820", 10_000, `h14m3's record has 192.0.2.3:\n${m3.proc.output().slice(-1500)}`);
    await waitFor(async () => (await peerOf("h14m1", "h14m3"))?.endpoint === "192.0.2.3:51820", 5000, "h14m1 has h14m3 at 192.0.2.3");
    expect(m3.proc.output()).toContain("mesh: Endpoint h14n3.test resolves to 192.0.2.3");
    expect(await ping(m1.host, a3)).toBe(true);

    // h14n1.test moves to 192.0.2.11 (rewritten in place: the bind mount follows the file): n1
    // looks again within its TTL (3 s), publishes, and the others move the peer's endpoint.
    writeFileSync(hosts.get(n[0])!, "127.0.0.1 localhost\n192.0.2.11 h14n1.test\n");
    await waitFor(async () => (await peerOf("h14m2", "h14m1"))?.endpoint === "192.0.2.11:51820", 10_000, `h14m2 has h14m1 at 192.0.2.11:\n${m1.proc.output().slice(-1500)}`);
    expect(m1.proc.output()).toContain("mesh: Endpoint h14n1.test now resolves to 192.0.2.11 (was 192.0.2.1); publishing the changed record");
    expect((await record(m1.keys.publicKey)).endpoints).toEqual(["192.0.2.11:51820"]);
    expect(m1.proc.output()).not.toContain("record under our own key");
    expect(await ping(m2.host, a1)).toBe(true);
  }, 60_000);

  test("etcd Username/Password: right ones joined; wrong ones fail at start with one line", async () => {
    const { n, dir } = w!;
    // The nodes above joined as h14node.
    expect(node("h14m1").proc.output()).toMatch(/mesh: joined as h14m1/);
    const tryUp = async (auth: string | null, extra = "") => {
      const config = dir.write("h14bad.conf", meshConfig(newKeys(), "h14bad", { endpoint: "192.0.2.4:51820", auth, extra }));
      const r = await n[3].run([...wontunCommand(), "up", config], { timeoutMs: 20_000 });
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("wontun:"));
      expect(lines).toHaveLength(1);
      return lines[0];
    };
    // With an Address (so an outage would be ridden out): a refusal is still fatal.
    expect(await tryUp("Username = h14node\nPassword = wrong\n", "Address = 10.70.0.40/16")).toBe(`wontun: store http://${ETCD_IP}:2379: authentication failed for user "h14node": wrong [Mesh] Username or Password`);
    expect(await tryUp("Username = h14other\nPassword = h14otherpw\n")).toMatch(new RegExp(`^wontun: store http://${ETCD_IP.replace(/\./g, "\\.")}:2379: permission denied for user "h14other" on /wontun/h14/: its role needs readwrite on that prefix`));
    expect(await tryUp(null)).toBe(`wontun: store http://${ETCD_IP}:2379: the store requires authentication: set [Mesh] Username and Password`);
    // Nothing of theirs got into the store.
    const keys = await etcdctl(w!.e, ETCD_IP, [...ROOT, "get", "--prefix", `${PREFIX}/addresses/`, "--keys-only"]);
    expect(keys.stdout).not.toContain("10.70.0.40");
  }, 60_000);

  test("a static [Peer] mixed in: both reachable; an overlapping mesh record is ignored", async () => {
    const { n, dir } = w!;
    const m1 = node("h14m1");
    const m2 = node("h14m2");
    const x = node("h14x");
    // The host outside the mesh: a static wontun with n2 as its only peer.
    const xConf = dir.write("h14x.conf", `[Interface]
PrivateKey = ${x.keys.privateKey}
Address = 172.31.0.2/24
ListenPort = 51820

[Peer]
PublicKey = ${m2.keys.publicKey}
Endpoint = 192.0.2.2:51820
AllowedIPs = 172.31.0.1/32
`);
    x.proc = await startWontun(n[3], xConf);
    await waitFor(() => ping(m2.host, "172.31.0.2"), 8000, "h14m2 → the static peer");
    expect(await ping(x.host, "172.31.0.1")).toBe(true);
    const a1 = (await show(m1.host, "h14m1")).mesh.address;
    expect(await ping(m2.host, a1)).toBe(true);

    // A member whose Subnets overlap the static peer's 172.31.0.2/32 (written as a node would:
    // record and address key): n2 ignores it with a warning, n1 (no static peer) takes it.
    const f = newKeys();
    const fRecord = JSON.stringify({ publicKey: f.publicKey, name: "h14over", address: "10.70.99.99", endpoints: ["192.0.2.99:51820"], subnets: ["172.31.0.0/25"], version: "t" });
    expect((await etcdctl(w!.e, ETCD_IP, [...ROOT, "put", `${PREFIX}/addresses/10.70.99.99`, f.publicKey])).code).toBe(0);
    expect((await etcdctl(w!.e, ETCD_IP, [...ROOT, "put", `${PREFIX}/nodes/${segment(f.publicKey)}`], fRecord)).code).toBe(0);
    nodes.set("h14over", { host: n[3], keys: f, proc: null as unknown as SpawnedProcess });
    await waitFor(() => m2.proc.output().includes("overlaps 172.31.0.2/32, routed to a static [Peer]"), 5000, "h14m2 warns about the overlap");
    expect(m2.proc.output()).toContain(`mesh: ignoring ${PREFIX}/nodes/${segment(f.publicKey)}: 172.31.0.0/25 overlaps 172.31.0.2/32, routed to a static [Peer]`);
    await waitFor(async () => (await peerOf("h14m1", "h14over")) !== undefined, 5000, "h14m1 has the member");
    const shown = await show(m2.host, "h14m2");
    expect(shown.peers.map((p: { publicKey: string }) => p.publicKey)).not.toContain(f.publicKey);
    expect(shown.peers.find((p: { publicKey: string }) => p.publicKey === x.keys.publicKey).allowedIps).toEqual(["172.31.0.2/32"]);
    expect(shown.mesh.members.find((m: { key: string }) => m.key.endsWith(segment(f.publicKey)))?.state).toMatch(/^ignored: 172\.31\.0\.0\/25 overlaps/);
    // The static peer keeps its route.
    expect(await ping(m2.host, "172.31.0.2")).toBe(true);
    expect(await ping(x.host, "172.31.0.1")).toBe(true);
  }, 60_000);

  test("--metrics on a mesh node: store_up and members{state} agree with show; etcd down → 0", async () => {
    const m1 = node("h14m1");
    // An ignored record too, so that every state is counted.
    expect((await etcdctl(w!.e, ETCD_IP, [...ROOT, "put", `${PREFIX}/nodes/h14garbage`], "{not json")).code).toBe(0);
    await waitFor(() => m1.proc.output().includes(`ignoring ${PREFIX}/nodes/h14garbage: record is not JSON`), 5000, "garbage seen");
    const gauges = async () => {
      const f = await scrape(m1.host);
      const value = (name: string, state?: string) => f.get(name)!.samples.find((s) => s.labels.interface === "h14m1" && (state === undefined || s.labels.state === state))!.value;
      return { up: value("wontun_mesh_store_up"), peer: value("wontun_mesh_members", "peer"), notPeered: value("wontun_mesh_members", "not_peered"), ignored: value("wontun_mesh_members", "ignored"), published: value("wontun_mesh_published"), revision: value("wontun_mesh_revision") };
    };
    const fromShow = async () => {
      const mesh = (await show(m1.host, "h14m1")).mesh;
      const count = (pred: (s: string) => boolean) => mesh.members.filter((m: { state: string }) => pred(m.state)).length;
      return { up: mesh.storeState === "connected" ? 1 : 0, peer: count((s) => s === "peer"), notPeered: count((s) => s !== "peer" && !s.startsWith("ignored")), ignored: count((s) => s.startsWith("ignored")), published: mesh.published ? 1 : 0 };
    };
    const g = await gauges();
    const s = await fromShow();
    expect({ up: g.up, peer: g.peer, notPeered: g.notPeered, ignored: g.ignored, published: g.published }).toEqual(s);
    // n2, n3 and the overlapping member are peers of n1; the garbage is ignored.
    expect(s).toEqual({ up: 1, peer: 3, notPeered: 0, ignored: 1, published: 1 });
    expect(g.revision).toBeGreaterThan(0);

    // etcd stops: store_up goes to 0, the mesh's peers stay.
    w!.etcd.kill("SIGKILL");
    await w!.etcd.exited;
    await waitFor(async () => (await gauges()).up === 0, 15_000, "wontun_mesh_store_up 0 with etcd down");
    expect((await show(m1.host, "h14m1")).mesh.storeState).toBe("unreachable");
    expect((await gauges()).peer).toBe(3);
    expect(await ping(node("h14m2").host, (await show(m1.host, "h14m1")).mesh.address)).toBe(true);

    // etcd back (auth on, the old tokens gone): store_up 1, and changes are followed again.
    const member = { host: w!.e, ip: ETCD_IP, name: "e1" };
    w!.etcd = spawnEtcd(member, [member], w!.data);
    await waitFor(async () => (await etcdctl(w!.e, ETCD_IP, [...ROOT, "endpoint", "health"])).code === 0, 20_000, "etcd back");
    await waitFor(async () => (await gauges()).up === 1, 20_000, `wontun_mesh_store_up 1 again:\n${m1.proc.output().slice(-1500)}`);
    expect((await etcdctl(w!.e, ETCD_IP, [...ROOT, "del", `${PREFIX}/nodes/h14garbage`])).code).toBe(0);
    expect((await etcdctl(w!.e, ETCD_IP, [...ROOT, "del", `${PREFIX}/nodes/${segment(node("h14over").keys.publicKey)}`])).code).toBe(0);
    await waitFor(async () => {
      const now = await gauges();
      return now.ignored === 0 && now.peer === 2 && now.published === 1;
    }, 10_000, `the deletes followed after the restart:\n${m1.proc.output().slice(-1500)}`);
    expect(await fromShow()).toEqual({ up: 1, peer: 2, notPeered: 0, ignored: 0, published: 1 });
  }, 60_000);
});
