// The mesh's additions without etcd: [Mesh] Endpoint names (parsed, resolved by the node itself
// with a fake clock and lookup: published as addresses, re-resolved, a failing name never waits),
// overlap of members with static peers' prefixes (catch-alls excepted), and the one-line
// refusals for etcd authentication errors.
import { describe, expect, test } from "bun:test";
import { parseConfigText } from "../../src/config/load.ts";
import { encodeKey, generatePrivateKey, publicKeyOf } from "../../src/crypto/keys.ts";
import { type Cidr, formatCidr, parseCidr } from "../../src/net/ip.ts";
import { addressKey, encodeRecord, nodeKey, ownRecord } from "../../src/mesh/record.ts";
import { readMembership, type StoreEntry } from "../../src/mesh/membership.ts";
import { OwnEndpoints } from "../../src/mesh/endpoints.ts";
import { storeAuthProblem } from "../../src/mesh/store.ts";
import type { MeshConfig } from "../../src/mesh/config.ts";
import type { ResolverClock } from "../../src/daemon/endpoint-resolver.ts";
import type { Logger } from "../../src/log.ts";

const KEY = encodeKey(generatePrivateKey());
const NET = parseCidr("10.70.0.0/16") as Cidr;
const P = "/wontun/t";

/** Timers run when the test advances the time. */
class FakeClock implements ResolverClock {
  t = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number) {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown) {
    this.timers.delete(handle as number);
  }
  async advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
    await flush();
  }
}

async function flush() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function logger() {
  const lines: string[] = [];
  const put = (level: string) => (m: string) => lines.push(`${level} ${m}`);
  return { lines, log: { debug: put("debug"), info: put("info"), warn: put("warn"), error: put("error") } as unknown as Logger };
}

describe("[Mesh] Endpoint names", () => {
  test("a host name is accepted in ini and TOML; garbage and special addresses are not", () => {
    const c = parseConfigText(`[Interface]\nPrivateKey = ${KEY}\n[Mesh]\nStore = http://a:2379\nNetwork = 10.70.0.0/16\nEndpoint = vpn.example.org:51820\nEndpoint = 192.0.2.1:51820\n`, "n.conf", "ini", { wireguard: true });
    expect(c.mesh!.endpoints).toEqual([{ host: "vpn.example.org", port: 51820 }, { host: "192.0.2.1", port: 51820 }]);
    const t = parseConfigText(`[interface]\nprivate_key = "${KEY}"\n[mesh]\nstore = "http://a:2379"\nnetwork = "10.70.0.0/16"\nendpoint = ["a.example:5"]\n`, "n.toml", "toml", { wireguard: true });
    expect(t.mesh!.endpoints).toEqual([{ host: "a.example", port: 5 }]);
    expect(() => parseConfigText(`[Interface]\nPrivateKey = ${KEY}\n[Mesh]\nStore = http://a:2379\nNetwork = 10.70.0.0/16\nEndpoint = vpn.example.org\n`, "n.conf", "ini", { wireguard: true })).toThrow(/n\.conf:6: Endpoint: bad endpoint: .*no port/);
  });

  test("names are published as their addresses, re-resolved, and a failing name never waits", async () => {
    const clock = new FakeClock();
    const answers = new Map<string, string | Error | "hang">([["a.test", "192.0.2.1"], ["b.test", new Error("getaddrinfo ENOTFOUND")], ["c.test", "hang"]]);
    const lookup = (host: string) => {
      const a = answers.get(host);
      if (a === "hang") return new Promise<string>(() => {});
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a ?? "");
    };
    const { lines, log } = logger();
    let changes = 0;
    const own = new OwnEndpoints([
      { host: "a.test", port: 1 }, { host: "198.51.100.1", port: 2 }, { host: "b.test", port: 3 }, { host: "c.test", port: 4 }, { host: "2001:db8::1", port: 5 },
    ], { log, intervalMs: 10_000, lookup, clock, onChange: () => changes++ });
    expect(own.hasNames).toBe(true);
    // Before any answer: the literals only.
    expect(own.current()).toEqual([{ host: "198.51.100.1", port: 2 }, { host: "2001:db8::1", port: 5 }]);
    let ready = false;
    void own.firstAnswers(2000).then(() => (ready = true));
    await clock.advance(0);
    expect(own.current()).toEqual([{ host: "192.0.2.1", port: 1 }, { host: "198.51.100.1", port: 2 }, { host: "2001:db8::1", port: 5 }]);
    expect(changes).toBe(1);
    expect(lines.some((l) => l.startsWith("warn mesh: cannot resolve Endpoint b.test (getaddrinfo ENOTFOUND); not published until it resolves; retrying in 1 s"))).toBe(true);
    // c.test hangs: the start waits 2 s at most.
    expect(ready).toBe(false);
    await clock.advance(2000);
    expect(ready).toBe(true);
    // c.test's lookup times out after 5 s; b.test resolves later and is published.
    answers.set("b.test", "192.0.2.3");
    await clock.advance(4000);
    expect(own.current().map((e) => `${e.host}:${e.port}`)).toEqual(["192.0.2.1:1", "198.51.100.1:2", "192.0.2.3:3", "2001:db8::1:5"]);
    expect(changes).toBe(2);
    // a.test's answer changes: seen at the next look-up (10 s after the last), published once.
    answers.set("a.test", "192.0.2.11");
    await clock.advance(3000);
    expect(own.current()[0].host).toBe("192.0.2.1");
    await clock.advance(1000);
    expect(own.current()[0].host).toBe("192.0.2.11");
    expect(changes).toBe(3);
    expect(lines).toContain("info mesh: Endpoint a.test now resolves to 192.0.2.11 (was 192.0.2.1); publishing the changed record");
    // A name that stops resolving keeps its last address (the data plane never depends on DNS).
    answers.set("a.test", new Error("getaddrinfo EAI_AGAIN"));
    await clock.advance(10_000);
    expect(own.current()[0].host).toBe("192.0.2.11");
    expect(lines.some((l) => l.includes("cannot resolve Endpoint a.test") && l.includes("still publishing 192.0.2.11"))).toBe(true);
    // A name resolving to a special address is not published.
    answers.set("c.test", "0.0.0.0");
    await clock.advance(20_000);
    expect(own.current().some((e) => e.port === 4)).toBe(false);
    expect(lines.some((l) => l.includes("c.test") && l.includes("unspecified"))).toBe(true);
    // A reload that drops b.test and repeats an address publishes each address:port once.
    own.set([{ host: "a.test", port: 1 }, { host: "192.0.2.11", port: 1 }]);
    expect(own.current()).toEqual([{ host: "192.0.2.11", port: 1 }]);
    own.stop();
    const before = changes;
    answers.set("a.test", "192.0.2.99");
    await clock.advance(60_000);
    expect(changes).toBe(before);
  });
});

function member(name: string, address: string, subnets: string[] = []) {
  const pub = publicKeyOf(generatePrivateKey());
  const record = { ...ownRecord(pub, name, new Uint8Array(address.split(".").map(Number)), [{ host: "192.0.2.1", port: 1 }], [], "t"), subnets };
  return { key: encodeKey(pub), etcdKey: nodeKey(P, pub), value: new TextEncoder().encode(encodeRecord(record)), address };
}

function viewOf(members: ReturnType<typeof member>[]): Map<string, StoreEntry> {
  const view = new Map<string, StoreEntry>();
  let rev = 1;
  for (const m of members) {
    view.set(m.etcdKey, { value: m.value, createRevision: rev++ });
    view.set(addressKey(P, new Uint8Array(m.address.split(".").map(Number))), { value: new TextEncoder().encode(m.key), createRevision: rev++ });
  }
  return view;
}

describe("members and static peers", () => {
  const cidrs = (...t: string[]) => t.map((x) => parseCidr(x) as Cidr);
  const ctx = (statics: Cidr[]) => ({ prefix: P, network: NET, ownKey: "self", staticKeys: new Set<string>(), staticPrefixes: statics });

  test("a member overlapping a static peer's prefix is ignored, either way round", () => {
    const inside = member("inside", "10.70.250.7"); // its /32 is inside a static 10.70.250.0/24
    const sub = member("sub", "10.70.0.5", ["172.31.0.0/25"]); // inside the static 172.31.0.0/24
    const wide = member("wide", "10.70.0.6", ["172.16.0.0/12"]); // contains the static 172.31.0.0/24
    const ok = member("ok", "10.70.0.7", ["198.51.100.0/24"]);
    const m = readMembership(viewOf([inside, sub, wide, ok]), ctx(cidrs("10.70.250.0/24", "172.31.0.0/24")));
    expect(m.members.map((x) => x.name)).toEqual(["ok"]);
    expect(m.ignored.get(inside.etcdKey)).toBe("10.70.250.7/32 overlaps 10.70.250.0/24, routed to a static [Peer]");
    expect(m.ignored.get(sub.etcdKey)).toBe("172.31.0.0/25 overlaps 172.31.0.0/24, routed to a static [Peer]");
    expect(m.ignored.get(wide.etcdKey)).toBe("172.16.0.0/12 overlaps 172.31.0.0/24, routed to a static [Peer]");
  });

  test("a static catch-all (covering the mesh Network) is refined, not overlapped", () => {
    const a = member("a", "10.70.0.5", ["198.51.100.0/24"]);
    const m = readMembership(viewOf([a]), ctx(cidrs("0.0.0.0/0", "10.0.0.0/8", "::/0")));
    expect(m.members.map((x) => x.name)).toEqual(["a"]);
  });

  test("members' subnets may not overlap an earlier member's", () => {
    const a = member("a", "10.70.0.5", ["198.51.100.0/24"]);
    const b = member("b", "10.70.0.6", ["198.51.100.128/25"]);
    const c = member("c", "10.70.0.7", ["203.0.113.0/24"]);
    const m = readMembership(viewOf([a, b, c]), ctx([]));
    expect(m.members.map((x) => x.name)).toEqual(["a", "c"]);
    expect(m.ignored.get(b.etcdKey)).toBe("198.51.100.128/25 overlaps 198.51.100.0/24, already routed to a");
    expect(formatCidr(m.members[1].subnets[0])).toBe("203.0.113.0/24");
  });
});

describe("store refusals", () => {
  const mesh = (auth: boolean) => ({ prefix: "/wontun/x", ...(auth ? { username: "node", password: "pw" } : {}) }) as MeshConfig;
  test("authentication and permission errors say what to change; outages are not refusals", () => {
    expect(storeAuthProblem(new Error("etcdserver: authentication failed, invalid user ID or password"), mesh(true))).toBe('authentication failed for user "node": wrong [Mesh] Username or Password');
    expect(storeAuthProblem(new Error("etcdserver: user name is empty"), mesh(false))).toBe("the store requires authentication: set [Mesh] Username and Password");
    expect(storeAuthProblem(new Error("etcdserver: permission denied"), mesh(true))).toMatch(/^permission denied for user "node" on \/wontun\/x\/: its role needs readwrite/);
    expect(storeAuthProblem(new Error("etcdserver: authentication is not enabled"), mesh(true))).toMatch(/authentication off/);
    expect(storeAuthProblem(new Error("14 UNAVAILABLE: No connection established"), mesh(true))).toBeNull();
    expect(storeAuthProblem(new Error("store: no answer in 2 s"), mesh(false))).toBeNull();
  });
});
