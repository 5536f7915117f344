// The main thread's WireGuardProtocol and a data-path thread's ThreadProtocol sealing and opening
// with the same shared sessions (src/threads), against a plain WireGuardProtocol peer, without
// sockets. What must hold: no counter is ever sent twice under one key, whichever thread sends;
// the peer accepts everything either thread sends; a datagram is accepted once even when handed
// to both threads; a new session the peer starts is confirmed by the thread that first opens
// with it, after which both threads send with the new keys.
import { describe, expect, test } from "bun:test";
import { selectAeadBackend } from "../../src/crypto/aead.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import { Outcome, type ControlSink } from "../../src/protocol/tunnel.ts";
import { TRANSPORT_COUNTER, TRANSPORT_RECEIVER, readCounter, readU32 } from "../../src/protocol/wireguard/messages.ts";
import { WireGuardProtocol } from "../../src/protocol/wireguard/protocol.ts";
import { SharedSessions } from "../../src/threads/shared-sessions.ts";
import { SharedSessionStore } from "../../src/threads/shared-store.ts";
import { ThreadProtocol, type ThreadEvents } from "../../src/threads/thread-protocol.ts";
import { keyFrom, seededBytes } from "../helpers/wg-sim.ts";
import { ipv4Packet } from "../helpers/wontun-sim.ts";

const aead = selectAeadBackend();
const HEADROOM = 64;
const SOURCE = new Uint8Array(28); // sockaddr: not looked at by these paths
const PEER = 0;

/** Datagrams a protocol sent as control messages (handshakes, keepalives). */
class Outbox implements ControlSink {
  readonly sent: Uint8Array[] = [];
  sendControl(_peer: number, buffer: Uint8Array, offset: number, length: number): void {
    this.sent.push(buffer.slice(offset, offset + length));
  }
}

function setup() {
  let now = 1000;
  const ka = keyFrom(31);
  const kb = keyFrom(32);
  const sessions = new SharedSessions(undefined, 16);
  const a = new WireGuardProtocol({ privateKey: ka, aead, mtu: 1420, random: seededBytes(1), wallClock: () => 1_700_000_000_000 + now });
  a.shareSessions(new SharedSessionStore(sessions, 2));
  a.addPeer({ id: PEER, publicKey: publicKeyOf(kb), presharedKey: null, persistentKeepaliveSeconds: 0 });
  const b = new WireGuardProtocol({ privateKey: kb, aead, mtu: 1420, random: seededBytes(2), wallClock: () => 1_700_000_000_000 + now });
  b.addPeer({ id: PEER, publicKey: publicKeyOf(ka), presharedKey: null, persistentKeepaliveSeconds: 0 });
  const wakes: string[] = [];
  const events: ThreadEvents = { held: () => wakes.push("held"), handshake: () => wakes.push("handshake"), wake: () => wakes.push("wake"), endpoint: () => {} };
  const t = new ThreadProtocol(sessions, aead, 1, 2, 1420, events);
  t.addPeer(PEER, sessions.peerSlot(PEER));
  const outA = new Outbox();
  const outB = new Outbox();
  a.endpointKnown(PEER, now, outA);
  b.endpointKnown(PEER, now, outB);
  return { sessions, a, b, t, outA, outB, wakes, tick: (ms: number) => (now += ms), now: () => now };
}

/** Encapsulates an IPv4 packet carrying `text` with `p`; the datagram, or null if not Send. */
function seal(p: WireGuardProtocol | ThreadProtocol, text: string, now: number, sink: ControlSink): Uint8Array | null {
  const packet = ipv4Packet(new TextEncoder().encode(text));
  const buf = new Uint8Array(HEADROOM + packet.length + 64);
  buf.set(packet, HEADROOM);
  if (p.encapsulate(PEER, buf, HEADROOM, packet.length, now, sink) !== Outcome.Send) return null;
  return p.result.buffer.slice(p.result.offset, p.result.offset + p.result.length);
}

function open(p: WireGuardProtocol | ThreadProtocol, datagram: Uint8Array, now: number, sink: ControlSink): Outcome {
  return p.receive(datagram.slice(), 0, datagram.length, SOURCE, 0, now, sink);
}

/** Hands every control datagram in `from` to `to` until both outboxes are empty. */
function exchange(s: ReturnType<typeof setup>): void {
  for (let round = 0; round < 10; round++) {
    const fromA = s.outA.sent.splice(0);
    const fromB = s.outB.sent.splice(0);
    if (fromA.length + fromB.length === 0) return;
    for (const d of fromA) if (open(s.b, d, s.now(), s.outB) === Outcome.Reply) s.outB.sent.push(s.b.result.buffer.slice(s.b.result.offset, s.b.result.offset + s.b.result.length));
    for (const d of fromB) if (open(s.a, d, s.now(), s.outA) === Outcome.Reply) s.outA.sent.push(s.a.result.buffer.slice(s.a.result.offset, s.a.result.offset + s.a.result.length));
  }
}

describe("data-path threads sharing sessions", () => {
  test("main thread and a data-path thread send alternately: every counter unique, every packet accepted by the peer", () => {
    const s = setup();
    expect(seal(s.a, "first", s.now(), s.outA)).toBeNull(); // no session yet: held, handshake sent
    exchange(s);
    expect(s.a.canSend(PEER)).toBe(true);
    const counters = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      // Bursts from each thread of different lengths, so blocks are taken out of step.
      const sender = i % 7 < 3 ? s.t : s.a;
      const d = seal(sender, `packet ${i}`, s.now(), s.outA)!;
      expect(d).not.toBeNull();
      const counter = readCounter(d, TRANSPORT_COUNTER);
      expect(counters.has(counter)).toBe(false);
      counters.add(counter);
      expect(open(s.b, d, s.now(), s.outB)).toBe(Outcome.Deliver);
    }
  });

  test("datagrams from the peer are opened by either thread; one handed to both is accepted once", () => {
    const s = setup();
    seal(s.a, "first", s.now(), s.outA);
    exchange(s);
    for (let i = 0; i < 500; i++) {
      const d = seal(s.b, `reply ${i}`, s.now(), s.outB)!;
      const [first, second] = i % 2 === 0 ? [s.a, s.t] : [s.t, s.a];
      expect(open(first, d, s.now(), s.outA)).toBe(Outcome.Deliver);
      expect(open(second, d, s.now(), s.outA)).toBe(Outcome.Drop);
    }
    expect(s.t.counters.replayedData + s.a.counters.replayedData).toBe(500);
  });

  test("a session the peer starts is confirmed by the thread that opens with it; then both threads send with the new keys", () => {
    const s = setup();
    seal(s.a, "first", s.now(), s.outA);
    exchange(s);
    const oldIndex = readU32(seal(s.t, "old", s.now(), s.outA)!, TRANSPORT_RECEIVER);
    s.tick(6000);
    // The peer starts a new handshake; its confirmation (a keepalive under the new keys) reaches
    // the data-path thread, which asks the main thread to confirm.
    s.b.requestHandshake(PEER, s.now(), s.outB);
    const initiation = s.outB.sent.splice(0);
    expect(initiation.length).toBe(1);
    expect(open(s.a, initiation[0], s.now(), s.outA)).toBe(Outcome.Reply);
    const response = s.a.result.buffer.slice(s.a.result.offset, s.a.result.offset + s.a.result.length);
    expect(open(s.b, response, s.now(), s.outB)).toBe(Outcome.Reply);
    const confirmation = s.b.result.buffer.slice(s.b.result.offset, s.b.result.offset + s.b.result.length);
    // Until confirmed, both threads still send with the old keys.
    expect(readU32(seal(s.t, "still old", s.now(), s.outA)!, TRANSPORT_RECEIVER)).toBe(oldIndex);
    expect(open(s.t, confirmation, s.now(), s.outA)).toBe(Outcome.Accept);
    expect(s.wakes).toContain("wake");
    const slot = s.sessions.takeConfirmRequest(s.sessions.peerSlot(PEER));
    const next = s.a.peers.get(PEER)!.next!;
    expect(s.sessions.slotOfIndex(next.localIndex)).toBe(slot);
    s.a.confirmFromThread(PEER, next.localIndex);
    for (const sender of [s.t, s.a]) {
      const d = seal(sender, "new keys", s.now(), s.outA)!;
      expect(readU32(d, TRANSPORT_RECEIVER)).not.toBe(oldIndex);
      expect(open(s.b, d, s.now(), s.outB)).toBe(Outcome.Deliver);
    }
  });

  test("with no session, the thread hands the packet to the main thread (at most 128 per peer) and sends nothing", () => {
    const s = setup();
    for (let i = 0; i < 200; i++) expect(seal(s.t, `early ${i}`, s.now(), s.outA)).toBeNull();
    expect(s.wakes.filter((w) => w === "held").length).toBe(128);
  });
});
