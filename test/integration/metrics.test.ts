// The Prometheus endpoint of a running wontun (`wontun up CONFIG --metrics ADDR`): two wontun
// hosts in WireGuard mode in namespaces (prefix h12), the metrics of one scraped from inside its
// namespace, parsed with the strict parser of test/helpers/prometheus-text.ts, and compared with
// `wontun show --json` read between two scrapes (counters may only grow in between). Then the
// endpoint's refusals (404, 405), a bad --metrics address (exit 2), a taken port (exit 1, nothing
// created), and WONTUN_METRICS with the wireguard-go-compatible invocation.
import { describe, expect, test } from "bun:test";
import { canRunIntegration, waitFor, type Host } from "../helpers/netns.ts";
import { labPerTest, startWontun, waitForPing, wontunCommand } from "../helpers/wontun-node.ts";
import { newKeys, wgQuickConfig } from "../helpers/wireguard.ts";
import { parsePrometheusText, type PromFamily } from "../helpers/prometheus-text.ts";

const env = labPerTest();

const METRICS = "127.0.0.1:9586";

interface HttpAnswer {
  status: number;
  contentType: string | null;
  allow: string | null;
  body: string;
}

/** An HTTP request made from inside `host`'s namespace, by a bun started there. */
async function http(host: Host, url: string, method = "GET"): Promise<HttpAnswer> {
  const script = `const r = await fetch(${JSON.stringify(url)}, { method: ${JSON.stringify(method)} });
console.log(JSON.stringify({ status: r.status, contentType: r.headers.get("content-type"), allow: r.headers.get("allow"), body: await r.text() }));`;
  const r = await host.run([process.execPath, "-e", script], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`fetch ${url} in ${host.short} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as HttpAnswer;
}

async function scrape(host: Host): Promise<Map<string, PromFamily>> {
  const r = await http(host, `http://${METRICS}/metrics`);
  expect(r.status).toBe(200);
  expect(r.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
  return new Map(parsePrometheusText(r.body).map((f) => [f.name, f]));
}

interface ShowPeer {
  publicKey: string | null;
  latestHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  state: string;
}

async function showJson(host: Host, iface: string): Promise<{ peers: ShowPeer[]; drops: Record<string, number> }> {
  const r = await host.run([...wontunCommand(), "show", iface, "--json"], { timeoutMs: 15_000 });
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { interfaces: { peers: ShowPeer[]; drops: Record<string, number> }[] }).interfaces[0];
}

/** The value of the sample of `family` whose labels include `match`. */
function value(m: Map<string, PromFamily>, family: string, match: Record<string, string>): number {
  const f = m.get(family);
  if (!f) throw new Error(`no family ${family}`);
  const s = f.samples.filter((x) => Object.entries(match).every(([k, v]) => x.labels[k] === v));
  if (s.length !== 1) throw new Error(`${family}: ${s.length} samples match ${JSON.stringify(match)}`);
  return s[0].value;
}

async function pair(tag: string) {
  const lab = await env.lab(tag, "h12");
  const dir = env.dir();
  const a = await lab.host("a");
  const b = await lab.host("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  const ifA = `mt${lab.id.slice(3)}a`;
  const ifB = `mt${lab.id.slice(3)}b`;
  const keysA = newKeys();
  const keysB = newKeys();
  const fileA = dir.write(`${ifA}.conf`, wgQuickConfig({ keys: keysA, addresses: ["10.78.0.1/24"], listenPort: 51911, peers: [{ publicKey: keysB.publicKey, allowedIps: ["10.78.0.2/32"] }] }));
  const fileB = dir.write(
    `${ifB}.conf`,
    wgQuickConfig({ keys: keysB, addresses: ["10.78.0.2/24"], listenPort: 51912, peers: [{ publicKey: keysA.publicKey, allowedIps: ["10.78.0.1/32"], endpoint: "192.0.2.1:51911", keepalive: 1 }] }),
  );
  return { a, b, ifA, ifB, keysA, keysB, fileA, fileB };
}

describe.skipIf(!canRunIntegration)("wontun up --metrics", () => {
  test("the scrape parses strictly and its counters agree with wontun show --json", async () => {
    const n = await pair("metrics");
    const pa = await startWontun(n.a, n.fileA, { args: ["--metrics", METRICS] });
    await startWontun(n.b, n.fileB);
    await waitForPing(n.b, "10.78.0.1");
    expect(pa.output()).toContain(`metrics on http://${METRICS}/metrics`);
    // Traffic keeps flowing (keepalive every second from b) while we read: counters may grow.
    await n.b.run(["ping", "-c", "5", "-i", "0.1", "10.78.0.1"]);

    const peer = { interface: n.ifA, public_key: n.keysB.publicKey };
    const before = await scrape(n.a);
    const json = await showJson(n.a, n.ifA);
    const after = await scrape(n.a);

    const p = json.peers.find((x) => x.publicKey === n.keysB.publicKey)!;
    expect(p.state).toBe("up");
    for (const [family, key] of [["wireguard_received_bytes_total", "rxBytes"], ["wireguard_sent_bytes_total", "txBytes"]] as const) {
      expect(value(before, family, peer)).toBeGreaterThan(92 * 2);
      expect(value(before, family, peer)).toBeLessThanOrEqual(p[key]);
      expect(p[key]).toBeLessThanOrEqual(value(after, family, peer));
    }
    // The handshake (one, well inside REKEY_AFTER_TIME) is the same in all three reads.
    expect(value(before, "wireguard_latest_handshake_seconds", peer)).toBe(p.latestHandshake!);
    expect(value(after, "wireguard_latest_handshake_seconds", peer)).toBe(p.latestHandshake!);
    expect(p.latestHandshake!).toBeGreaterThan(Date.now() / 1000 - 60);

    // Drops: the same reasons, each between the two scrapes.
    const drops = (m: Map<string, PromFamily>) => Object.fromEntries(m.get("wontun_dropped_total")!.samples.map((s) => [s.labels.reason, s.value]));
    expect(Object.keys(drops(before)).sort()).toEqual(Object.keys(json.drops).sort());
    for (const [reason, count] of Object.entries(json.drops)) {
      expect(drops(before)[reason]).toBeLessThanOrEqual(count);
      expect(count).toBeLessThanOrEqual(drops(after)[reason]);
    }

    // The rest of the exposition.
    const labels = before.get("wireguard_received_bytes_total")!.samples[0].labels;
    expect(labels).toEqual({ interface: n.ifA, public_key: n.keysB.publicKey, allowed_ips: "10.78.0.2/32", name: "" });
    expect(value(before, "wontun_peer_up", peer)).toBe(1);
    expect(value(before, "wontun_peers", { interface: n.ifA })).toBe(1);
    expect(value(before, "wontun_handshake_messages_total", { interface: n.ifA })).toBeGreaterThanOrEqual(1);
    const info = before.get("wontun_info")!.samples;
    expect(info).toHaveLength(1);
    expect(info[0].labels.interface).toBe(n.ifA);
    expect(info[0].labels.mode).toBe("wireguard");
    expect(info[0].labels.version).toMatch(/^\d+\.\d+\.\d+/);
    for (const f of before.values()) {
      expect(f.help).toBeTruthy();
      expect(["counter", "gauge"]).toContain(f.type);
    }

    // Only GET /metrics.
    expect((await http(n.a, `http://${METRICS}/other`)).status).toBe(404);
    for (const method of ["HEAD", "POST"]) {
      const r = await http(n.a, `http://${METRICS}/metrics`, method);
      expect(r.status).toBe(405);
      expect(r.allow).toBe("GET");
    }
    // Bound inside a's namespace only: b has no such endpoint on its loopback.
    expect((await n.b.run(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/9586`])).code).not.toBe(0);
  }, 60_000);

  test("a bad --metrics address is a usage error; a taken port is exit 1 before the tunnel starts", async () => {
    const n = await pair("metrics-bad");
    for (const bad of ["127.0.0.1", "localhost:99999", "::1:9586", "example.com:9586"]) {
      const r = await n.a.run([...wontunCommand(), "up", n.fileA, "--metrics", bad]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toStartWith("wontun: --metrics: ");
    }
    const missing = await n.a.run([...wontunCommand(), "up", n.fileA, "--metrics"]);
    expect(missing.code).toBe(2);

    const pa = await startWontun(n.a, n.fileA, { args: ["--metrics", METRICS] });
    // Another tunnel in the same namespace asking for the same port: refused before its interface exists.
    const other = `${n.ifA}x`.slice(0, 15);
    const r = await n.a.run([...wontunCommand(), "up", n.fileB, "--interface", other, "--metrics", METRICS], { timeoutMs: 15_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`wontun: metrics: cannot listen on ${METRICS}: the port is in use`);
    expect(r.stderr).not.toContain(`interface ${other} open`);
    expect((await n.a.run(["ip", "link", "show", other])).code).not.toBe(0);
    // The first one still serves.
    expect((await scrape(n.a)).get("wontun_peers")!.samples[0].value).toBe(1);
    pa.kill("SIGTERM");
    expect(await pa.exited).toBe(0);
    // The port is free again once it stopped.
    await waitFor(async () => (await n.a.run(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/9586`])).code !== 0, 5000, "the metrics port to close");
  }, 60_000);

  test("WONTUN_METRICS with `wontun -f IFACE` (wg-quick's invocation); a bad value is exit 2", async () => {
    const n = await pair("metrics-env");
    const iface = `${n.ifA}u`.slice(0, 15);
    const bad = await n.a.run(["env", "WONTUN_METRICS=127.0.0.1:0", ...wontunCommand(), "-f", iface]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toStartWith("wontun: WONTUN_METRICS: ");
    expect((await n.a.run(["ip", "link", "show", iface])).code).not.toBe(0);

    const daemon = n.a.spawn([...wontunCommand(), "-f", iface], { env: { WONTUN_METRICS: METRICS } });
    await waitFor(() => daemon.output().includes("running"), 10_000, `wontun -f ${iface}:\n${daemon.output()}`);
    const m = await scrape(n.a);
    expect(value(m, "wontun_peers", { interface: iface })).toBe(0);
    expect(m.get("wontun_info")!.samples[0].labels).toMatchObject({ interface: iface, mode: "wireguard" });
    expect(m.get("wireguard_received_bytes_total")!.samples).toEqual([]);
    // A peer added with wg appears in the next scrape.
    const r = await n.a.run(["wg", "set", iface, "peer", n.keysB.publicKey, "allowed-ips", "10.78.0.2/32"]);
    expect(r.code).toBe(0);
    const m2 = await scrape(n.a);
    expect(value(m2, "wontun_peers", { interface: iface })).toBe(1);
    expect(value(m2, "wireguard_latest_handshake_seconds", { public_key: n.keysB.publicKey })).toBe(0);
    daemon.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
  }, 60_000);
});
