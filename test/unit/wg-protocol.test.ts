// The WireGuard protocol between simulated hosts: handshakes, data, key rotation, timers,
// replay, wrong keys, cookies under load and loss. No sockets: see test/helpers/wg-sim.ts.
import { describe, expect, test } from "bun:test";
import { Outcome } from "../../src/protocol/tunnel.ts";
import { selectAeadBackend } from "../../src/crypto/aead.ts";
import { x25519 } from "../../src/crypto/primitives.ts";
import { WireGuardProtocol } from "../../src/protocol/wireguard/protocol.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import { REJECT_AFTER_TIME, REKEY_AFTER_TIME, UNDER_LOAD_HANDSHAKES_PER_SECOND } from "../../src/protocol/wireguard/constants.ts";
import { TYPE_COOKIE_REPLY, TYPE_INITIATION, TYPE_RESPONSE, TYPE_TRANSPORT } from "../../src/protocol/wireguard/messages.ts";
import { WgSimNet, keyFrom, wgPair } from "../helpers/wg-sim.ts";

describe("WireGuard protocol: sessions", () => {
  test("first packet triggers a handshake; held packet then flows; replies flow back", () => {
    const { net, a, b } = wgPair();
    expect(a.send(0, "hello")).toBe(Outcome.Hold);
    net.run(100);
    expect(b.delivered).toEqual(["hello"]);
    expect(b.send(0, "world")).toBe(Outcome.Send);
    net.run(50);
    expect(a.delivered).toEqual(["world"]);
  });

  test("message sizes on the wire: 148, 92, 32 (keepalive), 16 + padded + 16", () => {
    const { net, a } = wgPair();
    const seen: [number, number][] = [];
    net.tap = (_f, _t, bytes) => seen.push([bytes[0], bytes.length]);
    a.send(0, "x".repeat(3)); // 23-byte IPv4 packet -> padded to 32
    net.run(100);
    expect(seen[0]).toEqual([TYPE_INITIATION, 148]);
    expect(seen[1]).toEqual([TYPE_RESPONSE, 92]);
    expect(seen).toContainEqual([TYPE_TRANSPORT, 32]); // initiator's key confirmation
    expect(seen).toContainEqual([TYPE_TRANSPORT, 16 + 32 + 16]);
  });

  test("handshake messages are counted (the device compacts its heap by them), data is not", () => {
    const { net, a, b } = wgPair();
    a.send(0, "hello");
    net.run(100);
    // a: initiation sent, response received; b: initiation received.
    expect(a.protocol.handshakeMessages).toBe(2);
    expect(b.protocol.handshakeMessages).toBe(1);
    for (let i = 0; i < 20; i++) a.send(0, `data ${i}`);
    net.run(100);
    expect(b.delivered.length).toBe(21);
    expect(a.protocol.handshakeMessages).toBe(2);
    expect(b.protocol.handshakeMessages).toBe(1);
  });

  test("preshared key on both sides works; a mismatch never completes", () => {
    const psk = new Uint8Array(32).fill(7);
    const ok = wgPair({ psk });
    ok.a.send(0, "with psk");
    ok.net.run(100);
    expect(ok.b.delivered).toEqual(["with psk"]);

    const net = new WgSimNet();
    const ka = keyFrom(1), kb = keyFrom(2);
    const a = net.add("a", ka, [{ host: "b", endpoint: true, psk }], [publicKeyOf(kb)]);
    const b = net.add("b", kb, [{ host: "a", endpoint: false }], [publicKeyOf(ka)]);
    a.send(0, "nope");
    net.run(20_000);
    expect(b.delivered).toEqual([]);
    expect(a.protocol.canSend(0)).toBe(false);
  });

  test("a peer with the wrong key gets no response at all", () => {
    const net = new WgSimNet();
    const ka = keyFrom(11), kb = keyFrom(12), stranger = keyFrom(13);
    // b knows a; the stranger claims to be someone b has never heard of.
    net.add("b", kb, [{ host: "a", endpoint: false }], [publicKeyOf(ka)]);
    const s = net.add("s", stranger, [{ host: "b", endpoint: true }], [publicKeyOf(kb)]);
    const fromB: number[] = [];
    net.tap = (from, _to, bytes) => { if (from === "b") fromB.push(bytes[0]); };
    s.send(0, "let me in");
    net.run(30_000);
    expect(fromB).toEqual([]);
    expect(net.hosts.get("b")!.protocol.counters.unknownPeer).toBeGreaterThan(0);
  });

  test("a replayed transport datagram is dropped", () => {
    const { net, a, b } = wgPair();
    let captured: Uint8Array | null = null;
    net.tap = (from, _to, bytes) => { if (from === "a" && bytes[0] === TYPE_TRANSPORT && bytes.length > 32) captured ??= bytes.slice(); };
    a.send(0, "once");
    net.run(100);
    expect(b.delivered).toEqual(["once"]);
    net.inject("a", "b", captured!);
    net.run(20);
    expect(b.delivered).toEqual(["once"]);
    expect(b.protocol.counters.replayedData).toBe(1);
  });

  test("a replayed initiation is ignored (TAI64N)", () => {
    const { net, a, b } = wgPair();
    let init: Uint8Array | null = null;
    net.tap = (from, _to, bytes) => { if (from === "a" && bytes[0] === TYPE_INITIATION) init ??= bytes.slice(); };
    a.send(0, "x");
    net.run(100);
    net.run(1000);
    const responses = b.protocol.counters.replayedInitiation;
    net.inject("a", "b", init!);
    net.run(20);
    expect(b.protocol.counters.replayedInitiation).toBe(responses + 1);
  });

  test("tampered or truncated datagrams are dropped and counted", () => {
    const { net, a, b } = wgPair();
    a.send(0, "x");
    net.run(100);
    let data: Uint8Array | null = null;
    net.tap = (from, _to, bytes) => { if (from === "a" && bytes[0] === TYPE_TRANSPORT) data ??= bytes.slice(); };
    a.send(0, "y");
    net.run(20);
    const bad = data!.slice();
    bad[bad.length - 1] ^= 1;
    expect(b.receive("a", bad)).toBe(Outcome.Drop);
    expect(b.protocol.counters.decryptFailed).toBe(1);
    for (const n of [0, 1, 3, 31, 147, 149]) {
      const junk = new Uint8Array(n);
      if (n > 0) junk[0] = n === 147 || n === 149 ? 1 : 4;
      expect(b.receive("a", junk)).toBe(Outcome.Drop);
    }
    const init = new Uint8Array(148);
    init[0] = 1;
    expect(b.receive("a", init)).toBe(Outcome.Drop);
    expect(b.protocol.counters.badMac1).toBe(1);
  });

  test("50% loss: the handshake completes by retrying every 5 s", () => {
    for (const seed of [3, 4, 5]) {
      const { net, a, b } = wgPair({ seed });
      net.loss = 0.5;
      a.send(0, "through the storm");
      net.run(60_000, 50);
      expect(a.protocol.canSend(0)).toBe(true);
      expect(b.protocol.canSend(0) || b.protocol.peers.get(0)!.next !== null).toBe(true);
    }
  });

  test("rekey after 120 s of use; the old session keeps working until the new one is up", () => {
    const { net, a, b } = wgPair();
    a.send(0, "start");
    net.run(100);
    const first = a.protocol.peers.get(0)!.current;
    for (let t = 0; t < 130; t++) {
      a.send(0, `p${t}`);
      b.send(0, `q${t}`);
      net.run(1000, 100);
    }
    expect(a.protocol.peers.get(0)!.current).not.toBe(first);
    expect(b.delivered.length).toBe(131);
    expect(a.delivered.length).toBe(130);
    expect(REKEY_AFTER_TIME).toBe(120_000);
  });

  test("keys are rejected after 180 s without a new handshake and wiped after 540 s", () => {
    const { net, a, b } = wgPair();
    a.send(0, "x");
    net.run(100);
    const kp = b.protocol.peers.get(0)!.current!;
    net.run(REJECT_AFTER_TIME + 1000, 1000);
    expect(b.protocol.canSend(0)).toBe(true); // still installed ...
    expect(b.send(0, "late")).toBe(Outcome.Hold); // ... but too old to use
    net.hosts.delete("a");
    net.run(600_000, 5000);
    expect(b.protocol.peers.get(0)!.current).toBeNull();
    void kp;
  });

  test("a one-way flow gets keepalives back; a silent peer triggers a new handshake after 15 s", () => {
    const { net, a, b } = wgPair();
    a.send(0, "x");
    net.run(100);
    const kinds: string[] = [];
    net.tap = (from, _to, bytes) => kinds.push(`${from}:${bytes[0]}:${bytes.length}`);
    a.send(0, "one way");
    net.run(11_000);
    expect(kinds).toContain("b:4:32"); // b's keepalive after 10 s
    net.hosts.delete("b");
    kinds.length = 0;
    a.send(0, "anyone?");
    net.run(16_000);
    expect(kinds.some((k) => k.startsWith("a:1:148"))).toBe(true);
  });

  test("persistent keepalive brings the session up at start and keeps it warm", () => {
    const { net, a, b } = wgPair({ keepalive: 25 });
    net.run(200);
    expect(a.protocol.canSend(0)).toBe(true);
    let keepalives = 0;
    net.tap = (from, _to, bytes) => { if (from === "a" && bytes.length === 32) keepalives++; };
    net.run(100_000, 100);
    expect(keepalives).toBeGreaterThanOrEqual(3);
    void b;
  });

  test("both sides initiate at once: both end with a working session", () => {
    const { net, a, b } = wgPair({ bothEndpoints: true });
    net.latency = 30;
    a.send(0, "from a");
    b.send(0, "from b");
    net.run(15_000);
    expect(b.delivered).toContain("from a");
    expect(a.delivered).toContain("from b");
  });

  test("restart of either side: traffic resumes", () => {
    const { net, a, b } = wgPair();
    a.send(0, "1");
    net.run(100);
    b.boot();
    a.send(0, "2"); // b has no keys: dropped; a re-handshakes after 15 s
    net.run(20_000);
    a.send(0, "3");
    net.run(200);
    expect(b.delivered).toContain("3");
    a.boot();
    a.send(0, "4");
    net.run(200);
    expect(b.delivered).toContain("4");
  });
});

describe("WireGuard protocol: work prepared while idle", () => {
  test("prepare() computes every peer's static-static DH in batches, again after a key change", () => {
    const own = keyFrom(1);
    const peerKeys = Array.from({ length: 40 }, (_, i) => publicKeyOf(keyFrom(100 + i)));
    const protocol = new WireGuardProtocol({
      privateKey: own,
      peers: peerKeys.map((publicKey, id) => ({ id, publicKey, presharedKey: null, persistentKeepaliveSeconds: 0 })),
      aead: selectAeadBackend(),
      mtu: 1420,
    });
    const computed = () => [...protocol.peers.values()].filter((p) => p.staticStatic !== undefined).length;
    expect(protocol.prepare(16)).toBe(true); // settles the handshake's crypto first
    expect(computed()).toBe(0);
    expect([protocol.prepare(16), protocol.prepare(16), protocol.prepare(16)]).toEqual([true, true, false]);
    expect(computed()).toBe(40);
    expect(protocol.prepare(16)).toBe(false);
    const hex = (b: Uint8Array | null | undefined) => Buffer.from(b!).toString("hex");
    expect(hex(protocol.peers.get(7)!.staticStatic)).toBe(hex(x25519(own, peerKeys[7])));

    const next = keyFrom(2);
    protocol.setPrivateKey(next);
    expect(computed()).toBe(0);
    protocol.addPeer({ id: 40, publicKey: publicKeyOf(keyFrom(99)), presharedKey: null, persistentKeepaliveSeconds: 0 });
    protocol.removePeer(3);
    while (protocol.prepare(7));
    expect(computed()).toBe(40);
    expect(hex(protocol.peers.get(7)!.staticStatic)).toBe(hex(x25519(next, peerKeys[7])));

    protocol.setPrivateKey(null);
    expect(protocol.prepare(16)).toBe(false); // nothing to do without a key
    expect(computed()).toBe(0);
  });

  test("handshakes work the same with the DH prepared ahead", () => {
    const { net, a, b } = wgPair();
    while (a.protocol.prepare(1) || b.protocol.prepare(1));
    a.send(0, "prepared");
    net.run(100);
    expect(b.delivered).toEqual(["prepared"]);
  });
});

describe("WireGuard protocol: under load", () => {
  test("a flood of initiations gets cookie replies; a cookie-bearing retry completes", () => {
    const net = new WgSimNet();
    const kb = keyFrom(31), ka = keyFrom(32);
    const b = net.add("b", kb, [{ host: "a", endpoint: false }], [publicKeyOf(ka)]);
    const a = net.add("a", ka, [{ host: "b", endpoint: true }], [publicKeyOf(kb)]);
    let init: Uint8Array | null = null;
    net.tap = (from, _to, bytes) => { if (from === "a" && bytes[0] === TYPE_INITIATION) init ??= bytes.slice(); };
    a.send(0, "x");
    net.run(20);
    expect(init).not.toBeNull();
    // Replay that (valid mac1) initiation many times within one second.
    const replies: number[] = [];
    net.tap = (from, _to, bytes) => { if (from === "b") replies.push(bytes[0]); };
    for (let i = 0; i < UNDER_LOAD_HANDSHAKES_PER_SECOND * 2; i++) b.receive("a", init!);
    expect(b.protocol.counters.cookiesSent).toBeGreaterThan(0);
    expect(replies).toContain(TYPE_COOKIE_REPLY);
    // a takes the cookie (its retry then carries mac2) and the handshake completes.
    net.run(6000, 10);
    expect(a.protocol.canSend(0)).toBe(true);
  });
});
