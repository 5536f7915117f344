// wontun's own control commands against running daemons: `wontun show` (text and --json), a
// SIGHUP reload that keeps an unchanged peer's session and refuses a broken file, and `wontun
// down`. WireGuard mode between two wontun hosts; plaintext mode for show's other dialect.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { canRunIntegration, waitFor, type Host } from "../helpers/netns.ts";
import { labPerTest, startWontun, waitForPing, wontunCommand, type ConfigDir } from "../helpers/wontun-node.ts";
import { newKeys, wgQuickConfig, type WgKeys } from "../helpers/wireguard.ts";

const env = labPerTest();

async function wontun(host: Host, ...args: string[]) {
  return host.run([...wontunCommand(), ...args], { timeoutMs: 15_000 });
}

interface ShowJson {
  version: number;
  interfaces: {
    interface: string;
    mode: string;
    listenPort: number;
    publicKey: string | null;
    peers: { publicKey: string | null; name: string | null; endpoint: string | null; allowedIps: string[]; latestHandshake: number | null; rxBytes: number; txBytes: number; state: string }[];
    drops: Record<string, number>;
  }[];
}

async function showJson(host: Host, iface: string): Promise<ShowJson> {
  const r = await wontun(host, "show", iface, "--json");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as ShowJson;
}

async function pair(tag: string) {
  const lab = await env.lab(tag);
  const dir: ConfigDir = env.dir();
  const a = await lab.host("a");
  const b = await lab.host("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  const ifA = `cc${lab.id.slice(2)}a`.slice(0, 15);
  const ifB = `cc${lab.id.slice(2)}b`.slice(0, 15);
  const keysA = newKeys();
  const keysB = newKeys();
  const keysC = newKeys();
  const confA = (extra: { keys: WgKeys; ip: string }[] = []) =>
    wgQuickConfig({
      keys: keysA,
      addresses: ["10.77.0.1/24"],
      listenPort: 51901,
      peers: [{ publicKey: keysB.publicKey, allowedIps: ["10.77.0.2/32"] }, ...extra.map((p) => ({ publicKey: p.keys.publicKey, allowedIps: [`${p.ip}/32`] }))],
    });
  const fileA = dir.write(`${ifA}.conf`, confA());
  const fileB = dir.write(
    `${ifB}.conf`,
    wgQuickConfig({ keys: keysB, addresses: ["10.77.0.2/24"], listenPort: 51902, peers: [{ publicKey: keysA.publicKey, allowedIps: ["10.77.0.1/32"], endpoint: "192.0.2.1:51901", keepalive: 5 }] }),
  );
  return { a, b, dir, ifA, ifB, keysA, keysB, keysC, confA, fileA, fileB };
}

describe.skipIf(!canRunIntegration)("wontun show, reload and down", () => {
  test("show --json reports the session with wg's meanings; show prints wg show's layout plus wontun's lines", async () => {
    const n = await pair("ctl-show");
    await startWontun(n.a, n.fileA);
    await startWontun(n.b, n.fileB);
    await waitForPing(n.b, "10.77.0.1");
    const json = await showJson(n.a, n.ifA);
    expect(json.version).toBe(1);
    expect(json.interfaces).toHaveLength(1);
    const dev = json.interfaces[0];
    expect(dev.interface).toBe(n.ifA);
    expect(dev.mode).toBe("wireguard");
    expect(dev.listenPort).toBe(51901);
    expect(dev.publicKey).toBe(n.keysA.publicKey);
    expect(dev.peers).toHaveLength(1);
    const peer = dev.peers[0];
    expect(peer.publicKey).toBe(n.keysB.publicKey);
    expect(peer.endpoint).toBe("192.0.2.2:51902");
    expect(peer.allowedIps).toEqual(["10.77.0.2/32"]);
    expect(peer.state).toBe("up");
    expect(peer.latestHandshake).toBeGreaterThan(Date.now() / 1000 - 60);
    // Handshake and ping datagrams both ways: more than a handshake's 148 + 92 bytes each way.
    expect(peer.rxBytes).toBeGreaterThan(92);
    expect(peer.txBytes).toBeGreaterThan(92);
    // The same numbers through wg, which reads the same socket.
    const wg = await n.a.run(["wg", "show", n.ifA, "transfer"]);
    const [, rx, tx] = wg.stdout.trim().split("\t");
    expect(Number(rx)).toBeGreaterThanOrEqual(peer.rxBytes);
    expect(Number(tx)).toBeGreaterThanOrEqual(peer.txBytes);

    const text = await wontun(n.a, "show", n.ifA);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`interface: ${n.ifA}`);
    expect(text.stdout).toContain(`peer: ${n.keysB.publicKey}`);
    expect(text.stdout).toContain("latest handshake:");
    expect(text.stdout).toContain("mode: wireguard");
    expect(text.stdout).not.toContain("\x1b["); // not a terminal: no colours

    const missing = await wontun(n.a, "show", "nosuchif0");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no wontun running for nosuchif0");
  });

  test("SIGHUP reload: an added peer appears, the unchanged peer keeps its session; a broken file changes nothing", async () => {
    const n = await pair("ctl-reload");
    const pa = await startWontun(n.a, n.fileA);
    await startWontun(n.b, n.fileB);
    await waitForPing(n.b, "10.77.0.1");
    const before = (await showJson(n.a, n.ifA)).interfaces[0].peers[0].latestHandshake;

    // Pings to the unchanged peer every 20 ms across the reload: none may be lost.
    const pings = n.b.run(["ping", "-c", "100", "-i", "0.02", "-W", "1", "10.77.0.1"], { timeoutMs: 15_000 });
    await Bun.sleep(500);
    n.dir.write(`${n.ifA}.conf`, n.confA([{ keys: n.keysC, ip: "10.99.3.3" }]));
    const r = await wontun(n.a, "reload", n.ifA);
    expect(r.code).toBe(0);
    await waitFor(async () => (await showJson(n.a, n.ifA)).interfaces[0].peers.length === 2, 5000, "the added peer");
    expect((await pings).stdout).toContain("100 received");
    const after = (await showJson(n.a, n.ifA)).interfaces[0];
    const b = after.peers.find((p) => p.publicKey === n.keysB.publicKey)!;
    expect(b.latestHandshake).toBe(before);
    expect(b.state).toBe("up");
    expect(after.peers.find((p) => p.publicKey === n.keysC.publicKey)!.allowedIps).toEqual(["10.99.3.3/32"]);
    expect((await n.a.run(["ip", "route", "get", "10.99.3.3"])).stdout).toContain(`dev ${n.ifA}`);

    // A broken file: refused whole with file:line:key in the log, state untouched.
    n.dir.write(`${n.ifA}.conf`, `${n.confA()}\n[Peer]\nPublicKey = nope\n`);
    pa.kill("SIGHUP");
    await waitFor(() => pa.output().includes("reload refused"), 5000, "the refusal in the log");
    expect(pa.output()).toMatch(/reload refused, nothing changed: config error: .*\.conf:\d+: PublicKey/);
    expect((await showJson(n.a, n.ifA)).interfaces[0].peers).toHaveLength(2);
    await waitForPing(n.b, "10.77.0.1");

    // Back to one peer: the removed one goes, with its route.
    n.dir.write(`${n.ifA}.conf`, n.confA());
    pa.kill("SIGHUP");
    await waitFor(async () => (await showJson(n.a, n.ifA)).interfaces[0].peers.length === 1, 5000, "the removed peer");
    expect((await n.a.run(["ip", "route", "get", "10.99.3.3"])).stdout).not.toContain(`dev ${n.ifA}`);
    expect((await showJson(n.a, n.ifA)).interfaces[0].peers[0].latestHandshake).toBe(before);
  });

  test("down stops the daemon: exit 0, interface and socket gone; a second down says none runs", async () => {
    const n = await pair("ctl-down");
    const pa = await startWontun(n.a, n.fileA);
    const r = await wontun(n.a, "down", n.fileA);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${n.ifA}: stopped\n`);
    expect(await pa.exited).toBe(0);
    expect(existsSync(`/var/run/wireguard/${n.ifA}.sock`)).toBe(false);
    expect((await n.a.run(["ip", "link", "show", n.ifA])).code).not.toBe(0);
    const again = await wontun(n.a, "down", n.ifA);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no wontun running for ${n.ifA}`);
  });

  test("SIGTERM during start-up: start-up finishes, then everything is undone and the exit is 0", async () => {
    const n = await pair("ctl-early");
    for (const moment of ["control socket", "running"]) {
      const p = n.a.spawn([...wontunCommand(), "up", n.fileA, "--log-level", "debug"]);
      await waitFor(() => p.output().includes(moment), 10_000, `"${moment}" in the log`);
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      expect(p.output()).toContain("stopped; interface removed");
      expect((await n.a.run(["ip", "link", "show", n.ifA])).code).not.toBe(0);
      expect(existsSync(`/var/run/wireguard/${n.ifA}.sock`)).toBe(false);
    }
  });

  test("plaintext mode: show --json names peers and reports the session state", async () => {
    const lab = await env.lab("ctl-plain");
    const dir = env.dir();
    const a = await lab.host("a");
    const b = await lab.host("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    const ifA = `cp${lab.id.slice(2)}a`.slice(0, 15);
    const ifB = `cp${lab.id.slice(2)}b`.slice(0, 15);
    const fa = dir.write(`${ifA}.conf`, "[Interface]\nName=hub\nAddress=10.78.0.1/24\nListenPort=19901\n\n[Peer]\nName=leaf\nAllowedIPs=10.78.0.2/32\n");
    const fb = dir.write(`${ifB}.conf`, "[Interface]\nName=leaf\nAddress=10.78.0.2/24\nListenPort=19902\n\n[Peer]\nName=hub\nEndpoint=192.0.2.1:19901\nAllowedIPs=10.78.0.0/24\n");
    await startWontun(a, fa);
    await startWontun(b, fb);
    await waitForPing(b, "10.78.0.1");
    const dev = (await showJson(a, ifA)).interfaces[0];
    expect(dev.mode).toBe("wontun");
    expect(dev.peers[0].name).toBe("leaf");
    expect(dev.peers[0].publicKey).toBeNull();
    expect(dev.peers[0].state).toBe("connected");
    expect(dev.peers[0].endpoint).toBe("192.0.2.2:19902");
    expect(dev.peers[0].rxBytes).toBeGreaterThan(0);
  });
});
