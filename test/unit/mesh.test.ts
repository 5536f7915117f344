// The mesh's pure parts: [Mesh] config errors, record checks, membership and topology, the diff
// applied through operations, address candidates, the cache's mode, the metrics gauges.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/load.ts";
import { ConfigError } from "../../src/config/model.ts";
import { encodeKey, generatePrivateKey, publicKeyOf } from "../../src/crypto/keys.ts";
import { formatIp, parseCidr, type Cidr } from "../../src/net/ip.ts";
import { addressKey, decodeMember, encodeRecord, nodeKey, ownRecord } from "../../src/mesh/record.ts";
import { desiredPeers, diffPeers, readMembership, type StoreEntry } from "../../src/mesh/membership.ts";
import { candidateAddresses } from "../../src/mesh/allocate.ts";
import { readCache, writeCache } from "../../src/mesh/cache.ts";
import { writeMeshMetrics } from "../../src/mesh/metrics.ts";
import { MetricsWriter } from "../../src/metrics/text-format.ts";

const KEY = encodeKey(generatePrivateKey());
const NET = parseCidr("10.70.0.0/16") as Cidr;
const P = "/wontun/t";

function conf(mesh: string, iface = ""): string {
  return `[Interface]\nPrivateKey = ${KEY}\n${iface}\n[Mesh]\n${mesh}\n`;
}

function configError(text: string, file = "n.conf"): string {
  try {
    parseConfigText(text, file, file.endsWith(".toml") ? "toml" : "ini", { wireguard: true });
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("no error");
}

describe("[Mesh] config", () => {
  test("a full section, Address optional", () => {
    const c = parseConfigText(conf("Store = http://192.0.2.10:2379, http://192.0.2.11:2379\nNetwork = 10.70.0.0/16\nEndpoint = 192.0.2.1:51820\nEndpoint = [2001:db8::1]:51820\nSubnets = 192.168.5.0/24\nTTL = 10\nName = n1"), "n.conf", "ini", { wireguard: true });
    expect(c.interface.addresses).toEqual([]);
    expect(c.mesh!.store).toEqual(["http://192.0.2.10:2379", "http://192.0.2.11:2379"]);
    expect(c.mesh!.endpoints).toEqual([{ host: "192.0.2.1", port: 51820 }, { host: "2001:db8::1", port: 51820 }]);
    expect(c.mesh!.prefix).toBe("/wontun/10.70.0.0-16");
    expect(c.mesh!.ttl).toBe(10);
  });
  test("TOML [mesh] with IPv6", () => {
    const c = parseConfigText(`[interface]\nprivate_key = "${KEY}"\n[mesh]\nstore = "http://a:2379"\nnetwork = "fd70::/64"\nendpoint = ["192.0.2.1:5"]\n`, "n.toml", "toml", { wireguard: true });
    expect(c.mesh!.network.prefix).toBe(64);
    expect(c.mesh!.ttl).toBe(30);
  });
  test("errors name file, line and key", () => {
    expect(configError(conf("Network = 10.70.0.0/16"))).toMatch(/^n\.conf:4: .*needs Store/);
    expect(configError(conf("Store = http://a:2379"))).toMatch(/^n\.conf:4: .*needs Network/);
    expect(configError(conf("Store = ftp://a:2379\nNetwork = 10.70.0.0/16"))).toMatch(/^n\.conf:5: Store: /);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/16\nTTL = 1"))).toMatch(/^n\.conf:7: TTL: expected an integer 2-3600/);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/16\nEndpoint = node_1!.example:1"))).toMatch(/^n\.conf:7: Endpoint: .*neither an IP address nor a host name/);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/16\nEndpoint = 224.0.0.1:1"))).toMatch(/^n\.conf:7: Endpoint: .*multicast/);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/16\nSubnets = 10.70.5.0/24"))).toMatch(/^n\.conf:7: Subnets: .*overlaps/);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/31"))).toMatch(/Network: .*no room/);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/16", "Address = 10.9.0.1/24"))).toMatch(/Network: no \[Interface\] Address is inside/);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/16\nBogus = 1"))).toMatch(/^n\.conf:7: Bogus: unknown key in \[Mesh\]/);
    expect(configError(`[Interface]\nName = a\nAddress = 10.0.0.1/24\n[Mesh]\nStore = http://a:2379\nNetwork = 10.70.0.0/16\n`)).toMatch(/^n\.conf:4: .*needs a PrivateKey/);
    expect(configError(conf("Store = http://a:2379\nNetwork = 10.70.0.0/16\nCAFile = ca.pem"))).toMatch(/Store: CAFile\/CertFile are for https/);
  });
  test("static configs are unchanged (no mesh field)", () => {
    const c = parseConfigText(`[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.1/24\n`, "n.conf", "ini", { wireguard: true });
    expect("mesh" in c).toBe(false);
  });
});

function member(name: string, address: string, endpoints: string[] = ["192.0.2.1:51820"], subnets: string[] = []) {
  const pub = publicKeyOf(generatePrivateKey());
  const record = { ...ownRecord(pub, name, new Uint8Array(address.split(".").map(Number)), [], [], "t"), endpoints, subnets };
  return { pub, key: encodeKey(pub), etcdKey: nodeKey(P, pub), value: new TextEncoder().encode(encodeRecord(record)), address };
}

function viewOf(members: ReturnType<typeof member>[], rev = 1): Map<string, StoreEntry> {
  const view = new Map<string, StoreEntry>();
  for (const m of members) {
    view.set(m.etcdKey, { value: m.value, createRevision: rev++ });
    view.set(addressKey(P, new Uint8Array(m.address.split(".").map(Number))), { value: new TextEncoder().encode(m.key), createRevision: rev++ });
  }
  return view;
}

const ctx = (own: string) => ({ prefix: P, network: NET, ownKey: own, staticKeys: new Set<string>(), staticPrefixes: [] });

describe("records and membership", () => {
  test("bad records are ignored with a reason", () => {
    const a = member("a", "10.70.0.5");
    expect(typeof decodeMember(P, a.etcdKey, a.value, NET)).toBe("object");
    expect(decodeMember(P, `${P}/nodes/x`, a.value, NET)).toBe("record is stored under another node's key");
    expect(decodeMember(P, a.etcdKey, new Uint8Array(5000), NET)).toMatch(/at most 4096/);
    expect(decodeMember(P, a.etcdKey, new TextEncoder().encode("{"), NET)).toBe("record is not JSON");
    const outside = member("o", "10.71.0.5");
    expect(decodeMember(P, outside.etcdKey, outside.value, NET)).toMatch(/not a host address/);
    const overlapping = member("s", "10.70.0.6", [], ["10.70.1.0/24"]);
    expect(decodeMember(P, overlapping.etcdKey, overlapping.value, NET)).toMatch(/overlaps/);
  });
  test("a record must hold its address; another node's address is refused", () => {
    const a = member("a", "10.70.0.5");
    const thief = member("thief", "10.70.0.5");
    const view = viewOf([a]);
    view.set(thief.etcdKey, { value: thief.value, createRevision: 99 });
    const m = readMembership(view, ctx("self"));
    expect(m.members.map((x) => x.name)).toEqual(["a"]);
    expect(m.ignored.get(thief.etcdKey)).toMatch(/belongs to another node/);
  });
  test("topology: with endpoints peer with all; without, only with reachable ones, keepalive 25", () => {
    const hub = member("hub", "10.70.0.1");
    const nat = member("nat", "10.70.0.2", []);
    const m = readMembership(viewOf([hub, nat]), ctx("self"));
    expect([...desiredPeers(m.members, true).keys()].sort()).toEqual([hub.key, nat.key].sort());
    const behind = desiredPeers(m.members, false);
    expect([...behind.keys()]).toEqual([hub.key]);
    expect(behind.get(hub.key)!.persistentKeepalive).toBe(25);
    // The other node behind NAT is reached through the relay (the oldest node with endpoints).
    expect(behind.get(hub.key)!.allowedIps.map((c) => `${formatIp(c.address)}/${c.prefix}`)).toEqual(["10.70.0.1/32", "10.70.0.2/32"]);
  });
  test("diff: join, endpoint change in place, leave", () => {
    const a = member("a", "10.70.0.5", ["192.0.2.1:51820"], ["192.168.1.0/24"]);
    const d1 = desiredPeers(readMembership(viewOf([a]), ctx("self")).members, true);
    const join = diffPeers(new Map(), d1);
    expect(join.change.peers[0].updateOnly).toBe(false);
    expect(join.change.peers[0].allowedIps.map((c) => `${formatIp(c.address)}/${c.prefix}`)).toEqual(["10.70.0.5/32", "192.168.1.0/24"]);
    const moved = { ...a, value: new TextEncoder().encode(new TextDecoder().decode(a.value).replace("192.0.2.1:51820", "192.0.2.9:51820")) };
    const d2 = desiredPeers(readMembership(viewOf([moved]), ctx("self")).members, true);
    const change = diffPeers(d1, d2);
    expect(change.change.peers).toHaveLength(1);
    expect(change.change.peers[0].updateOnly).toBe(true);
    expect(change.change.peers[0].replaceAllowedIps).toBe(false);
    expect(change.lines[0]).toContain("endpoint 192.0.2.9:51820");
    const leave = diffPeers(d2, new Map());
    expect(leave.change.peers[0].remove).toBe(true);
  });
  test("address candidates skip taken, network and broadcast addresses", () => {
    const net = parseCidr("10.70.0.0/30") as Cidr;
    const all = [...candidateAddresses(net, new Uint8Array(8), new Set(["10.70.0.1"]), formatIp)].map(formatIp);
    expect(all).toEqual(["10.70.0.2"]);
  });
});

test("the cache is written 0600 and read back only for its own prefix and key", () => {
  const dir = mkdtempSync(join(tmpdir(), "h13-cache-"));
  try {
    const path = join(dir, "sub", "x.mesh.json");
    const view = viewOf([member("a", "10.70.0.5")]);
    writeCache(path, { version: 1, prefix: P, publicKey: "k", address: "10.70.0.9", revision: 7 }, view);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const back = readCache(path, P, "k")!;
    expect(back.cache.revision).toBe(7);
    expect(back.view.size).toBe(view.size);
    expect(readCache(path, "/other", "k")).toBeNull();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("mesh gauges", () => {
  const out = new MetricsWriter();
  writeMeshMetrics(out, "wg0", { store: "http://a:2379", storeState: "connected", storeError: "", revision: 5, address: "10.70.0.1", published: true,
    members: [{ name: "a", key: "k", address: "10.70.0.2", endpoint: "", state: "peer" }, { name: "", key: "x", address: "", endpoint: "", state: "ignored: bad" }] });
  const text = out.render();
  expect(text).toContain('wontun_mesh_store_up{interface="wg0"} 1');
  expect(text).toContain('wontun_mesh_members{interface="wg0",state="peer"} 1');
  expect(text).toContain('wontun_mesh_members{interface="wg0",state="ignored"} 1');
});

test("https by IP address needs ServerName; conf --to ini/toml keeps [Mesh]", async () => {
  expect(configError(conf("Store = https://192.0.2.10:2379\nNetwork = 10.70.0.0/16"))).toMatch(/^n\.conf:5: Store: .*needs ServerName/);
  const { toIni, toToml } = await import("../../src/config/dump.ts");
  const text = conf("Store = https://etcd.example:2379\nNetwork = fd70::/64\nEndpoint = [2001:db8::1]:51820\nSubnets = 192.168.5.0/24\nTTL = 9\nName = n1\nUsername = u\nPassword = p");
  const c = parseConfigText(text, "n.conf", "ini", { wireguard: true });
  for (const [out, format, file] of [[toIni(c), "ini", "a.conf"], [toToml(c), "toml", "a.toml"]] as const) {
    const back = parseConfigText(out, file, format, { wireguard: true });
    expect(toIni(back)).toBe(toIni(c));
    expect(back.mesh!.ttl).toBe(9);
  }
});

test("get=wontun carries the mesh; wontun show renders it; no mesh, no lines", async () => {
  const { formatStatusResponse, parseStatusResponse } = await import("../../src/control/uapi-get.ts");
  const { renderShow } = await import("../../src/control/status-render.ts");
  const base = { mode: "wireguard" as const, interfaceName: "wg0", privateKey: null, publicKey: null, name: "", listenPort: 51820, fwmark: 0, peers: [], drops: {} };
  const mesh = { store: "http://a:2379", storeState: "unreachable" as const, storeError: "Connection dropped", revision: 42, address: "10.70.0.1", published: true,
    members: [{ name: "n2", key: "k2", address: "10.70.0.2", endpoint: "192.0.2.2:51820", state: "peer" }, { name: "", key: "/p/nodes/x", address: "", endpoint: "", state: "ignored: record is not JSON" }] };
  const back = parseStatusResponse(formatStatusResponse({ ...base, mesh }));
  expect(back.mesh).toEqual(mesh);
  expect(formatStatusResponse(base)).not.toContain("mesh_");
  expect(parseStatusResponse(formatStatusResponse(base)).mesh).toBeUndefined();
  const text = renderShow([back], { color: false, now: 0 });
  expect(text).toContain("mesh store: http://a:2379 unreachable (Connection dropped), revision 42");
  expect(text).toContain("mesh member: n2 10.70.0.2 192.0.2.2:51820 [peer]");
});
