// A deterministic two-or-more-host network for the wontun protocol: no sockets, no clock, just
// the sans-IO protocol objects, a seeded RNG for loss, and a queue of datagrams in flight.
import { Outcome, type ControlSink } from "../../src/protocol/tunnel.ts";
import { WontunProtocol } from "../../src/protocol/wontun/protocol.ts";

const NO_SOURCE = new Uint8Array(28);

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

interface InFlight {
  to: string;
  from: string;
  bytes: Uint8Array;
  at: number;
}

export interface SimHostSpec {
  name: string;
  peers: { name: string; endpoint: boolean; keepalive?: number }[];
}

export class SimHost implements ControlSink {
  protocol!: WontunProtocol;
  delivered: string[] = [];
  constructor(
    readonly net: SimNet,
    readonly spec: SimHostSpec,
  ) {
    this.boot();
  }

  /** (Re)starts the host: all protocol state is lost, as in a process restart. */
  boot(): void {
    this.protocol = new WontunProtocol(
      this.spec.name,
      this.spec.peers.map((p, i) => ({ id: i, name: p.name, persistentKeepaliveSeconds: p.keepalive ?? 0 })),
      seededRandom(this.spec.name.length * 7919 + this.net.now),
    );
    this.spec.peers.forEach((p, i) => {
      if (p.endpoint) this.protocol.endpointKnown(i, this.net.now, this);
    });
  }

  peerIndex(name: string): number {
    return this.spec.peers.findIndex((p) => p.name === name);
  }

  sendControl(peer: number, buffer: Uint8Array, offset: number, length: number): void {
    this.net.transmit(this.spec.name, this.spec.peers[peer].name, buffer.slice(offset, offset + length));
  }

  /** Sends an application payload to `peer`; true if it left at once. */
  sendData(peerName: string, text: string): boolean {
    const payload = new TextEncoder().encode(text);
    const buf = new Uint8Array(16 + payload.length);
    buf.set(payload, 16);
    const peer = this.peerIndex(peerName);
    const out = this.protocol.encapsulate(peer, buf, 16, payload.length, this.net.now, this);
    if (out !== Outcome.Send) return false;
    const r = this.protocol.result;
    this.net.transmit(this.spec.name, peerName, r.buffer.slice(r.offset, r.offset + r.length));
    return true;
  }

  receive(from: string, bytes: Uint8Array): void {
    const p = this.protocol;
    const out = p.receive(bytes, 0, bytes.length, NO_SOURCE, 0, this.net.now, this);
    if (out === Outcome.Drop) return;
    // The device learns the endpoint from any valid datagram.
    p.endpointKnown(p.result.peer, this.net.now, this);
    if (out === Outcome.Deliver) {
      this.delivered.push(new TextDecoder().decode(p.result.buffer.subarray(p.result.offset, p.result.offset + p.result.length)));
    } else if (out === Outcome.Reply) {
      this.net.transmit(this.spec.name, from, p.result.buffer.slice(p.result.offset, p.result.offset + p.result.length));
    }
  }

  connected(peerName: string): boolean {
    return this.protocol.stateName(this.peerIndex(peerName)) === "connected";
  }
}

export class SimNet {
  now = 0;
  loss = 0;
  latency = 5;
  sent = 0;
  readonly hosts = new Map<string, SimHost>();
  private readonly queue: InFlight[] = [];
  private readonly rng: () => number;

  constructor(seed = 1) {
    this.rng = seededRandom(seed);
  }

  add(spec: SimHostSpec): SimHost {
    const host = new SimHost(this, spec);
    this.hosts.set(spec.name, host);
    return host;
  }

  transmit(from: string, to: string, bytes: Uint8Array): void {
    this.sent++;
    if (this.rng() < this.loss) return;
    this.queue.push({ from, to, bytes, at: this.now + this.latency });
  }

  /** Advances time in 10 ms steps, delivering datagrams and running timers. */
  run(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += 10;
      for (let i = 0; i < this.queue.length; ) {
        const m = this.queue[i];
        if (m.at <= this.now) {
          this.queue.splice(i, 1);
          this.hosts.get(m.to)?.receive(m.from, m.bytes);
        } else {
          i++;
        }
      }
      for (const h of this.hosts.values()) {
        if (h.protocol.nextDeadline() <= this.now) h.protocol.tick(this.now, h);
      }
    }
  }

  /** Drops everything in flight (e.g. to a host that just restarted). */
  flush(): void {
    this.queue.length = 0;
  }
}
