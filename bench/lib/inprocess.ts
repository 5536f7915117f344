// Handshake cost measured in-process on the sans-IO WireGuardProtocol: no sockets, no TUN,
// a fake clock. What one core can do for the responder's part of a handshake when nothing
// else competes, and how fast it turns away initiations with cookie replies when under load.
import { selectAeadBackend } from "../../src/crypto/aead.ts";
import { generatePrivateKey } from "../../src/crypto/keys.ts";
import { Outcome, type ControlSink } from "../../src/protocol/tunnel.ts";
import { WireGuardProtocol } from "../../src/protocol/wireguard/protocol.ts";
import { ResponderKeys, makeInitiation, staticKeyPair, type Initiation } from "./wg-client.ts";

export interface InProcessResult {
  peers: number;
  handshakes: number;
  /** Responses produced per second of wall time (initiation in, response out). */
  handshakesPerSecond: number;
  microsecondsEach: number;
  /** Initiations without mac2 answered with a cookie reply, per second, once under load. */
  cookieRepliesPerSecond: number;
  /** Our initiator side, for comparison: initiations made per second. */
  initiationsMadePerSecond: number;
  aead: string;
}

const sink: ControlSink = { sendControl() {} };

/** A sockaddr_in for 203.0.113.x:50000, x = 1..253 (little-endian family, big-endian port). */
function sockaddr(i: number): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = 2;
  b[2] = 0xc3;
  b[3] = 0x50;
  b.set([203, 0, 113, 1 + (i % 253)], 4);
  return b;
}

export function measureInProcess(peerCount: number, handshakes: number): InProcessResult {
  const aead = selectAeadBackend();
  const identities = Array.from({ length: peerCount }, () => staticKeyPair(generatePrivateKey()));
  const protocol = new WireGuardProtocol({
    privateKey: generatePrivateKey(),
    peers: identities.map((id, i) => ({ id: i, publicKey: id.publicKey, presharedKey: null, persistentKeepaliveSeconds: 0 })),
    aead,
    mtu: 1420,
  });
  const responder = new ResponderKeys(protocol.publicKey!);
  const base = Date.now();
  const stamps = new Int32Array(peerCount);

  const make = (n: number): Initiation[] => {
    const out: Initiation[] = [];
    for (let i = 0; i < n; i++) {
      const p = i % peerCount;
      out.push(makeInitiation(p, identities[p], responder, base + ++stamps[p] * 20));
    }
    return out;
  };
  // Made first: each peer's timestamps must rise in the order the responder sees them.
  const warm = make(Math.min(200, handshakes));
  const t0 = performance.now();
  const inits = make(handshakes);
  const makeMs = performance.now() - t0;
  const sources = Array.from({ length: 256 }, (_, i) => sockaddr(i));

  // Warm-up, then the timed run. The fake clock advances 11 ms per initiation: below the
  // 100/s that would put the responder under load, and 11 s between two of one peer's.
  let now = 1_000_000;
  for (const init of warm) protocol.receive(init.message, 0, init.message.length, sources[0], 0, (now += 11), sink);
  let replies = 0;
  const t1 = performance.now();
  for (let i = 0; i < inits.length; i++) {
    const m = inits[i].message;
    if (protocol.receive(m, 0, m.length, sources[i & 255], 0, (now += 11), sink) === Outcome.Reply) replies++;
  }
  const ms = performance.now() - t1;
  if (replies !== inits.length) throw new Error(`in-process: only ${replies} of ${inits.length} initiations were answered`);

  // Under load: fresh initiations (valid mac1, no mac2) all within one second of fake time. The
  // first 101 are handled normally and put the responder under load (untimed); the rest get
  // cookie replies.
  now += 100_000;
  const flood = make(Math.min(handshakes, 2000) + 101);
  for (let i = 0; i < 101; i++) {
    const m = flood[i].message;
    protocol.receive(m, 0, m.length, sources[i & 255], 0, now, sink);
  }
  let cookies = 0;
  const t2 = performance.now();
  for (let i = 101; i < flood.length; i++) {
    const m = flood[i].message;
    if (protocol.receive(m, 0, m.length, sources[i & 255], 0, now, sink) === Outcome.ReplyToSource) cookies++;
  }
  const floodMs = performance.now() - t2;
  if (cookies !== flood.length - 101) throw new Error(`in-process: ${cookies} cookie replies for ${flood.length - 101} initiations under load`);
  return {
    peers: peerCount,
    handshakes: replies,
    handshakesPerSecond: (replies / ms) * 1000,
    microsecondsEach: (ms * 1000) / replies,
    cookieRepliesPerSecond: cookies > 0 ? (cookies / floodMs) * 1000 : Number.NaN,
    initiationsMadePerSecond: (handshakes / makeMs) * 1000,
    aead: aead.name,
  };
}
