// A deterministic network of WireGuardProtocol instances: datagrams in flight, a fake clock, a
// seeded RNG for loss. It does what the device does with each Outcome, minus the sockets.
import { Outcome, type ControlSink } from "../../src/protocol/tunnel.ts";
import { WireGuardProtocol } from "../../src/protocol/wireguard/protocol.ts";
import { selectAeadBackend } from "../../src/crypto/aead.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import { seededRandom } from "./wontun-sim.ts";

const aead = selectAeadBackend();

export function seededBytes(seed: number): (n: number) => Uint8Array {
  const r = seededRandom(seed);
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
    return out;
  };
}

export function keyFrom(seed: number): Uint8Array {
  const k = seededBytes(seed)(32);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}

export interface WgSimPeer {
  host: string;
  endpoint: boolean;
  keepalive?: number;
  psk?: Uint8Array;
}

const SOURCE = new Uint8Array(28);

export class WgSimHost implements ControlSink {
  protocol!: WireGuardProtocol;
  delivered: string[] = [];
  held: Uint8Array[][] = [];
  address = 1;

  constructor(
    readonly net: WgSimNet,
    readonly name: string,
    readonly privateKey: Uint8Array,
    readonly peers: WgSimPeer[],
    readonly peerKeys: Uint8Array[],
  ) {
    this.boot();
  }

  get publicKey(): Uint8Array {
    return publicKeyOf(this.privateKey);
  }

  boot(): void {
    this.protocol = new WireGuardProtocol({
      privateKey: this.privateKey,
      peers: this.peers.map((p, i) => ({ id: i, publicKey: this.peerKeys[i], presharedKey: p.psk ?? null, persistentKeepaliveSeconds: p.keepalive ?? 0 })),
      aead,
      mtu: 1420,
      random: seededBytes(this.name.length * 131 + this.net.now + this.address),
      wallClock: () => 1_700_000_000_000 + this.net.now,
    });
    this.held = this.peers.map(() => []);
    this.peers.forEach((p, i) => {
      if (p.endpoint) this.protocol.endpointKnown(i, this.net.now, this);
    });
  }

  sendControl(peer: number, buffer: Uint8Array, offset: number, length: number): void {
    this.net.transmit(this.name, this.peers[peer].host, buffer.slice(offset, offset + length));
  }

  /** Sends an IPv4 packet carrying `text` to peer `peer`. */
  send(peer: number, text: string): Outcome {
    const body = new TextEncoder().encode(text);
    const packet = ipv4Packet(body);
    const buf = new Uint8Array(16 + packet.length + 32);
    buf.set(packet, 16);
    const out = this.protocol.encapsulate(peer, buf, 16, packet.length, this.net.now, this);
    if (out === Outcome.Send) {
      const r = this.protocol.result;
      this.net.transmit(this.name, this.peers[peer].host, r.buffer.slice(r.offset, r.offset + r.length));
    } else if (out === Outcome.Hold) {
      this.held[peer].push(packet);
    }
    return out;
  }

  receive(from: string, bytes: Uint8Array): Outcome {
    const p = this.protocol;
    const out = p.receive(bytes, 0, bytes.length, SOURCE, 0, this.net.now, this);
    if (out === Outcome.Drop) return out;
    if (out === Outcome.ReplyToSource) {
      this.net.transmit(this.name, from, p.result.buffer.slice(p.result.offset, p.result.offset + p.result.length));
      return out;
    }
    const peer = p.result.peer;
    p.endpointKnown(peer, this.net.now, this);
    if (out === Outcome.Deliver) {
      const r = p.result;
      this.delivered.push(new TextDecoder().decode(r.buffer.subarray(r.offset + 20, r.offset + r.length)));
    } else if (out === Outcome.Reply) {
      this.net.transmit(this.name, from, p.result.buffer.slice(p.result.offset, p.result.offset + p.result.length));
    }
    this.flushHeld();
    return out;
  }

  flushHeld(): void {
    this.held.forEach((packets, peer) => {
      if (packets.length === 0 || !this.protocol.canSend(peer)) return;
      const list = packets.splice(0);
      for (const packet of list) {
        const buf = new Uint8Array(16 + packet.length + 32);
        buf.set(packet, 16);
        if (this.protocol.encapsulate(peer, buf, 16, packet.length, this.net.now, this) === Outcome.Send) {
          const r = this.protocol.result;
          this.net.transmit(this.name, this.peers[peer].host, r.buffer.slice(r.offset, r.offset + r.length));
        }
      }
    });
  }
}

export function ipv4Packet(body: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + body.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set([10, 0, 0, 1], 12);
  p.set([10, 0, 0, 2], 16);
  p.set(body, 20);
  return p;
}

export class WgSimNet {
  now = 0;
  loss = 0;
  latency = 5;
  readonly hosts = new Map<string, WgSimHost>();
  readonly log: { from: string; to: string; bytes: Uint8Array; at: number }[] = [];
  /** Extra observer for every datagram put on the wire (before loss). */
  tap: ((from: string, to: string, bytes: Uint8Array) => void) | null = null;
  private queue: { from: string; to: string; bytes: Uint8Array; at: number }[] = [];
  private readonly rng: () => number;

  constructor(seed = 1) {
    this.rng = seededRandom(seed);
  }

  add(name: string, privateKey: Uint8Array, peers: WgSimPeer[], peerKeys: Uint8Array[]): WgSimHost {
    const h = new WgSimHost(this, name, privateKey, peers, peerKeys);
    this.hosts.set(name, h);
    return h;
  }

  transmit(from: string, to: string, bytes: Uint8Array): void {
    this.tap?.(from, to, bytes);
    if (this.rng() < this.loss) return;
    this.queue.push({ from, to, bytes, at: this.now + this.latency });
  }

  inject(from: string, to: string, bytes: Uint8Array): void {
    this.queue.push({ from, to, bytes, at: this.now });
  }

  run(ms: number, step = 10): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += step;
      const due = this.queue.filter((m) => m.at <= this.now);
      this.queue = this.queue.filter((m) => m.at > this.now);
      for (const m of due) this.hosts.get(m.to)?.receive(m.from, m.bytes);
      for (const h of this.hosts.values()) {
        if (h.protocol.nextDeadline() <= this.now) {
          h.protocol.tick(this.now, h);
          h.flushHeld();
        }
      }
    }
  }
}

/** Two hosts that know each other: "a" has b's endpoint, "b" learns a's. */
export function wgPair(opts: { seed?: number; psk?: Uint8Array; keepalive?: number; bothEndpoints?: boolean } = {}) {
  const net = new WgSimNet(opts.seed ?? 1);
  const ka = keyFrom(101);
  const kb = keyFrom(202);
  const a = net.add("a", ka, [{ host: "b", endpoint: true, psk: opts.psk, keepalive: opts.keepalive }], [publicKeyOf(kb)]);
  const b = net.add("b", kb, [{ host: "a", endpoint: opts.bothEndpoints ?? false, psk: opts.psk }], [publicKeyOf(ka)]);
  return { net, a, b };
}
