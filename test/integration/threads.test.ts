// The multi-threaded data path (--threads N, src/threads). Two wontun hosts with two data-path
// threads each, and a two-thread wontun against stock wireguard-go (whose counters are plain
// sequential ones, so its packets are spread over our threads block by block). Bulk TCP in
// several flows both ways must arrive intact; every thread must carry traffic; the control socket
// shows one peer whose transfer is the sum of what the threads moved; sessions rotate when the
// other side restarts and handshakes anew; roaming and `wg set` work as with one thread.
import { describe, expect, test } from "bun:test";
import { canRunIntegration, type Host, type Lab, type SpawnedProcess } from "../helpers/netns.ts";
import { labPerTest, startWontun, stopWontun, waitForPing, wontunCommand, type ConfigDir } from "../helpers/wontun-node.ts";
import { hasWireguardGo, newKeys, startWireguardGo, transfer, wgGoInterface, wgQuickConfig, type WgKeys } from "../helpers/wireguard.ts";

const env = labPerTest();

interface ShownThreads {
  threads?: { thread: number; bytes: number }[];
  peers: { rxBytes: number; txBytes: number; publicKey: string }[];
}

async function show(host: Host, iface: string): Promise<ShownThreads> {
  const r = await host.run([...wontunCommand(), "show", iface, "--json"], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`wontun show ${iface}: ${r.stderr}`);
  return JSON.parse(r.stdout).interfaces[0];
}

interface Pair {
  lab: Lab;
  dir: ConfigDir;
  a: Host;
  b: Host;
  ka: WgKeys;
  kb: WgKeys;
  confA: string;
  confB: string;
  pa: SpawnedProcess;
  pb: SpawnedProcess;
  logs: () => string;
}

async function twoWontuns(threads: number): Promise<Pair> {
  const lab = await env.lab("thr");
  const dir = env.dir();
  const a = await lab.host("a");
  const b = await lab.host("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  const ka = newKeys();
  const kb = newKeys();
  // Both know the other's endpoint, so either side's restart starts a new handshake at once.
  const confA = dir.write("thra.conf", wgQuickConfig({ keys: ka, addresses: ["10.61.0.1/24", "fd61::1/64"], listenPort: 51820,
    peers: [{ publicKey: kb.publicKey, allowedIps: ["10.61.0.2/32", "fd61::2/128"], endpoint: "192.0.2.2:51820" }] }));
  const confB = dir.write("thrb.conf", wgQuickConfig({ keys: kb, addresses: ["10.61.0.2/24", "fd61::2/64"], listenPort: 51820,
    peers: [{ publicKey: ka.publicKey, allowedIps: ["10.61.0.1/32", "fd61::1/128"], endpoint: "192.0.2.1:51820" }] }));
  const args = ["--threads", String(threads)];
  const pa = await startWontun(a, confA, { args });
  const pb = await startWontun(b, confB, { args });
  await waitForPing(a, "10.61.0.2");
  const pair: Pair = { lab, dir, a, b, ka, kb, confA, confB, pa, pb, logs: () => pair.pa.output() + pair.pb.output() };
  return pair;
}

/**
 * `count` TCP flows each way at once, `megabytes` each, all checked by sha256. Outgoing flows go
 * to a thread by their hash: with 12 each way the chance that one host's threads get none is
 * 2^-11 per host and direction.
 */
async function flows(a: Host, b: Host, toB: string, toA: string, megabytes: number, basePort: number, count = 3): Promise<void> {
  const runs: Promise<{ sent: string; received: string }>[] = [];
  for (let i = 0; i < count; i++) {
    runs.push(transfer(a, b, toB, megabytes, basePort + 2 * i));
    runs.push(transfer(b, a, toA, megabytes, basePort + 2 * i + 1));
  }
  for (const r of await Promise.all(runs)) expect(r.received).toBe(r.sent);
}

describe.skipIf(!canRunIntegration)("multi-threaded data path between wontun hosts", () => {
  test("two threads each side: 24 TCP flows both ways and one over IPv6 arrive intact; every thread carries traffic; one peer with the threads' sum", async () => {
    const p = await twoWontuns(2);
    expect(p.logs()).toContain("data path on 2 threads");
    await flows(p.a, p.b, "10.61.0.2", "10.61.0.1", 2, 9300, 12);
    const v6 = await transfer(p.a, p.b, "fd61::2", 8, 9299);
    expect(v6.received).toBe(v6.sent);
    for (const [host, iface] of [[p.a, "thra"], [p.b, "thrb"]] as const) {
      const s = await show(host, iface);
      expect(s.threads?.length).toBe(2);
      // 56 MB crossed each host; which flows a thread sends is the kernel's hash, so only a
      // floor is certain: more than the ACKs of one flow.
      for (const t of s.threads!) expect(t.bytes).toBeGreaterThan(1 << 20);
      expect(s.peers.length).toBe(1);
      const sum = s.threads!.reduce((n, t) => n + t.bytes, 0);
      const peer = s.peers[0].rxBytes + s.peers[0].txBytes;
      // The same datagrams counted twice over (per thread, per peer); the show runs between
      // keepalives, so they agree to within a few handshake-sized datagrams.
      expect(Math.abs(peer - sum)).toBeLessThan(4096);
    }
    expect(p.logs()).not.toContain("ERROR");
    expect(p.logs()).not.toContain("write to TUN failed");
  }, 120_000);

  test("sessions rotate: each side restarts in turn (a new handshake each time) and bulk TCP still arrives intact both ways", async () => {
    const p = await twoWontuns(2);
    await flows(p.a, p.b, "10.61.0.2", "10.61.0.1", 4, 9211);
    for (const side of ["a", "b", "a"] as const) {
      const host = side === "a" ? p.a : p.b;
      expect(await stopWontun(side === "a" ? p.pa : p.pb)).toBe(0);
      const proc = await startWontun(host, side === "a" ? p.confA : p.confB, { args: ["--threads", "2"] });
      if (side === "a") p.pa = proc;
      else p.pb = proc;
      // The restarted side starts the handshake (the other would wait out its 15 s timeout).
      await waitForPing(host, side === "a" ? "10.61.0.2" : "10.61.0.1", 20_000);
      await flows(p.a, p.b, "10.61.0.2", "10.61.0.1", 4, side === "b" ? 9221 : 9231);
    }
    expect(p.logs()).not.toContain("ERROR");
  }, 180_000);

  test("a peer added with wg set while traffic flows is routed by every thread; removing it leaves the first peer's flows intact", async () => {
    const p = await twoWontuns(2);
    const c = await p.lab.host("c");
    await p.lab.link(p.a, "198.51.100.1/24", c, "198.51.100.3/24");
    const kc = newKeys();
    const confC = p.dir.write("thrc.conf", wgQuickConfig({ keys: kc, addresses: ["10.61.0.3/24"], listenPort: 51820,
      peers: [{ publicKey: p.ka.publicKey, allowedIps: ["10.61.0.1/32"], endpoint: "198.51.100.1:51820" }] }));
    const pc = await startWontun(c, confC, { args: ["--threads", "2"] });
    const moving = flows(p.a, p.b, "10.61.0.2", "10.61.0.1", 8, 9241);
    const set = await p.a.run(["wg", "set", "thra", "peer", kc.publicKey, "allowed-ips", "10.61.0.3/32", "endpoint", "198.51.100.3:51820"]);
    expect(set.code).toBe(0);
    await waitForPing(p.a, "10.61.0.3");
    // Several flows to the new peer, so both of a's threads send to it.
    const toC = await Promise.all([transfer(p.a, c, "10.61.0.3", 4, 9251), transfer(p.a, c, "10.61.0.3", 4, 9252), transfer(c, p.a, "10.61.0.1", 4, 9253)]);
    for (const r of toC) expect(r.received).toBe(r.sent);
    const removed = await p.a.run(["wg", "set", "thra", "peer", kc.publicKey, "remove"]);
    expect(removed.code).toBe(0);
    await moving;
    const s = await show(p.a, "thra");
    expect(s.peers.length).toBe(1);
    expect((await p.a.run(["ping", "-c", "1", "-W", "1", "10.61.0.3"])).code).not.toBe(0);
    await stopWontun(pc);
    expect(p.logs()).not.toContain("ERROR");
  }, 120_000);
});

describe.skipIf(!canRunIntegration || !hasWireguardGo)("multi-threaded data path against wireguard-go", () => {
  async function wontunAndGo(): Promise<{ lab: Lab; w: Host; g: Host; wIf: string; logs: () => string }> {
    const lab = await env.lab("thrgo");
    const dir = env.dir();
    const w = await lab.host("w");
    const g = await lab.host("g");
    const { aIf: wIf } = await lab.link(w, "192.0.2.1/24", g, "192.0.2.2/24");
    const kw = newKeys();
    const kg = newKeys();
    const pw = await startWontun(w, dir.write("thrw.conf", wgQuickConfig({ keys: kw, addresses: ["10.62.0.1/24"], listenPort: 51820,
      peers: [{ publicKey: kg.publicKey, allowedIps: ["10.62.0.2/32"], endpoint: "192.0.2.2:51820" }] })), { args: ["--threads", "2"] });
    await startWireguardGo(g, dir, wgGoInterface(lab, "g"), { keys: kg, addresses: ["10.62.0.2/24"], listenPort: 51820,
      peers: [{ publicKey: kw.publicKey, allowedIps: ["10.62.0.1/32"] }] });
    await waitForPing(w, "10.62.0.2");
    return { lab, w, g, wIf, logs: () => pw.output() };
  }

  test("two threads against wireguard-go: flows both ways intact, both threads carry traffic, wg show on both ends agrees", async () => {
    const s = await wontunAndGo();
    await flows(s.w, s.g, "10.62.0.2", "10.62.0.1", 2, 9340, 12);
    const shown = await show(s.w, "thrw");
    for (const t of shown.threads!) expect(t.bytes).toBeGreaterThan(1 << 20);
    const ours = shown.peers[0].rxBytes;
    const theirs = await s.g.run(["wg", "show", wgGoInterface(s.lab, "g"), "transfer"]);
    const sentByGo = Number(theirs.stdout.trim().split(/\s+/)[2]);
    // What wireguard-go sent is what we received, bar datagrams in flight when each was read.
    expect(Math.abs(ours - sentByGo) / sentByGo).toBeLessThan(0.04);
    expect(s.logs()).not.toContain("ERROR");
  }, 120_000);

  test("roaming: the two-thread wontun host moves to another address mid-transfer; traffic continues", async () => {
    const s = await wontunAndGo();
    const moving = transfer(s.w, s.g, "10.62.0.2", 40, 9271);
    await Bun.sleep(150);
    await s.w.run(["sysctl", "-qw", `net.ipv4.conf.${s.wIf}.promote_secondaries=1`]);
    await s.w.ip(`addr add 192.0.2.9/24 dev ${s.wIf}`);
    await s.w.ip(`addr del 192.0.2.1/24 dev ${s.wIf}`);
    const result = await moving;
    expect(result.received).toBe(result.sent);
    await waitForPing(s.g, "10.62.0.1");
    const shown = await s.g.run(["wg", "show", wgGoInterface(s.lab, "g"), "endpoints"]);
    expect(shown.stdout).toContain("192.0.2.9:51820");
  }, 120_000);
});
