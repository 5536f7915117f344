// The device: the single loop that moves packets between a Tun and a Bind, routing by AllowedIPs,
// with a registry of peers by stable id and the packets held for peers without a session. The
// sockets and the TUN's offloads are the Bind's and the Tun's business (bind.ts, tun.ts); what
// the bytes mean is the protocol's (src/protocol).
//
// run() waits in epoll for the Tun's and the Bind's fds (and extra fds, e.g. the control socket);
// step(now) does one round without waiting, on any clock: with MemoryTun and MemoryBind two
// devices talk in a unit test, without root.
import { Epoll } from "../sys/epoll.ts";
import { AllowedIps } from "../net/allowed-ips.ts";
import { IPV4_DST_OFFSET, IPV4_SRC_OFFSET, IPV6_DST_OFFSET, IPV6_SRC_OFFSET, ipVersion } from "../net/ip-packet.ts";
import { formatEndpoint, type Endpoint } from "../net/endpoint.ts";
import { formatCidr, type Cidr } from "../net/ip.ts";
import { envSwitch, LINGER_ENV } from "../switches.ts";
import { Outcome, type ControlSink, type PeerId, type TunnelProtocol } from "../protocol/tunnel.ts";
import type { Logger } from "../log.ts";
import { PACKET_HEADROOM, PACKET_TAILROOM, type Bind, type QueueWatcher, type ReceiveQueue } from "./bind.ts";
import { DeviceCounters } from "./counters.ts";
import type { DeviceMirror } from "./device-mirror.ts";
import { HeldPackets } from "./held-packets.ts";
import { Housekeeping } from "./housekeeping.ts";
import { PeerLink } from "./peer-link.ts";
import { TUN_EMPTY, TUN_NEEDS_ROOM, type Tun } from "./tun.ts";

export { DeviceCounters } from "./counters.ts";

/** Batches one queue (or the Tun) may take per loop round before the others get their turn. */
const BATCHES_PER_ROUND = 8;
/**
 * Longest sleep in epoll_wait by default: bounds how late Bun's own event loop is served (its
 * timers, the sockets of Bun.serve or an etcd client, DNS answers). Signals are not bound by it:
 * they interrupt the wait.
 */
const MAX_WAIT_MS = 1000;
/** Longest stretch of packet work between two visits to Bun's event loop. */
const YIELD_EVERY_MS = 2;
/**
 * Longest wait after a round that did work before Bun's event loop gets its turn (see loop);
 * 0 with WONTUN_LINGER=0, to compare.
 */
const LINGER_MS = envSwitch(LINGER_ENV, true) ? 1 : 0;

/** Work with deadlines of its own (e.g. control-socket client timeouts), run by the loop. */
export interface DeviceTimer {
  /** When tick() next has work (same clock as the device), or Infinity. */
  nextDeadline(): number;
  tick(now: number): void;
}

export interface DeviceOptions {
  tun: Tun;
  bind: Bind;
  protocol: TunnelProtocol;
  log: Logger;
  /** UDP port to listen on (0: any free one), opened by start(). */
  listenPort: number;
  /** Monotonic milliseconds; default performance.now. */
  clock?: () => number;
  /**
   * Longest sleep in epoll_wait (default MAX_WAIT_MS), or a function asked before each wait: an
   * owner with nothing on Bun's event loop lets the loop sleep longer (each visit to Bun's loop
   * costs an idle process a few hundred µs of CPU across its threads); a data-path thread, woken
   * through an eventfd, sleeps until its timers.
   */
  maxWaitMs?: number | (() => number);
}

export class Device implements ControlSink, QueueWatcher {
  readonly counters = new DeviceCounters();
  readonly protocol: TunnelProtocol;
  readonly tun: Tun;
  readonly bind: Bind;

  private readonly log: Logger;
  private readonly listenPortWanted: number;
  private readonly clock: () => number;
  private readonly maxWaitMs: () => number;
  private readonly epoll: Epoll;
  private readonly links = new Map<PeerId, PeerLink>();
  private readonly allowedIps = new AllowedIps<PeerLink>();
  /** The last peer a datagram came from: a flow's datagrams skip the map lookup. */
  private lastLink: PeerLink | null = null;
  // Where tun.read() puts each packet (inside the Bind's tx slots, after the headroom) and its length.
  private readonly txStarts: Int32Array;
  private readonly txLengths: Int32Array;
  private readonly packetRoom: number;

  /** Every queue of the Bind; those with an fd are also in queueByFd (epoll token = fd). */
  private readonly queues = new Set<ReceiveQueue>();
  private readonly queueByFd = new Map<number, ReceiveQueue>();
  private readonly watchers = new Map<number, () => void>();
  private readonly timers: DeviceTimer[] = [];

  // Sources with data left over from the last round (edge-triggered: no new event will come).
  private tunPending = false;
  private readonly pendingQueues: ReceiveQueue[] = [];
  private pendingCount = 0;
  /**
   * The last TUN drain found one packet: traffic is sparse (a ping, a keystroke), so the next
   * packet is sent as soon as it is read rather than after the read that finds the TUN empty.
   */
  private tunSparse = false;

  /** Idle-time work and the deferred work that waits for handshakes to settle. */
  readonly housekeeping: Housekeeping;
  private stopping = false;
  private running: Promise<void> | null = null;
  /** The other data-path threads' devices, kept in step with this one (null: one thread). */
  private mirror: DeviceMirror | null = null;

  constructor(options: DeviceOptions) {
    this.log = options.log;
    this.protocol = options.protocol;
    this.tun = options.tun;
    this.bind = options.bind;
    this.housekeeping = new Housekeeping({ protocol: this.protocol, bind: this.bind, log: this.log });
    this.clock = options.clock ?? (() => performance.now());
    const maxWait = options.maxWaitMs ?? MAX_WAIT_MS;
    this.maxWaitMs = typeof maxWait === "number" ? () => maxWait : maxWait;
    this.tun.counters = this.counters;
    this.bind.counters = this.counters;
    const capacity = this.bind.txCapacity;
    this.txStarts = new Int32Array(capacity);
    this.txLengths = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.txStarts[i] = this.bind.txSlotStart(i) + PACKET_HEADROOM;
    this.packetRoom = this.bind.txSlotSize - PACKET_HEADROOM - PACKET_TAILROOM;
    this.listenPortWanted = options.listenPort;
    this.epoll = new Epoll(64);
    this.bind.setWatcher(this);
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Opens the Tun (a kernel TUN: creates the interface) and the Bind's listening socket. The
   * interface's addresses and routes are the caller's business (src/host), as they are
   * wg-quick's for wireguard-go; so are the peers (addPeer, setAllowedIps, setPeerEndpoint).
   */
  start(): void {
    this.tun.open();
    if (this.tun.fd >= 0) this.epoll.addReadable(this.tun.fd, this.tun.fd);
    const port = this.bind.open(this.listenPortWanted);
    this.log.info(`listening on UDP port ${port}`);
  }

  /** Runs the loop until stop(); resolves when it has exited. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  stop(): void {
    this.stopping = true;
  }

  /** Closes every fd; closing a kernel TUN removes the interface with its addresses and routes. */
  close(): void {
    this.bind.close();
    this.tun.close();
    this.epoll.close();
  }

  /**
   * One round of work without waiting: what epoll reports ready now, and every fd-less source
   * (MemoryTun, MemoryBind) as if it were ready; then due timers; with `idle`, what the loop does
   * before it sleeps. For tests on a fake clock.
   */
  step(now: number, idle = false): void {
    const n = this.epoll.wait(0);
    for (let i = 0; i < n; i++) this.dispatch(this.epoll.token(i));
    if (this.tun.fd < 0) this.tunPending = true;
    for (const queue of this.queues) if (queue.fd < 0) this.markPending(queue);
    this.work(now);
    this.housekeeping.noteRound(now);
    if (idle) this.housekeeping.idle(now);
  }

  /** Collects start-up's garbage now and hands the memory back (see Housekeeping). */
  compactHeapNow(): void {
    this.housekeeping.compactNow(this.clock());
  }

  /** When the loop next has timer work: the protocol's or an added timer's. */
  nextDeadline(): number {
    let deadline = this.protocol.nextDeadline();
    const timers = this.timers;
    for (let i = 0; i < timers.length; i++) deadline = Math.min(deadline, timers[i].nextDeadline());
    return deadline;
  }

  // ---- the loop ----------------------------------------------------------------------------

  // Bun's event loop (signals, timers) runs when we yield: before a long wait, and after at most
  // YIELD_EVERY_MS of work. After a round that did work the loop first lingers: a wait of at most
  // LINGER_MS before any yield, so the answer to what we just sent (a ping's echo, a request's
  // response) is handled at once, and the ~15-30 µs of Bun's event loop is spent when nothing is
  // expected, not between our send and our sleep (on a small machine the peer we just woke may be
  // waiting for this CPU). Once a wait ends with nothing to do, we yield.
  //
  // A yield is setImmediate(resumeLoop), with the loop's state in fields: under load the loop
  // yields hundreds of times a second, and an awaited Promise would allocate five more objects
  // each time (the promise, its resolve functions, the executor, the async frame).
  private lingering = false;
  private lastYield = 0;
  private loopDone: { resolve: () => void; reject: (err: unknown) => void } | null = null;
  private readonly resumeLoop = (): void => this.turn();

  private loop(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.loopDone = { resolve, reject };
      this.turn();
    });
  }

  /** Rounds until the next yield (then the loop resumes from setImmediate) or the end. */
  private turn(): void {
    this.lingering = false;
    this.lastYield = this.clock();
    try {
      if (this.rounds()) {
        setImmediate(this.resumeLoop);
        return;
      }
    } catch (err) {
      this.loopDone!.reject(err);
      return;
    }
    this.loopDone!.resolve();
  }

  /** Returns true to yield to Bun's event loop, false once the loop is over. */
  private rounds(): boolean {
    const epoll = this.epoll;
    const housekeeping = this.housekeeping;
    while (!this.stopping) {
      let now = this.clock();
      const busy = this.tunPending || this.pendingCount > 0;
      const untilTimer = Math.ceil(Math.min(this.nextDeadline(), housekeeping.wakeAt()) - now);
      const timeout = busy || housekeeping.preparing ? 0 : Math.max(0, Math.min(untilTimer, this.lingering ? LINGER_MS : this.maxWaitMs()));
      const n = epoll.wait(timeout);
      for (let i = 0; i < n; i++) this.dispatch(epoll.token(i));
      now = this.clock();
      // A long wait comes right after a yield, and time asleep is not work.
      if (!this.lingering && timeout > 0) this.lastYield = now;
      this.work(now);
      housekeeping.noteRound(now);
      if (this.tun.gone) {
        this.log.info(`interface ${this.tun.name} was deleted; shutting down`);
        return false;
      }
      const idle = n === 0 && !busy; // the wait ran out (or a signal interrupted it)
      if (idle || now - this.lastYield >= YIELD_EVERY_MS) {
        if (idle) housekeeping.idle(now);
        return true;
      }
      this.lingering = true;
    }
    return false;
  }

  /** One epoll event: the token is the fd. */
  private dispatch(fd: number): void {
    if (fd === this.tun.fd) {
      this.tunPending = true;
      return;
    }
    const queue = this.queueByFd.get(fd);
    if (queue !== undefined) {
      this.markPending(queue);
      return;
    }
    const onReady = this.watchers.get(fd);
    if (onReady === undefined) return;
    try {
      onReady();
    } catch (err) {
      this.log.error(`handler of fd ${fd}: ${(err as Error).message}`);
    }
  }

  /** One round: pending queues, then the Tun, then due timers. */
  private work(now: number): void {
    const tun = this.tun;
    const written = tun.packetsWritten;
    if (this.pendingCount > 0) this.drainQueues(now);
    // Writing to the TUN runs the kernel's receive path at once, and what it answers (an echo
    // reply, a TCP ACK) is usually queued on the TUN before write() returns: read it in this
    // round rather than after another wait.
    if (tun.packetsWritten !== written) this.tunPending = true;
    if (this.tunPending) this.tunPending = !this.drainTun(now);
    const protocol = this.protocol;
    if (now >= protocol.nextDeadline()) {
      protocol.tick(now, this);
      this.flushAllHeld(now);
    }
    const timers = this.timers;
    for (let i = 0; i < timers.length; i++) {
      if (now >= timers[i].nextDeadline()) this.tickTimer(timers[i], now);
    }
  }

  private tickTimer(timer: DeviceTimer, now: number): void {
    try {
      timer.tick(now);
    } catch (err) {
      this.log.error(`timer: ${(err as Error).message}`);
    }
  }

  // ---- the Bind's queues ---------------------------------------------------------------------

  queueOpened(queue: ReceiveQueue): void {
    this.queues.add(queue);
    if (queue.fd < 0) return;
    this.queueByFd.set(queue.fd, queue);
    this.epoll.addReadable(queue.fd, queue.fd);
  }

  queueClosed(queue: ReceiveQueue): void {
    this.queues.delete(queue);
    if (queue.pending) {
      // A queue being drained sees this and stops (drainQueue); the list drops it next round.
      queue.pending = false;
    }
    if (queue.fd < 0) return;
    if (this.queueByFd.get(queue.fd) === queue) this.queueByFd.delete(queue.fd);
    this.epoll.remove(queue.fd);
  }

  private markPending(queue: ReceiveQueue): void {
    if (queue.pending) return;
    queue.pending = true;
    this.pendingQueues[this.pendingCount++] = queue;
  }

  private drainQueues(now: number): void {
    const count = this.pendingCount;
    const pending = this.pendingQueues;
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const queue = pending[i];
      if (!queue.pending) continue; // closed meanwhile
      if (this.drainQueue(queue, now)) queue.pending = false;
      else pending[kept++] = queue;
    }
    // Queues marked while draining (a socket re-opened) went after `count`: keep them.
    for (let i = count; i < this.pendingCount; i++) pending[kept++] = pending[i];
    this.pendingCount = kept;
  }

  // ---- UDP -> TUN ----------------------------------------------------------------------------

  /** Returns true once `queue` is drained (or was closed while draining). */
  private drainQueue(queue: ReceiveQueue, now: number): boolean {
    const bind = this.bind;
    const received = bind.received;
    for (let round = 0; round < BATCHES_PER_ROUND; round++) {
      if (!queue.pending) return true;
      const n = bind.receive(queue);
      if (n < 0) continue;
      // A lone datagram has nothing to be coalesced with: it skips the coalescer.
      const coalesce = n > 1;
      const bytes = received.bytes;
      const sources = received.sources;
      for (let i = 0; i < n; i++) {
        this.receiveDatagram(bytes, received.offsets[i], received.lengths[i], sources, received.sourceOffsets[i], coalesce, now);
      }
      // The batch's packets are still in the receive buffers: write what was coalesced before
      // the next receive.
      if (coalesce) this.tun.flush();
      if (!received.full) return true;
    }
    return false;
  }

  /** One datagram, bytes[offset, offset+length), from the source at sources[sourceAt]. */
  private receiveDatagram(
    bytes: Uint8Array,
    offset: number,
    length: number,
    sources: Uint8Array,
    sourceAt: number,
    coalesce: boolean,
    now: number,
  ): void {
    const protocol = this.protocol;
    const result = protocol.result;
    const outcome = protocol.receive(bytes, offset, length, sources, sourceAt, now, this);
    if (outcome === Outcome.Drop) {
      if (this.log.traceOn) this.log.trace(`dropped datagram of ${length} bytes`);
      return;
    }
    if (outcome === Outcome.ReplyToSource) {
      this.bind.replyToSource(sources, sourceAt, result.buffer, result.offset, result.length);
      return;
    }
    const link = this.linkOf(result.peer);
    if (link === null) return; // a peer the device no longer (or not yet) has
    const route = link.route;
    route.rxBytes += length;
    if (!this.bind.isSource(route, sources, sourceAt)) this.learnEndpoint(link, sources, sourceAt, now);
    if (outcome === Outcome.Deliver) {
      this.deliver(link, result.buffer, result.offset, result.length, coalesce);
    } else if (outcome === Outcome.Reply) {
      this.bind.send(route, result.buffer, result.offset, result.length);
    }
    if (link.held !== null && link.held.count > 0 && protocol.canSend(link.id)) this.flushHeld(link, now);
  }

  private linkOf(id: PeerId): PeerLink | null {
    const last = this.lastLink;
    if (last !== null && last.id === id) return last;
    const link = this.links.get(id) ?? null;
    this.lastLink = link;
    return link;
  }

  /** Writes a decapsulated packet to the TUN if its source is one the peer may use. */
  private deliver(link: PeerLink, buf: Uint8Array, offset: number, length: number, coalesce: boolean): void {
    const version = ipVersion(buf, offset, length);
    if (version === 0) {
      this.counters.notIp++;
      return;
    }
    const srcAt = offset + (version === 4 ? IPV4_SRC_OFFSET : IPV6_SRC_OFFSET);
    if (this.allowedIps.lookupPacket(buf, srcAt, version) !== link) {
      this.counters.sourceRejected++;
      if (this.log.traceOn) this.log.trace(`peer ${link.name}: packet from a source outside its AllowedIPs dropped`);
      return;
    }
    this.tun.write(buf, offset, length, coalesce);
  }

  // ---- TUN -> UDP ----------------------------------------------------------------------------

  /**
   * TUN -> peers: packets are read straight into the Bind's tx slots (a super-packet fills
   * several), encapsulated in place and sent in batches. A slot's datagram may sit in a later
   * slot's bytes (a dropped packet leaves a hole), which the Bind does not mind. Returns true
   * once the TUN is drained.
   */
  private drainTun(now: number): boolean {
    const tun = this.tun;
    const bind = this.bind;
    const bytes = bind.txBytes;
    const starts = this.txStarts;
    const lengths = this.txLengths;
    const capacity = bind.txCapacity;
    const room = this.packetRoom;
    let reads = 0;
    for (let round = 0; round < BATCHES_PER_ROUND; round++) {
      let slots = 0; // slots whose bytes are in use
      let count = 0; // datagrams ready to send
      let drained = false;
      while (slots < capacity) {
        if (reads === 1 && this.tunSparse && count > 0) {
          bind.flush(count);
          slots = 0;
          count = 0;
        }
        const made = tun.read(bytes, starts, lengths, slots, capacity - slots, room);
        if (made === TUN_EMPTY) {
          drained = true;
          break;
        }
        if (made === TUN_NEEDS_ROOM) {
          bind.flush(count);
          slots = 0;
          count = 0;
          continue;
        }
        reads++;
        for (let k = slots; k < slots + made; k++) {
          if (this.routeOutgoing(starts[k], lengths[k], count, now)) count++;
        }
        slots += made;
      }
      bind.flush(count);
      if (drained) {
        this.tunSparse = reads <= 1;
        return true;
      }
    }
    this.tunSparse = false;
    return false;
  }

  /**
   * Picks the peer for the packet at txBytes[start, start+length) and lets the protocol
   * encapsulate it. Returns true if tx slot `slot` now holds a datagram to send.
   */
  private routeOutgoing(start: number, length: number, slot: number, now: number): boolean {
    const bytes = this.bind.txBytes;
    const version = ipVersion(bytes, start, length);
    if (version === 0) {
      this.counters.notIp++;
      return false;
    }
    const link = this.allowedIps.lookupPacket(bytes, start + (version === 4 ? IPV4_DST_OFFSET : IPV6_DST_OFFSET), version);
    if (link === undefined) {
      this.counters.noRoute++;
      return false;
    }
    const protocol = this.protocol;
    const outcome = protocol.encapsulate(link.id, bytes, start, length, now, this);
    if (outcome === Outcome.Send) {
      const result = protocol.result;
      this.bind.queue(slot, result.offset, result.length, link.route);
      return true;
    }
    if (outcome === Outcome.Hold) this.hold(link, bytes, start, length);
    return false;
  }

  // ---- control path (handshakes, keepalives, held packets): rare, may allocate -------------

  /** From now on every change to peers, endpoints and sockets is also told to `mirror`. */
  setMirror(mirror: DeviceMirror): void {
    this.mirror = mirror;
  }

  /**
   * A packet another data-path thread read for `peer` but had no session for: sent now if
   * this thread has one, else held (and a handshake started) as if read here.
   */
  sendFromThread(id: PeerId, packet: Uint8Array, now: number): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    const buf = new Uint8Array(PACKET_HEADROOM + packet.length + PACKET_TAILROOM);
    buf.set(packet, PACKET_HEADROOM);
    const outcome = this.protocol.encapsulate(id, buf, PACKET_HEADROOM, packet.length, now, this);
    if (outcome === Outcome.Send) {
      const r = this.protocol.result;
      this.bind.send(link.route, r.buffer, r.offset, r.length);
    } else if (outcome === Outcome.Hold) {
      this.hold(link, buf, PACKET_HEADROOM, packet.length);
    }
  }

  /** A handshake message another thread's socket received from `source` (a sockaddr). */
  receiveFromThread(datagram: Uint8Array, source: Uint8Array, now: number): void {
    this.receiveDatagram(datagram, 0, datagram.length, source, 0, false, now);
  }

  sendControl(peer: PeerId, buffer: Uint8Array, offset: number, length: number): void {
    const link = this.links.get(peer);
    if (link !== undefined) this.bind.send(link.route, buffer, offset, length);
  }

  private hold(link: PeerLink, buf: Uint8Array, offset: number, length: number): void {
    link.held ??= new HeldPackets(PACKET_HEADROOM, PACKET_TAILROOM);
    link.held.hold(buf, offset, length);
  }

  private flushHeld(link: PeerLink, now: number): void {
    const held = link.held!;
    const protocol = this.protocol;
    for (let i = 0; i < held.count; i++) {
      if (protocol.encapsulate(link.id, held.buffers[i], PACKET_HEADROOM, held.lengths[i], now, this) !== Outcome.Send) break;
      const r = protocol.result;
      this.bind.send(link.route, r.buffer, r.offset, r.length);
    }
    link.held = null;
  }

  private flushAllHeld(now: number): void {
    for (const link of this.links.values()) {
      if (link.held !== null && link.held.count > 0 && this.protocol.canSend(link.id)) this.flushHeld(link, now);
    }
  }

  private learnEndpoint(link: PeerLink, sources: Uint8Array, at: number, now: number): void {
    const endpoint = this.bind.sourceEndpoint(sources, at);
    // Port 0 cannot be answered (only a forged datagram comes from it): keep the endpoint we have.
    if (!endpoint || endpoint.port === 0) return;
    const before = link.route.endpoint;
    this.bind.setEndpoint(link.route, endpoint);
    this.housekeeping.endpointSet();
    this.mirror?.endpointSet(link.id, endpoint);
    // A move is news (info); a first endpoint is what every peer of a server does once (debug).
    if (before) this.log.info(`peer ${link.name}: endpoint ${formatEndpoint(before)} -> ${formatEndpoint(endpoint)}`);
    else if (this.log.debugOn) this.log.debug(`peer ${link.name}: endpoint ${formatEndpoint(endpoint)}`);
    this.protocol.endpointKnown(link.id, now, this);
  }

  // ---- operations (the control plane's device side) ------------------------------------------

  /** Adds a peer with no endpoint and no AllowedIPs; its protocol state is the protocol's. */
  addPeer(id: PeerId, label: string): void {
    if (this.links.has(id)) throw new Error(`peer ${id} exists already`);
    this.links.set(id, new PeerLink(id, label, this.bind.createRoute(label)));
    this.mirror?.peerAdded(id, label);
  }

  /** Removes a peer: its socket closes, its held packets and AllowedIPs go. */
  removePeer(id: PeerId): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    this.allowedIps.removeValue(link);
    this.bind.closeRoute(link.route);
    link.held = null;
    link.allowedIps = [];
    this.links.delete(id);
    if (this.lastLink === link) this.lastLink = null;
    this.mirror?.peerRemoved(id);
  }

  /** The peer's AllowedIPs become exactly `cidrs`; a prefix another peer held moves to this one. */
  setAllowedIps(id: PeerId, cidrs: Cidr[]): void {
    const link = this.linkOrThrow(id);
    this.allowedIps.removeValue(link);
    link.allowedIps = [];
    for (const cidr of cidrs) {
      const previous = this.allowedIps.insert(cidr, link);
      if (previous === link) continue; // listed twice
      if (previous !== undefined) {
        const text = formatCidr(cidr);
        previous.allowedIps = previous.allowedIps.filter((c) => formatCidr(c) !== text);
      }
      link.allowedIps.push(cidr);
    }
    this.mirror?.allowedIpsSet(id, cidrs);
  }

  allowedIpsOf(id: PeerId): Cidr[] {
    return this.linkOrThrow(id).allowedIps.slice();
  }

  /** A configured endpoint: the peer's datagrams go there until it roams. */
  setPeerEndpoint(id: PeerId, endpoint: Endpoint, now: number): void {
    const link = this.linkOrThrow(id);
    this.bind.setEndpoint(link.route, endpoint);
    this.housekeeping.endpointSet();
    this.mirror?.endpointSet(id, endpoint);
    this.protocol.endpointKnown(id, now, this);
  }

  peerEndpoint(id: PeerId): Endpoint | null {
    return this.linkOrThrow(id).route.endpoint;
  }

  /** Datagram bytes received from / sent to the peer, handshakes and keepalives included. */
  peerTransfer(id: PeerId): { rxBytes: number; txBytes: number } {
    const route = this.linkOrThrow(id).route;
    if (this.mirror === null) return { rxBytes: route.rxBytes, txBytes: route.txBytes };
    const others = this.mirror.transferOf(id);
    return { rxBytes: route.rxBytes + others.rxBytes, txBytes: route.txBytes + others.txBytes };
  }

  /** Datagram bytes this device's own sockets moved for all peers (not other threads'). */
  ownTransfer(): number {
    let total = 0;
    for (const link of this.links.values()) total += link.route.rxBytes + link.route.txBytes;
    return total;
  }

  /** Peers held, by id (for status and logs). */
  peerIds(): PeerId[] {
    return [...this.links.keys()];
  }

  peerName(id: PeerId): string {
    return this.linkOrThrow(id).name;
  }

  /** Packets held for the peer until its session is up. */
  heldPackets(id: PeerId): number {
    return this.linkOrThrow(id).held?.count ?? 0;
  }

  get listenPort(): number {
    return this.bind.port;
  }

  /** Moves to `port` (0: any free one); returns the port bound. On failure throws, the old socket stays. */
  setListenPort(port: number): number {
    const before = this.bind.port;
    const bound = this.bind.open(port);
    if (bound !== before) this.mirror?.listenPortChanged(bound);
    return bound;
  }

  /** SO_MARK on every socket (0: none). */
  setFwmark(mark: number): void {
    this.bind.setMark(mark);
    this.mirror?.markChanged(mark);
  }

  /**
   * Serves `fd` from the loop: onReady runs at every edge of input or of room to write
   * (EPOLLIN | EPOLLOUT, edge-triggered, the control server's FdWatcher contract), so onReady
   * drains input to EAGAIN and resumes a short write when room comes. An exception from onReady
   * is logged, not thrown.
   */
  watch(fd: number, onReady: () => void): void {
    if (fd === this.tun.fd || this.queueByFd.has(fd) || this.watchers.has(fd)) throw new Error(`fd ${fd} is watched already`);
    this.epoll.addReadWritable(fd, fd);
    this.watchers.set(fd, onReady);
  }

  unwatch(fd: number): void {
    if (!this.watchers.delete(fd)) return;
    this.epoll.remove(fd);
  }

  /** Runs `timer` from the loop; its deadline bounds the loop's wait. */
  addTimer(timer: DeviceTimer): void {
    this.timers.push(timer);
  }

  removeTimer(timer: DeviceTimer): void {
    const at = this.timers.indexOf(timer);
    if (at >= 0) this.timers.splice(at, 1);
  }

  private linkOrThrow(id: PeerId): PeerLink {
    const link = this.links.get(id);
    if (link === undefined) throw new Error(`no peer ${id}`);
    return link;
  }
}
