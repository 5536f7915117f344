// A tunnel's DeviceStatus as Prometheus metrics (src/metrics/device-metrics.ts): names, types,
// labels in both modes, and the same numbers `wontun show --json` prints for the same status.
import { describe, expect, test } from "bun:test";
import { MetricsWriter } from "../../src/metrics/text-format.ts";
import { writeDeviceMetrics } from "../../src/metrics/device-metrics.ts";
import { showJson } from "../../src/control/status-render.ts";
import { formatStatusResponse, parseStatusResponse } from "../../src/control/uapi-get.ts";
import { blankPeerStatus, type DeviceStatus, type PeerStatus } from "../../src/control/model.ts";
import { parseCidr } from "../../src/net/ip.ts";
import { parsePrometheusText, type PromFamily } from "../helpers/prometheus-text.ts";

const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);

function peer(over: Partial<PeerStatus>): PeerStatus {
  return { ...blankPeerStatus(1), state: "no session", ...over };
}

function cidr(text: string) {
  const c = parseCidr(text);
  if (typeof c === "string" || c === null) throw new Error(`bad cidr ${text}`);
  return c;
}

const wgStatus: DeviceStatus = {
  mode: "wireguard",
  interfaceName: "wg0",
  privateKey: new Uint8Array(32).fill(9),
  publicKey: new Uint8Array(32).fill(8),
  name: "",
  listenPort: 51820,
  fwmark: 0,
  peers: [
    peer({ id: 1, publicKey: KEY_A, name: 'office "east"', allowedIps: [cidr("10.0.0.2/32"), cidr("fd00::2/128")], lastHandshake: { sec: 1_700_000_123, nsec: 5 }, rxBytes: 1234, txBytes: 5678, state: "up" }),
    peer({ id: 2, publicKey: KEY_B, allowedIps: [cidr("10.0.1.0/24")], state: "handshaking" }),
  ],
  drops: { noRoute: 3, macMismatch: 1, notIp: 0 },
};

const wontunStatus: DeviceStatus = {
  mode: "wontun",
  interfaceName: "tun0",
  privateKey: null,
  publicKey: null,
  name: "server",
  listenPort: 19988,
  fwmark: 0,
  peers: [peer({ id: 1, name: "client-A", allowedIps: [cidr("10.10.0.3/32")], lastHandshake: { sec: 1_700_000_000, nsec: 0 }, rxBytes: 10, txBytes: 20, state: "connected" })],
  drops: { unknownName: 2 },
};

function scrape(status: DeviceStatus, handshakeMessages = 42): Map<string, PromFamily> {
  const out = new MetricsWriter();
  writeDeviceMetrics(out, { status, handshakeMessages, version: "1.2.3" });
  return new Map(parsePrometheusText(out.render()).map((f) => [f.name, f]));
}

describe("device metrics", () => {
  test("every family with its type, HELP and labels (WireGuard mode)", () => {
    const m = scrape(wgStatus);
    expect([...m.values()].map((f) => [f.name, f.type])).toEqual([
      ["wontun_info", "gauge"],
      ["wontun_peers", "gauge"],
      ["wireguard_received_bytes_total", "counter"],
      ["wireguard_sent_bytes_total", "counter"],
      ["wireguard_latest_handshake_seconds", "gauge"],
      ["wontun_peer_up", "gauge"],
      ["wontun_dropped_total", "counter"],
      ["wontun_handshake_messages_total", "counter"],
    ]);
    for (const f of m.values()) expect(f.help).toBeTruthy();
    expect(m.get("wontun_info")!.samples).toEqual([{ name: "wontun_info", labels: { interface: "wg0", mode: "wireguard", version: "1.2.3" }, value: 1 }]);
    expect(m.get("wontun_peers")!.samples[0].value).toBe(2);
    const rx = m.get("wireguard_received_bytes_total")!.samples;
    expect(rx[0].labels).toEqual({ interface: "wg0", public_key: "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", allowed_ips: "10.0.0.2/32,fd00::2/128", name: 'office "east"' });
    expect(rx.map((s) => s.value)).toEqual([1234, 0]);
    expect(m.get("wireguard_sent_bytes_total")!.samples.map((s) => s.value)).toEqual([5678, 0]);
    expect(m.get("wireguard_latest_handshake_seconds")!.samples.map((s) => s.value)).toEqual([1_700_000_123, 0]);
    expect(m.get("wontun_peer_up")!.samples.map((s) => s.value)).toEqual([1, 0]);
    expect(m.get("wontun_dropped_total")!.samples.map((s) => [s.labels.reason, s.value])).toEqual([["macmismatch", 1], ["noroute", 3], ["notip", 0]]);
    expect(m.get("wontun_handshake_messages_total")!.samples).toEqual([{ name: "wontun_handshake_messages_total", labels: { interface: "wg0" }, value: 42 }]);
  });

  test("wontun mode: public_key is empty, name names the peer; 'connected' is up", () => {
    const m = scrape(wontunStatus);
    const [s] = m.get("wireguard_sent_bytes_total")!.samples;
    expect(s.labels).toEqual({ interface: "tun0", public_key: "", allowed_ips: "10.10.0.3/32", name: "client-A" });
    expect(m.get("wontun_info")!.samples[0].labels.mode).toBe("wontun");
    expect(m.get("wontun_peer_up")!.samples[0].value).toBe(1);
    expect(m.get("wontun_dropped_total")!.samples.map((x) => x.labels.reason)).toEqual(["unknownname"]);
  });

  test("no peers: the families are there, empty; the gauges say 0", () => {
    const m = scrape({ ...wgStatus, peers: [], drops: {} });
    expect(m.get("wontun_peers")!.samples[0].value).toBe(0);
    expect(m.get("wireguard_received_bytes_total")!.samples).toEqual([]);
    expect(m.get("wontun_dropped_total")!.samples).toEqual([]);
  });

  test("the numbers and drop reasons are those of `wontun show --json` for the same status", () => {
    for (const status of [wgStatus, wontunStatus]) {
      const m = scrape(status);
      // As `wontun show` gets it: through the control socket's get=wontun answer.
      const json = showJson([parseStatusResponse(formatStatusResponse(status))], 1_700_000_200) as { interfaces: { peers: { rxBytes: number; txBytes: number; latestHandshake: number | null }[]; drops: Record<string, number> }[] };
      const dev = json.interfaces[0];
      dev.peers.forEach((p, i) => {
        expect(m.get("wireguard_received_bytes_total")!.samples[i].value).toBe(p.rxBytes);
        expect(m.get("wireguard_sent_bytes_total")!.samples[i].value).toBe(p.txBytes);
        expect(m.get("wireguard_latest_handshake_seconds")!.samples[i].value).toBe(p.latestHandshake ?? 0);
      });
      const drops = Object.fromEntries(m.get("wontun_dropped_total")!.samples.map((s) => [s.labels.reason, s.value]));
      expect(drops).toEqual(dev.drops);
    }
  });

  test("drop counters whose names meet in the reason label add up (no duplicate series)", () => {
    const m = scrape({ ...wgStatus, drops: { noRoute: 2, noroute: 3 } });
    expect(m.get("wontun_dropped_total")!.samples.map((s) => [s.labels.reason, s.value])).toEqual([["noroute", 5]]);
  });

  test("two tunnels in one scrape share the families, told apart by interface", () => {
    const out = new MetricsWriter();
    writeDeviceMetrics(out, { status: wgStatus, handshakeMessages: 1, version: "v" });
    writeDeviceMetrics(out, { status: wontunStatus, handshakeMessages: 2, version: "v" });
    const m = new Map(parsePrometheusText(out.render()).map((f) => [f.name, f]));
    expect(m.get("wontun_peers")!.samples.map((s) => s.labels.interface)).toEqual(["wg0", "tun0"]);
  });
});
