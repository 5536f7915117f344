// A Bind without sockets: datagrams between Binds in one process, through a MemoryNetwork that
// links them (the idea of wireguard-go's bindtest). Each Bind has an IPv4 endpoint on the
// network; sources reach the protocol as struct sockaddr_in, as from the kernel. The network has
// a clock of its own (set by the test), optional latency and seeded loss. For tests: it copies
// every datagram.
import { AF_INET, decodeSockaddr, encodeSockaddr, sockaddrMatches } from "../sys/sockaddr.ts";
import { formatEndpoint, type Endpoint } from "../net/endpoint.ts";
import { DeviceCounters } from "./counters.ts";
import {
  PACKET_HEADROOM,
  PeerRoute,
  ReceivedDatagrams,
  slotSizeFor,
  type Bind,
  type BindOptions,
  type QueueWatcher,
  type ReceiveQueue,
} from "./bind.ts";

const RECV_BATCH = 32;
/** Room for a sockaddr per received datagram. */
const NAME_STRIDE = 32;

/** A small deterministic RNG (LCG) in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

interface InFlight {
  from: Endpoint;
  bytes: Uint8Array;
  /** Network time at which it arrives. */
  at: number;
}

const keyOf = (ep: Endpoint): string => formatEndpoint(ep);

export class MemoryNetwork {
  /** The network's clock (ms); datagrams arrive once it reaches their time. */
  now = 0;
  latency = 0;
  /** Share of datagrams lost, drawn from the seeded RNG. */
  loss = 0;
  /** Datagrams put on the wire (before loss). */
  sent = 0;
  /** Sees every datagram put on the wire (before loss). */
  tap: ((from: Endpoint, to: Endpoint, bytes: Uint8Array) => void) | null = null;
  private readonly random: () => number;
  private readonly inboxes = new Map<string, InFlight[]>();

  constructor(seed = 1) {
    this.random = seededRandom(seed);
  }

  /** Puts a copy of bytes[offset, offset+length) on the wire. */
  transmit(from: Endpoint, to: Endpoint, bytes: Uint8Array, offset: number, length: number): void {
    this.sent++;
    const copy = bytes.slice(offset, offset + length);
    this.tap?.(from, to, copy);
    if (this.loss > 0 && this.random() < this.loss) return;
    this.inboxOf(to).push({ from, bytes: copy, at: this.now + this.latency });
  }

  /** Delivers a datagram now, without loss (a replay, a forged packet). */
  inject(from: Endpoint, to: Endpoint, bytes: Uint8Array): void {
    this.inboxOf(to).push({ from, bytes: bytes.slice(), at: this.now });
  }

  /** Takes the next datagram to `to` that has arrived, if any. */
  take(to: Endpoint): InFlight | undefined {
    const inbox = this.inboxes.get(keyOf(to));
    if (inbox === undefined || inbox.length === 0 || inbox[0].at > this.now) return undefined;
    return inbox.shift();
  }

  /** Loses what has arrived at `to` without being taken (a host that is down). */
  discardArrived(to: Endpoint): void {
    const inbox = this.inboxes.get(keyOf(to));
    while (inbox !== undefined && inbox.length > 0 && inbox[0].at <= this.now) inbox.shift();
  }

  /** Loses everything in flight. */
  flush(): void {
    this.inboxes.clear();
  }

  private inboxOf(to: Endpoint): InFlight[] {
    const key = keyOf(to);
    let inbox = this.inboxes.get(key);
    if (inbox === undefined) {
      inbox = [];
      this.inboxes.set(key, inbox);
    }
    return inbox;
  }
}

class MemoryQueue implements ReceiveQueue {
  readonly fd = -1;
  pending = false;
}

const NO_WATCHER: QueueWatcher = { queueOpened() {}, queueClosed() {} };

export interface MemoryBindOptions extends Partial<BindOptions> {
  network: MemoryNetwork;
  /** This Bind's IPv4 address on the network; open(port) adds the port. */
  address: Uint8Array;
}

export class MemoryBind implements Bind {
  readonly received: ReceivedDatagrams;
  readonly txBytes: Uint8Array;
  readonly txCapacity: number;
  readonly txSlotSize: number;
  counters = new DeviceCounters();
  readonly network: MemoryNetwork;
  /** Where this Bind is on the network (port 0 until open). */
  endpoint: Endpoint;

  private readonly queue0 = new MemoryQueue();
  private watcher: QueueWatcher = NO_WATCHER;
  private opened = false;
  private readonly txOffset: Int32Array;
  private readonly txLength: Int32Array;
  private readonly txRoute: (PeerRoute | null)[];
  private nextEphemeralPort = 40000;

  constructor(options: MemoryBindOptions) {
    this.network = options.network;
    this.endpoint = { address: options.address, port: 0 };
    this.txCapacity = options.txCapacity ?? 32;
    this.txSlotSize = slotSizeFor(options.mtu ?? 1420);
    this.txBytes = new Uint8Array(this.txCapacity * this.txSlotSize);
    this.txOffset = new Int32Array(this.txCapacity);
    this.txLength = new Int32Array(this.txCapacity);
    this.txRoute = new Array<PeerRoute | null>(this.txCapacity).fill(null);
    this.received = new ReceivedDatagrams(new Uint8Array(RECV_BATCH * this.txSlotSize), new Uint8Array(RECV_BATCH * NAME_STRIDE), RECV_BATCH);
  }

  get port(): number {
    return this.endpoint.port;
  }

  txSlotStart(slot: number): number {
    return slot * this.txSlotSize;
  }

  setWatcher(watcher: QueueWatcher): void {
    this.watcher = watcher;
  }

  open(port: number): number {
    const bound = port !== 0 ? port : this.nextEphemeralPort++;
    this.endpoint = { address: this.endpoint.address, port: bound };
    if (!this.opened) {
      this.opened = true;
      this.watcher.queueOpened(this.queue0);
    }
    return bound;
  }

  setMark(_mark: number): void {}

  idle(): void {}

  close(): void {
    if (this.opened) this.watcher.queueClosed(this.queue0);
    this.opened = false;
  }

  createRoute(label: string): PeerRoute {
    return new PeerRoute(label);
  }

  setEndpoint(route: PeerRoute, endpoint: Endpoint): void {
    route.endpoint = endpoint;
  }

  closeRoute(route: PeerRoute): void {
    for (let i = 0; i < this.txCapacity; i++) if (this.txRoute[i] === route) this.txRoute[i] = null;
  }

  isSource(route: PeerRoute, sources: Uint8Array, at: number): boolean {
    return route.endpoint !== null && sockaddrMatches(sources, at, route.endpoint);
  }

  sourceEndpoint(sources: Uint8Array, at: number): Endpoint | null {
    return decodeSockaddr(sources, at);
  }

  receive(_queue: ReceiveQueue): number {
    const out = this.received;
    let n = 0;
    if (this.opened) {
      for (; n < RECV_BATCH; n++) {
        const datagram = this.network.take(this.endpoint);
        if (datagram === undefined) break;
        const at = n * this.txSlotSize + PACKET_HEADROOM;
        const length = Math.min(datagram.bytes.length, this.txSlotSize - PACKET_HEADROOM);
        out.bytes.set(datagram.bytes.subarray(0, length), at);
        out.offsets[n] = at;
        out.lengths[n] = length;
        out.sourceOffsets[n] = n * NAME_STRIDE;
        encodeSockaddr(datagram.from, AF_INET, out.sources, n * NAME_STRIDE);
      }
    }
    out.count = n;
    out.full = n === RECV_BATCH;
    return n;
  }

  queue(slot: number, offset: number, length: number, route: PeerRoute): void {
    this.txOffset[slot] = offset;
    this.txLength[slot] = length;
    this.txRoute[slot] = route;
  }

  flush(count: number): void {
    for (let i = 0; i < count; i++) {
      const route = this.txRoute[i];
      if (route !== null) this.send(route, this.txBytes, this.txOffset[i], this.txLength[i]);
    }
  }

  send(route: PeerRoute, buffer: Uint8Array, offset: number, length: number): void {
    if (route.endpoint === null || !this.opened) return;
    this.network.transmit(this.endpoint, route.endpoint, buffer, offset, length);
    route.txBytes += length;
  }

  replyToSource(sources: Uint8Array, at: number, buffer: Uint8Array, offset: number, length: number): void {
    const to = decodeSockaddr(sources, at);
    if (to !== null && this.opened) this.network.transmit(this.endpoint, to, buffer, offset, length);
  }
}
