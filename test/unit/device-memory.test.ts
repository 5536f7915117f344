// Two Devices over MemoryBind/MemoryTun on a fake clock: no root, no sockets, no TUN. The whole
// data path (routing, held packets, endpoint learning, outcome dispatch, transfer counters) runs
// as in `wontun up`; only the Bind and the Tun are in memory.
import { describe, expect, test } from "bun:test";
import { Device } from "../../src/device/device.ts";
import { MemoryBind, MemoryNetwork } from "../../src/device/bind-memory.ts";
import { MemoryTun } from "../../src/device/tun-memory.ts";
import { WireGuardProtocol } from "../../src/protocol/wireguard/protocol.ts";
import { WontunProtocol } from "../../src/protocol/wontun/protocol.ts";
import { encodeName, writeHandshakeInit } from "../../src/protocol/wontun/messages.ts";
import type { PeerId, TunnelProtocol } from "../../src/protocol/tunnel.ts";
import { REKEY_AFTER_TIME } from "../../src/protocol/wireguard/constants.ts";
import { selectAeadBackend } from "../../src/crypto/aead.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import type { Endpoint } from "../../src/net/endpoint.ts";
import { parseCidr, type Cidr } from "../../src/net/ip.ts";
import { keyFrom, seededBytes } from "../helpers/wg-sim.ts";
import { seededRandom } from "../../src/device/bind-memory.ts";
import type { Logger } from "../../src/log.ts";

const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };
const aead = selectAeadBackend();

interface Host {
  name: string;
  ip: number[];
  endpoint: Endpoint;
  device: Device;
  tun: MemoryTun;
  protocol: TunnelProtocol;
}

class Lab {
  now = 0;
  readonly network: MemoryNetwork;
  readonly hosts: Host[] = [];
  constructor(seed: number) {
    this.network = new MemoryNetwork(seed);
  }

  host(name: string, n: number, protocol: TunnelProtocol, bind = new MemoryBind({ network: this.network, address: new Uint8Array([192, 0, 2, n]) })): Host {
    const tun = new MemoryTun(name);
    const device = new Device({ tun, bind, protocol, log: quiet, listenPort: 51820, clock: () => this.now });
    device.start();
    const host = { name, ip: [10, 0, 0, n], endpoint: bind.endpoint, device, tun, protocol };
    this.hosts.push(host);
    return host;
  }

  /** Advances the clock in 10 ms steps; every device does one round per step (`idle`: and its idle work). */
  run(ms: number, stepMs = 10, idle = false): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += stepMs;
      this.network.now = this.now;
      for (const h of this.hosts) h.device.step(this.now, idle);
    }
  }
}

/** An IPv4/UDP packet from `from` to `to` whose payload says `text`. */
function packet(from: number[], to: number[], text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const p = new Uint8Array(28 + body.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(from, 12);
  p.set(to, 16);
  p.set(body, 28);
  return p;
}

const textsOf = (packets: Uint8Array[]) => packets.map((p) => new TextDecoder().decode(p.subarray(28)));
const cidr = (ip: number[]) => parseCidr(`${ip.join(".")}/32`) as Cidr;

function wg(seed: number, key: Uint8Array, now: () => number): WireGuardProtocol {
  return new WireGuardProtocol({ privateKey: key, aead, mtu: 1420, random: seededBytes(seed), wallClock: () => 1_700_000_000_000 + now() });
}

/** Peer `id` on `host` is `other` (its IP as AllowedIPs; its endpoint if `dial`). */
function connect(lab: Lab, host: Host, id: PeerId, other: Host, otherKey: Uint8Array | null, dial: boolean): void {
  if (host.protocol instanceof WireGuardProtocol) {
    host.protocol.addPeer({ id, publicKey: publicKeyOf(otherKey!), presharedKey: null, persistentKeepaliveSeconds: 0 });
  } else {
    (host.protocol as WontunProtocol).addPeer({ id, name: other.name, persistentKeepaliveSeconds: 0 });
  }
  host.device.addPeer(id, other.name);
  host.device.setAllowedIps(id, [cidr(other.ip)]);
  if (dial) host.device.setPeerEndpoint(id, other.endpoint, lab.now);
}

function transferAgrees(a: Host, aPeer: PeerId, b: Host, bPeer: PeerId): void {
  const ab = a.device.peerTransfer(aPeer);
  const ba = b.device.peerTransfer(bPeer);
  expect(ab.txBytes).toBe(ba.rxBytes);
  expect(ba.txBytes).toBe(ab.rxBytes);
  expect(ab.txBytes).toBeGreaterThan(0);
  expect(ba.txBytes).toBeGreaterThan(0);
}

describe("two devices in memory, WireGuard mode", () => {
  test("packets both ways under 30% loss, a rekey, a peer removed and re-added, a peer added mid-flow", () => {
    const lab = new Lab(7);
    const [ka, kb, kc] = [keyFrom(101), keyFrom(202), keyFrom(303)];
    const a = lab.host("a", 1, wg(1, ka, () => lab.now));
    const b = lab.host("b", 2, wg(2, kb, () => lab.now));
    // Ids are the caller's: neither dense nor in any order.
    connect(lab, a, 42, b, kb, true);
    connect(lab, b, 7, a, ka, false);

    // 30% loss: the handshake retries until it completes; the first packet was held meanwhile.
    lab.network.loss = 0.3;
    a.tun.inject(packet(a.ip, b.ip, "first"));
    lab.run(60_000);
    expect(a.protocol.canSend(42)).toBe(true);
    let got = 0;
    for (let i = 0; i < 200; i++) {
      a.tun.inject(packet(a.ip, b.ip, `a${i}`));
      b.tun.inject(packet(b.ip, a.ip, `b${i}`));
      lab.run(20);
    }
    lab.run(1000);
    const atB = textsOf(b.tun.take());
    const atA = textsOf(a.tun.take());
    got = atB.length + atA.length;
    // Some are lost (and a lost handshake message costs more), none is damaged or duplicated.
    expect(got).toBeGreaterThan(150);
    expect(got).toBeLessThan(400);
    expect(new Set(atB).size).toBe(atB.length);
    expect(atB.every((t) => /^(first|a\d+)$/.test(t))).toBe(true);
    expect(atA.every((t) => /^b\d+$/.test(t))).toBe(true);
    expect(b.device.peerEndpoint(7)).toEqual(a.endpoint);

    // Without loss: everything arrives, and the transfer counters of both ends agree.
    lab.network.loss = 0;
    lab.run(1000);
    const before = [a.device.peerTransfer(42), b.device.peerTransfer(7)];
    for (let i = 0; i < 50; i++) {
      a.tun.inject(packet(a.ip, b.ip, `x${i}`));
      b.tun.inject(packet(b.ip, a.ip, `y${i}`));
      lab.run(10);
    }
    lab.run(100);
    expect(textsOf(b.tun.take())).toEqual(Array.from({ length: 50 }, (_, i) => `x${i}`));
    expect(textsOf(a.tun.take())).toEqual(Array.from({ length: 50 }, (_, i) => `y${i}`));
    const after = [a.device.peerTransfer(42), b.device.peerTransfer(7)];
    expect(after[0].txBytes - before[0].txBytes).toBe(after[1].rxBytes - before[1].rxBytes);
    expect(after[1].txBytes - before[1].txBytes).toBe(after[0].rxBytes - before[0].rxBytes);

    // A rekey after REKEY_AFTER_TIME of use; traffic goes on through it.
    const handshakes = a.protocol.handshakeMessages;
    const first = (a.protocol as WireGuardProtocol).peers.get(42)!.current;
    for (let t = 0; t < REKEY_AFTER_TIME / 1000 + 10; t++) {
      a.tun.inject(packet(a.ip, b.ip, `r${t}`));
      lab.run(1000, 100);
    }
    expect((a.protocol as WireGuardProtocol).peers.get(42)!.current).not.toBe(first);
    expect(a.protocol.handshakeMessages).toBeGreaterThan(handshakes);
    expect(textsOf(b.tun.take()).length).toBe(REKEY_AFTER_TIME / 1000 + 10);

    // Removed: no route, nothing held, nothing sent. Re-added under a new id: works again.
    a.device.removePeer(42);
    a.protocol.removePeer(42);
    const noRoute = a.device.counters.noRoute;
    a.tun.inject(packet(a.ip, b.ip, "gone"));
    lab.run(100);
    expect(a.device.counters.noRoute).toBe(noRoute + 1);
    expect(b.tun.take()).toEqual([]);
    expect(() => a.device.peerTransfer(42)).toThrow();
    connect(lab, a, 43, b, kb, true);
    a.tun.inject(packet(a.ip, b.ip, "back"));
    lab.run(1000);
    expect(textsOf(b.tun.take())).toEqual(["back"]);
    expect(a.device.peerTransfer(43).rxBytes).toBeGreaterThan(0);

    // A third host joins while a flow a -> b runs: that flow loses nothing.
    const c = lab.host("c", 3, wg(3, kc, () => lab.now));
    connect(lab, c, 1000, a, ka, false);
    const flow: string[] = [];
    for (let i = 0; i < 100; i++) {
      if (i === 30) connect(lab, a, 44, c, kc, true);
      if (i === 31) a.tun.inject(packet(a.ip, c.ip, "to c"));
      flow.push(`f${i}`);
      a.tun.inject(packet(a.ip, b.ip, `f${i}`));
      lab.run(10);
    }
    lab.run(500);
    expect(textsOf(b.tun.take())).toEqual(flow);
    expect(textsOf(c.tun.take())).toEqual(["to c"]);
    lab.run(1000);
    transferAgrees(a, 44, c, 1000);
  });
});

/** A MemoryBind that counts the device's calls of idle() (UdpBind opens connected sockets there). */
class CountingBind extends MemoryBind {
  idles = 0;
  override idle(): void {
    this.idles++;
  }
}

describe("idle work", () => {
  test("peers' handshake work is prepared while idle; deferred work waits until handshakes settle", () => {
    const lab = new Lab(11);
    const [ka, kb] = [keyFrom(111), keyFrom(222)];
    const a = lab.host("a", 1, wg(1, ka, () => lab.now));
    const bind = new CountingBind({ network: lab.network, address: new Uint8Array([192, 0, 2, 2]) });
    const b = lab.host("b", 2, wg(2, kb, () => lab.now), bind);
    let settled = 0;
    b.device.housekeeping.onSettled = () => settled++;
    connect(lab, a, 1, b, kb, true);
    connect(lab, b, 1, a, ka, false);
    const bPeer = (b.protocol as WireGuardProtocol).peers.get(1)!;
    expect(bPeer.staticStatic).toBeUndefined();
    lab.run(20, 10, true); // b prepares while nothing happens (and may compact its heap)
    expect(bPeer.staticStatic).toBeInstanceOf(Uint8Array);
    expect(bind.idles).toBe(0);
    const settledBefore = settled;

    // A handshake and its first packet: b learns a's endpoint, and the rounds that follow within
    // 50 ms of the handshake leave the Bind's deferred work alone.
    a.tun.inject(packet(a.ip, b.ip, "hello"));
    lab.run(30, 10, true);
    expect(textsOf(b.tun.take())).toEqual(["hello"]);
    expect(b.device.peerEndpoint(1)).toEqual(a.endpoint);
    expect(bind.idles).toBe(0);
    expect(settled).toBe(settledBefore);
    lab.run(60, 10, true);
    expect(bind.idles).toBe(1);
    expect(settled).toBeGreaterThan(settledBefore);
    // Nothing new: no more settle steps, however long it idles.
    lab.run(2000, 10, true);
    expect(bind.idles).toBe(1);
    // Data alone does not put it off again.
    a.tun.inject(packet(a.ip, b.ip, "more"));
    lab.run(100, 10, true);
    expect(textsOf(b.tun.take())).toEqual(["more"]);
    expect(bind.idles).toBe(1);
  });
});

describe("two devices in memory, wontun mode", () => {
  test("packets both ways under 30% loss; transfer counters agree without loss", () => {
    const lab = new Lab(3);
    const a = lab.host("client-A", 1, new WontunProtocol("client-A", [], seededRandom(1), () => lab.now));
    const b = lab.host("server", 2, new WontunProtocol("server", [], seededRandom(2), () => lab.now));
    connect(lab, a, 900, b, null, true);
    connect(lab, b, 5, a, null, false);
    lab.network.loss = 0.3;
    lab.run(30_000);
    expect(a.protocol.canSend(900)).toBe(true);
    for (let i = 0; i < 100; i++) {
      a.tun.inject(packet(a.ip, b.ip, `a${i}`));
      b.tun.inject(packet(b.ip, a.ip, `b${i}`));
      lab.run(20);
    }
    lab.run(1000);
    const atB = textsOf(b.tun.take());
    const atA = textsOf(a.tun.take());
    expect(atB.length).toBeGreaterThan(50);
    expect(atA.length).toBeGreaterThan(50);
    expect(atB.every((t) => /^a\d+$/.test(t))).toBe(true);

    // Fresh counters on a loss-free pair of new peers would need new hosts; compare deltas.
    lab.network.loss = 0;
    lab.run(20_000);
    const before = [a.device.peerTransfer(900), b.device.peerTransfer(5)];
    for (let i = 0; i < 30; i++) {
      a.tun.inject(packet(a.ip, b.ip, `x${i}`));
      b.tun.inject(packet(b.ip, a.ip, `y${i}`));
      lab.run(10);
    }
    lab.run(100);
    expect(textsOf(b.tun.take())).toEqual(Array.from({ length: 30 }, (_, i) => `x${i}`));
    expect(textsOf(a.tun.take())).toEqual(Array.from({ length: 30 }, (_, i) => `y${i}`));
    const after = [a.device.peerTransfer(900), b.device.peerTransfer(5)];
    expect(after[0].txBytes - before[0].txBytes).toBe(after[1].rxBytes - before[1].rxBytes);
    expect(after[1].txBytes - before[1].txBytes).toBe(after[0].rxBytes - before[0].rxBytes);
  });
});

describe("hostile sources", () => {
  test("a handshake from UDP port 0 is answered nowhere and never becomes the peer's endpoint", () => {
    const lab = new Lab(4);
    const a = lab.host("client-A", 1, new WontunProtocol("client-A", [], seededRandom(1), () => lab.now));
    const b = lab.host("server", 2, new WontunProtocol("server", [], seededRandom(2), () => lab.now));
    connect(lab, a, 900, b, null, true);
    connect(lab, b, 5, a, null, false);
    lab.run(2000);
    const learnt = b.device.peerEndpoint(5);
    expect(learnt).not.toBeNull();
    // A spoofed HandshakeInit naming client-A, from a.address:0.
    const init = new Uint8Array(105);
    writeHandshakeInit(init, 0, 77, encodeName("client-A"));
    lab.network.inject({ address: a.endpoint.address, port: 0 }, b.endpoint, init);
    lab.run(100);
    expect(b.device.peerEndpoint(5)).toEqual(learnt);
  });
});
