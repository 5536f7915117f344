// Protocol decoders. wontun: random and mutated handshake/data datagrams into a host with peers,
// fresh or with a session: never an exception, Deliver/Reply/Accept only for a known peer and
// inside the buffer. WireGuard: mutated initiations, responses, cookie replies and transport
// messages of a real handshake between two WireGuardProtocol instances (seeded, so every check
// rebuilds the same state), and random datagrams: never an exception, never Deliver for a
// datagram that is not the authentic one, and a forged transport message leaves the session
// working (the authentic one still delivers).
import { Outcome, type ControlSink, type TunnelProtocol } from "../../../src/protocol/tunnel.ts";
import { WontunProtocol } from "../../../src/protocol/wontun/protocol.ts";
import {
  DATA_HEADER_SIZE, HANDSHAKE_INIT_SIZE, HANDSHAKE_RESPONSE_SIZE, decodeInitName, encodeName, messageType,
  writeDataHeader, writeHandshakeInit, writeHandshakeResponse,
} from "../../../src/protocol/wontun/messages.ts";
import { WireGuardProtocol } from "../../../src/protocol/wireguard/protocol.ts";
import { selectAeadBackend } from "../../../src/crypto/aead.ts";
import { publicKeyOf } from "../../../src/crypto/keys.ts";
import { encodeSockaddr } from "../../../src/sys/sockaddr.ts";
import { hex, invariant, shrinkArray, shrinkBytes, type Target } from "../engine.ts";
import { concat, mutateBytes } from "../mutate.ts";
import { Rng } from "../rng.ts";

const AF_INET = 2;
const SOURCE = new Uint8Array(28);
encodeSockaddr({ address: new Uint8Array([192, 0, 2, 7]), port: 51820 }, AF_INET, SOURCE);

class Sink implements ControlSink {
  sent: { peer: number; bytes: Uint8Array }[] = [];
  sendControl(peer: number, buffer: Uint8Array, offset: number, length: number): void {
    invariant(offset >= 0 && length > 0 && offset + length <= buffer.length, "control datagrams lie inside their buffer", () => `${offset}+${length} of ${buffer.length}`);
    this.sent.push({ peer, bytes: buffer.slice(offset, offset + length) });
  }
}

const OUTCOMES = new Set([Outcome.Drop, Outcome.Accept, Outcome.Deliver, Outcome.Reply, Outcome.Send, Outcome.Hold, Outcome.ReplyToSource]);

/** Feeds `datagram` (copied into a buffer with room around it) and checks the result's shape. */
function feed(protocol: TunnelProtocol, datagram: Uint8Array, now: number, sink: Sink, peers: Set<number>): Outcome {
  const buf = new Uint8Array(datagram.length + 64);
  buf.set(datagram, 32);
  const outcome = protocol.receive(buf, 32, datagram.length, SOURCE, 0, now, sink);
  invariant(OUTCOMES.has(outcome), "receive answers an Outcome", () => String(outcome));
  const r = protocol.result;
  if (outcome === Outcome.Deliver || outcome === Outcome.Reply || outcome === Outcome.Accept) {
    invariant(peers.has(r.peer), "an accepted datagram comes from a known peer", () => `peer ${r.peer}`);
  }
  if (outcome === Outcome.Deliver || outcome === Outcome.Reply || outcome === Outcome.ReplyToSource) {
    invariant(r.offset >= 0 && r.length >= 0 && r.offset + r.length <= r.buffer.length, "the result lies inside its buffer", () => `${r.offset}+${r.length} of ${r.buffer.length}`);
  }
  for (const s of sink.sent) invariant(peers.has(s.peer), "control datagrams go to known peers", () => `peer ${s.peer}`);
  return outcome;
}

// ---- wontun ---------------------------------------------------------------------------------

const WONTUN_PEERS = [{ id: 1, name: "client-A", persistentKeepaliveSeconds: 0 }, { id: 2, name: "client-B", persistentKeepaliveSeconds: 25 }];

function wontunSamples(): Uint8Array[] {
  const init = new Uint8Array(HANDSHAKE_INIT_SIZE);
  writeHandshakeInit(init, 0, 7, encodeName("client-A"));
  const initB = new Uint8Array(HANDSHAKE_INIT_SIZE);
  writeHandshakeInit(initB, 0, 9, encodeName("client-B"));
  const response = new Uint8Array(HANDSHAKE_RESPONSE_SIZE);
  writeHandshakeResponse(response, 0, 7, 1);
  const data = new Uint8Array(DATA_HEADER_SIZE + 20);
  writeDataHeader(data, 0, 1);
  data.set([0x45, 0, 0, 20], DATA_HEADER_SIZE);
  const keepalive = new Uint8Array(DATA_HEADER_SIZE);
  writeDataHeader(keepalive, 0, 2);
  return [init, initB, response, data, keepalive];
}
const WONTUN_SAMPLES = wontunSamples();

export interface DatagramsInput {
  /** 0: fresh; 1: after client-A's handshake (and, for WireGuard, a full exchange). */
  state: number;
  datagrams: Uint8Array[];
}

function randomDatagram(rng: Rng, samples: Uint8Array[], types: number[]): Uint8Array {
  if (rng.chance(0.2)) {
    const b = rng.bytes(rng.size(200));
    if (b.length > 0 && rng.chance(0.7)) b[0] = rng.pick(types);
    return b;
  }
  return mutateBytes(rng, rng.pick(samples));
}

function showDatagrams(input: DatagramsInput): string {
  return `state=${input.state} datagrams=[${input.datagrams.map(hex).join(", ")}]`;
}

function* shrinkDatagrams(input: DatagramsInput): Iterable<DatagramsInput> {
  for (const datagrams of shrinkArray(input.datagrams, shrinkBytes)) yield { ...input, datagrams };
  if (input.state !== 0) yield { ...input, state: 0 };
}

export const wontunTarget: Target<DatagramsInput> = {
  name: "wontun",
  about: "wontun datagrams (random, mutated) -> no exception; accepted only from known peers, results in bounds",
  generate(rng) {
    const n = 1 + rng.int(5);
    const datagrams: Uint8Array[] = [];
    for (let i = 0; i < n; i++) datagrams.push(rng.chance(0.15) ? rng.pick(WONTUN_SAMPLES) : randomDatagram(rng, WONTUN_SAMPLES, [1, 2, 3]));
    return { state: rng.int(2), datagrams };
  },
  check({ state, datagrams }) {
    const rng = new Rng(5);
    const server = new WontunProtocol("server", WONTUN_PEERS, () => rng.float(), () => 1_700_000_000_000);
    const peers = new Set([1, 2]);
    const sink = new Sink();
    let now = 1000;
    if (state === 1) feed(server, WONTUN_SAMPLES[0], now, sink, peers);
    for (const d of datagrams) {
      now += 700;
      // Decoders on their own first.
      const type = messageType(d, 0, d.length);
      if (type === 1) decodeInitName(d, 0);
      const outcome = feed(server, d, now, sink, peers);
      if (outcome === Outcome.Deliver) invariant(type === 3 && d.length > DATA_HEADER_SIZE, "only data messages deliver");
      server.tick(now, sink);
      invariant(!Number.isNaN(server.nextDeadline()), "the next deadline is a number");
    }
  },
  shrink: shrinkDatagrams,
  show: showDatagrams,
};

// ---- WireGuard --------------------------------------------------------------------------------

const aead = selectAeadBackend();

function fixedKey(seed: number): Uint8Array {
  const k = new Rng(seed).bytes(32);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}
const KEY_A = fixedKey(101);
const KEY_B = fixedKey(202);
const PUB_A = publicKeyOf(KEY_A);
const PUB_B = publicKeyOf(KEY_B);
const WALL = 1_700_000_000_000;

function wgHost(own: Uint8Array, peer: Uint8Array, seed: number): WireGuardProtocol {
  const rng = new Rng(seed);
  return new WireGuardProtocol({
    privateKey: own,
    peers: [{ id: 1, publicKey: peer, presharedKey: null, persistentKeepaliveSeconds: 0 }],
    aead,
    mtu: 1420,
    random: (n) => rng.bytes(n),
    wallClock: () => WALL,
  });
}

const PACKET = (() => {
  const p = new Uint8Array(40);
  p.set([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  return p;
})();

/** Encapsulates PACKET for peer 1: the datagram if it was sent, else null (held: the initiation went to the sink). */
function send(host: WireGuardProtocol, now: number, sink: Sink): Uint8Array | null {
  const buf = new Uint8Array(256);
  buf.set(PACKET, 64);
  const outcome = host.encapsulate(1, buf, 64, PACKET.length, now, sink);
  if (outcome !== Outcome.Send) return null;
  const r = host.result;
  return r.buffer.slice(r.offset, r.offset + r.length);
}

function resultBytes(host: WireGuardProtocol): Uint8Array {
  const r = host.result;
  return r.buffer.slice(r.offset, r.offset + r.length);
}

const PEER_1 = new Set([1]);

/**
 * The same handshake every time (seeded randomness, fixed clocks): a and b, each at a stage.
 * stage 1: a has sent its initiation; 2: b has answered it; 3: a has the session and sent data;
 * 4: b has taken that data (the session is confirmed) and sent data back.
 */
function handshake(stage: number) {
  const a = wgHost(KEY_A, PUB_B, 1);
  const b = wgHost(KEY_B, PUB_A, 2);
  const sink = new Sink();
  const now = 10_000;
  a.endpointKnown(1, now, sink);
  const held = send(a, now, sink);
  invariant(held === null && sink.sent.length === 1, "setup: the first packet starts a handshake");
  const initiation = sink.sent[0].bytes;
  const empty: Uint8Array = new Uint8Array(0);
  const out = { a, b, initiation, response: empty, toB: empty, toA: empty };
  if (stage < 2) return out;
  invariant(feed(b, initiation, now + 1, new Sink(), PEER_1) === Outcome.Reply, "setup: b answers the initiation");
  out.response = resultBytes(b);
  if (stage < 3) return out;
  feed(a, out.response, now + 2, new Sink(), PEER_1);
  const data = send(a, now + 3, new Sink());
  invariant(data !== null, "setup: a sends once the handshake is done");
  out.toB = data;
  if (stage < 4) return out;
  invariant(feed(b, out.toB, now + 4, new Sink(), PEER_1) === Outcome.Deliver, "setup: b delivers a's data");
  const back = send(b, now + 5, new Sink());
  invariant(back !== null, "setup: b sends back");
  out.toA = back;
  return out;
}

const BASE = handshake(4);

/** A cookie reply for a's initiation: b under load (more than 100 handshakes in a second) answers with one. */
const COOKIE_REPLY = (() => {
  const b = wgHost(KEY_B, PUB_A, 2);
  for (let i = 0; i < 400; i++) {
    const outcome = feed(b, BASE.initiation, 20_000, new Sink(), PEER_1);
    if (outcome === Outcome.ReplyToSource) return resultBytes(b);
  }
  throw new Error("setup: no cookie reply under load");
})();

const WG_KINDS = ["initiation", "response", "transport", "transport-back", "cookie", "random"] as const;
type WgKind = (typeof WG_KINDS)[number];

export interface WireGuardInput {
  kind: WgKind;
  datagram: Uint8Array;
}

function baseOf(kind: WgKind): Uint8Array {
  switch (kind) {
    case "initiation": return BASE.initiation;
    case "response": return BASE.response;
    case "transport": return BASE.toB;
    case "transport-back": return BASE.toA;
    case "cookie": return COOKIE_REPLY;
    default: return new Uint8Array(0);
  }
}

const same = (x: Uint8Array, y: Uint8Array) => x.length === y.length && x.every((v, i) => v === y[i]);

export const wireguardTarget: Target<WireGuardInput> = {
  name: "wireguard",
  about: "mutated initiations/responses/cookie replies/transport and random datagrams -> no exception, never Deliver unless authentic",
  generate(rng) {
    const kind = rng.pick(WG_KINDS);
    if (kind === "random") {
      const b = rng.bytes(rng.chance(0.5) ? rng.pick([148, 92, 64, 32, 48, 1452]) : rng.size(300));
      if (b.length > 0) b[0] = rng.range(1, 4);
      if (b.length > 3 && rng.chance(0.8)) b[1] = b[2] = b[3] = 0;
      return { kind, datagram: b };
    }
    const base = baseOf(kind);
    return { kind, datagram: rng.chance(0.1) ? concat(base, rng.bytes(1 + rng.int(16))) : mutateBytes(rng, base) };
  },
  check({ kind, datagram }) {
    const base = baseOf(kind);
    const authentic = same(datagram, base);
    const now = 10_100;
    let receiver: WireGuardProtocol;
    if (kind === "initiation") receiver = handshake(1).b;
    else if (kind === "response" || kind === "cookie") receiver = handshake(1).a;
    else if (kind === "transport") receiver = handshake(2).b;
    else if (kind === "transport-back") receiver = handshake(3).a;
    else receiver = handshake(4).b;
    // Transport receivers need the session up: b needs the response sent (stage 2) and a needs it taken (stage 3).
    if (kind === "transport-back") feed(receiver, BASE.response, 10_002, new Sink(), PEER_1);
    const outcome = feed(receiver, datagram, now, new Sink(), PEER_1);
    if (!authentic) {
      invariant(outcome !== Outcome.Deliver, "an unauthenticated datagram is never delivered", () => `${kind}: outcome Deliver`);
    }
    if (kind === "transport" || kind === "transport-back") {
      if (!authentic) {
        invariant(feed(receiver, base, now + 1, new Sink(), PEER_1) === Outcome.Deliver, "a forged transport message leaves the session working");
      }
    }
  },
  *shrink(input) {
    for (const datagram of shrinkBytes(input.datagram)) yield { ...input, datagram };
  },
  show: (input) => `kind=${input.kind} datagram=${hex(input.datagram)}`,
};
