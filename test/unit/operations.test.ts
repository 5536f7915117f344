// The operations API over a real Device on the in-memory Bind/Tun (no root): ids, atomic changes,
// AllowedIPs replace/extend, replace_peers, private-key changes, and status with wg's meanings.
import { describe, expect, test } from "bun:test";
import { Device } from "../../src/device/device.ts";
import { MemoryBind, MemoryNetwork } from "../../src/device/bind-memory.ts";
import { MemoryTun } from "../../src/device/tun-memory.ts";
import { WireGuardProtocol } from "../../src/protocol/wireguard/protocol.ts";
import { Operations } from "../../src/control/operations.ts";
import { ControlError, type DeviceChange, type PeerChange } from "../../src/control/model.ts";
import { selectAeadBackend } from "../../src/crypto/aead.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import { formatCidr, parseCidr, type Cidr } from "../../src/net/ip.ts";
import { keyFrom } from "../helpers/wg-sim.ts";
import type { Logger } from "../../src/log.ts";

const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };
const aead = selectAeadBackend();
const cidr = (t: string) => parseCidr(t) as Cidr;

function node(network: MemoryNetwork, n: number, clock: () => number) {
  const privateKey = keyFrom(100 + n);
  const protocol = new WireGuardProtocol({ privateKey, aead, mtu: 1420 });
  const bind = new MemoryBind({ network, address: new Uint8Array([192, 0, 2, n]) });
  const device = new Device({ tun: new MemoryTun(`m${n}`), bind, protocol, log: quiet, listenPort: 51820, clock });
  device.start();
  const ops = new Operations({ device, protocol, mode: "wireguard", interfaceName: `m${n}`, now: clock });
  return { privateKey, publicKey: publicKeyOf(privateKey), ops, device, bind };
}

function peer(publicKey: Uint8Array, extra: Partial<PeerChange> = {}): PeerChange {
  return { publicKey, name: "", remove: false, updateOnly: false, replaceAllowedIps: false, allowedIps: [], ...extra };
}

const change = (peers: PeerChange[], extra: Partial<DeviceChange> = {}): DeviceChange => ({ replacePeers: false, peers, ...extra });

describe("operations", () => {
  test("ids are never reused; AllowedIPs extend, replace, and move between peers as in wg", () => {
    let now = 0;
    const a = node(new MemoryNetwork(1), 1, () => now);
    const k1 = publicKeyOf(keyFrom(1));
    const k2 = publicKeyOf(keyFrom(2));
    a.ops.apply(change([peer(k1, { allowedIps: [cidr("10.1.0.0/24")] }), peer(k2, { allowedIps: [cidr("10.2.0.0/24")] })]));
    const ids = a.ops.status().peers.map((p) => p.id);
    a.ops.apply(change([peer(k1, { remove: true })]));
    a.ops.apply(change([peer(k1, { allowedIps: [cidr("10.1.0.0/24")] })]));
    const again = a.ops.status().peers.find((p) => p.publicKey![0] === k1[0])!.id;
    expect(ids).not.toContain(again);
    expect(again).toBeGreaterThan(Math.max(...ids));

    a.ops.apply(change([peer(k1, { allowedIps: [cidr("10.9.0.0/16")] })]));
    const of = (k: Uint8Array) => a.ops.status().peers.find((p) => p.publicKey![0] === k[0])!.allowedIps.map(formatCidr).sort();
    expect(of(k1)).toEqual(["10.1.0.0/24", "10.9.0.0/16"]);
    a.ops.apply(change([peer(k1, { replaceAllowedIps: true, allowedIps: [cidr("10.3.0.0/24")] })]));
    expect(of(k1)).toEqual(["10.3.0.0/24"]);
    a.ops.apply(change([peer(k1, { allowedIps: [cidr("10.2.0.0/24")] })]));
    expect(of(k1)).toEqual(["10.2.0.0/24", "10.3.0.0/24"]);
    expect(of(k2)).toEqual([]);
    a.ops.apply(change([peer(k1, { removeAllowedIps: [cidr("10.3.0.0/24")] })]));
    expect(of(k1)).toEqual(["10.2.0.0/24"]);
  });

  test("a change with a bad part changes nothing; update_only never creates; replace_peers keeps named peers", () => {
    let now = 0;
    const a = node(new MemoryNetwork(2), 1, () => now);
    const k1 = publicKeyOf(keyFrom(1));
    const k2 = publicKeyOf(keyFrom(2));
    a.ops.apply(change([peer(k1, { allowedIps: [cidr("10.1.0.0/24")], persistentKeepalive: 25 })]));
    const before = JSON.stringify(a.ops.status(), (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v));
    expect(() => a.ops.apply(change([peer(k2, { allowedIps: [cidr("10.2.0.0/24")] }), peer(k1, { persistentKeepalive: 70000 })]))).toThrow(ControlError);
    expect(() => a.ops.apply(change([peer(new Uint8Array(31))], { listenPort: 51821 }))).toThrow(ControlError);
    expect(JSON.stringify(a.ops.status(), (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v))).toBe(before);

    a.ops.apply(change([peer(k2, { updateOnly: true, allowedIps: [cidr("10.2.0.0/24")] })]));
    expect(a.ops.peerCount).toBe(1);
    const id = a.ops.status().peers[0].id;
    a.ops.apply(change([peer(k1), peer(k2)], { replacePeers: true }));
    const after = a.ops.status().peers;
    expect(after.map((p) => p.id)[0]).toBe(id);
    expect(after[0].persistentKeepalive).toBe(0); // replaced, not merged
    expect(after).toHaveLength(2);
    a.ops.apply(change([peer(k2)], { replacePeers: true }));
    expect(a.ops.status().peers.map((p) => p.publicKey![0])).toEqual([k2[0]]);
  });

  test("two devices handshake through changes alone; status reports wg's transfer and handshake time; a new private key drops the clashing peer", () => {
    let now = 0;
    const network = new MemoryNetwork(3);
    const a = node(network, 1, () => now);
    const b = node(network, 2, () => now);
    a.ops.apply(change([peer(b.publicKey, { allowedIps: [cidr("10.0.0.2/32")], endpoint: b.bind.endpoint, persistentKeepalive: 1 })]));
    b.ops.apply(change([peer(a.publicKey, { allowedIps: [cidr("10.0.0.1/32")] })]));
    for (let i = 0; i < 300; i++) {
      now += 10;
      network.now = now;
      a.device.step(now);
      b.device.step(now);
    }
    const pa = a.ops.status().peers[0];
    const pb = b.ops.status().peers[0];
    expect(pa.state).toBe("up");
    expect(pa.lastHandshake.sec).toBeGreaterThan(0);
    // Initiation 148 + keepalives (32 each) one way, response 92 + keepalives the other: each end's tx is the other's rx.
    expect(pa.txBytes).toBe(pb.rxBytes);
    expect(pa.rxBytes).toBe(pb.txBytes);
    expect(pa.txBytes).toBeGreaterThanOrEqual(148);
    expect(pb.endpoint).not.toBeNull();

    // b takes a's key: the peer whose public key is now b's own cannot stay.
    b.ops.apply(change([], { privateKey: a.privateKey }));
    expect(b.ops.peerCount).toBe(0);
  });
});
