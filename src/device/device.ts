// The device: one TUN interface, one listening UDP socket, a connected socket per peer, and the
// single epoll loop that moves packets between them. It owns every file descriptor and does all
// the IO; what the bytes mean is the protocol's business (src/protocol).
import { ptr } from "bun:ffi";
import { heapSize } from "bun:jsc";
import { lookup } from "node:dns/promises";
import { libc, errno } from "../sys/libc.ts";
import { EADDRNOTAVAIL, EAGAIN, EINTR, EINVAL, EIO, ENETUNREACH, EOPNOTSUPP, EPERM, errnoName } from "../sys/errno.ts";
import { Epoll } from "../sys/epoll.ts";
import { DatagramBatch, UDP_GSO_MAX_BYTES, UDP_GSO_MAX_SEGMENTS } from "../sys/mmsg.ts";
import { openTun, type TunDevice } from "../sys/tun.ts";
import { openConnectedSocket, openUdpSocket, type UdpSocket } from "../sys/udp.ts";
import {
  AF_INET,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_MAX,
  decodeSockaddr,
  encodeSockaddr,
  sockaddrMatches,
} from "../sys/sockaddr.ts";
import { AllowedIps } from "../net/allowed-ips.ts";
import { IPV4_DST_OFFSET, IPV4_SRC_OFFSET, IPV6_DST_OFFSET, IPV6_SRC_OFFSET, ipVersion } from "../net/ip-packet.ts";
import { formatEndpoint, type Endpoint } from "../net/endpoint.ts";
import { parseIp } from "../net/ip.ts";
import { Outcome, type ControlSink, type TunnelProtocol } from "../protocol/tunnel.ts";
import { peerLabel, type Config } from "../config/model.ts";
import type { Logger } from "../log.ts";
import { TcpCoalescer } from "../net/offload/coalesce.ts";
import { SEGMENT_NO_ROOM, segment } from "../net/offload/segment.ts";
import { VNET_HDR_LEN, VnetHdr, writeZeroVnetHdr } from "../net/offload/virtio-net-hdr.ts";
import { HeldPackets } from "./held-packets.ts";
import { ALL_OFFLOADS, formatOffloads, type Offloads } from "./offloads.ts";
import { PeerLink } from "./peer-link.ts";

const TOKEN_TUN = 0;
const TOKEN_LISTEN = 1;
const TOKEN_PEER_BASE = 2;

/** Datagrams per recvmmsg, and per sendmmsg without TSO. */
const BATCH = 32;
/** Receive slots with UDP GRO: each is 64 KiB, as one may hold up to 64 glued datagrams. */
const GRO_BATCH = 16;
const GRO_SLOT = 65535;
/** Datagrams per sendmmsg with TSO: one super-packet of up to 64 KiB is cut into as many as
 *  ceil(65535 / MSS) packets (48 at MTU 1420, 128 down to an MSS of 512). */
const TSO_BATCH = 128;
/** Largest read from a TUN with IFF_VNET_HDR: a 64 KiB super-packet and its header. */
const TUN_READ_MAX = VNET_HDR_LEN + 65535;
/** Batches one fd may take per loop round before the others get their turn. */
const BATCHES_PER_ROUND = 8;
/** Room before/after a packet for any protocol's header and trailer. */
const HEADROOM = 32;
const TAILROOM = 32;
/** Longest sleep in epoll_wait: bounds how late Bun's own timers and callbacks can run. */
const MAX_WAIT_MS = 1000;
/** Longest stretch of packet work between two visits to Bun's event loop. */
const YIELD_EVERY_MS = 2;
/** Longest wait after a round that did work before Bun's event loop gets its turn (see loop). */
const LINGER_MS = 1;
/** Heap compaction (see compactHeap): once the heap grew this much, at most this often. */
const COMPACT_AFTER_GROWTH = 4 << 20;
const COMPACT_EVERY_MS = 1000;
/** ...or after this many handshake messages: their garbage is mostly small objects, which eden
 *  collections keep out of heapSize() but which leave heap blocks partly used and kept. */
const COMPACT_AFTER_HANDSHAKES = 128;

export interface DeviceOptions {
  interfaceName: string;
  config: Config;
  protocol: TunnelProtocol;
  log: Logger;
  /** Default: all of them. */
  offloads?: Offloads;
}

/** Device-wide drop counters (protocol-level ones live in the protocol). */
export class DeviceCounters {
  noRoute = 0;
  sourceRejected = 0;
  notIp = 0;
  tunWriteErrors = 0;
  udpErrors = 0;
  /** Super-packets from the TUN that could not be segmented (malformed, or too many segments). */
  offloadErrors = 0;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Device implements ControlSink {
  readonly links: PeerLink[];
  readonly counters = new DeviceCounters();
  readonly allowedIps = new AllowedIps<number>();
  readonly protocol: TunnelProtocol;
  tun: TunDevice | null = null;
  listen: UdpSocket | null = null;

  private readonly log: Logger;
  private readonly config: Config;
  private readonly epoll: Epoll;
  private readonly rx: DatagramBatch;
  private readonly tx: DatagramBatch;
  private readonly txCapacity: number;
  private readonly txFd: Int32Array;
  private readonly txPeer: Int32Array;
  // TSO: where segment() puts each packet (inside tx slots, after the headroom) and its length.
  private readonly txStarts: Int32Array;
  private readonly txLengths: Int32Array;
  private readonly offloads: Offloads;
  /** Why an offload that was asked for is not in use, for the start-up line ("" if none). */
  private readonly offloadsNote: string;
  private readonly vnetHdr = new VnetHdr();
  private tunRead: Uint8Array | null = null;
  private tunReadAddress = 0;
  private readonly coalescer: TcpCoalescer | null;
  /** UDP GSO in use (switched off for good if the kernel refuses it). */
  private udpGso: boolean;
  private readonly replyName = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));
  private readonly slotSize: number;
  private readonly maxPacket: number;
  /** JS heap size after the last compaction, and when that was (see compactHeap). */
  private heapAfterCompaction = 0;
  private lastCompaction = Number.NEGATIVE_INFINITY;
  /** protocol.handshakeMessages at that time. */
  private handshakesAtCompaction = 0;
  private stopping = false;
  private running: Promise<void> | null = null;

  // Fds with data left over from the last round (edge-triggered: no new event will come).
  private tunPending = false;
  /** The datagram being received came alone in its recvmmsg batch (see drainUdp). */
  private loneDatagram = false;
  /**
   * The last TUN drain found one packet: traffic is sparse (a ping, a keystroke), so the next
   * packet is sent as soon as it is read rather than after the read that finds the TUN empty.
   */
  private tunSparse = false;
  /** Set by writeTun: this round wrote to the TUN (see loop). */
  private tunWritten = false;
  private listenPending = false;
  private readonly peerPending: Uint8Array;
  private readonly pendingPeers: Int32Array;
  private pendingPeerCount = 0;

  constructor(private readonly options: DeviceOptions) {
    this.log = options.log;
    this.config = options.config;
    this.protocol = options.protocol;
    this.maxPacket = options.config.interface.mtu;
    this.slotSize = HEADROOM + Math.max(this.maxPacket, 1500) + TAILROOM;
    const wanted = options.offloads ?? ALL_OFFLOADS;
    // Splitting a GRO buffer leaves each packet only its protocol header as headroom.
    const groFits = options.protocol.headroom >= VNET_HDR_LEN;
    this.offloads = { ...wanted, "udp-gro": wanted["udp-gro"] && groFits };
    this.offloadsNote = wanted["udp-gro"] && !groFits ? " (udp-gro needs WireGuard mode)" : "";
    this.txCapacity = this.offloads.tso ? TSO_BATCH : BATCH;
    // Datagrams land after HEADROOM so a decapsulated packet has room for a vnet header.
    this.rx = this.offloads["udp-gro"]
      ? new DatagramBatch(GRO_BATCH, HEADROOM + GRO_SLOT, HEADROOM, true)
      : new DatagramBatch(BATCH, this.slotSize, HEADROOM);
    this.tx = new DatagramBatch(this.txCapacity, this.slotSize);
    this.txFd = new Int32Array(this.txCapacity);
    this.txPeer = new Int32Array(this.txCapacity);
    this.txStarts = new Int32Array(this.txCapacity);
    this.txLengths = new Int32Array(this.txCapacity);
    for (let i = 0; i < this.txCapacity; i++) this.txStarts[i] = this.tx.slotStart(i) + HEADROOM;
    this.coalescer = this.offloads.gro ? new TcpCoalescer(64) : null;
    this.udpGso = this.offloads["udp-gso"];
    this.coalescer?.reset();
    this.epoll = new Epoll(64);
    this.links = options.config.peers.map((p, i) => new PeerLink(i, peerLabel(p)));
    this.peerPending = new Uint8Array(this.links.length);
    this.pendingPeers = new Int32Array(this.links.length);
    options.config.peers.forEach((p, i) => {
      for (const cidr of p.allowedIps) this.allowedIps.insert(cidr, i);
    });
  }

  /**
   * Creates the interface, opens the sockets, resolves endpoints. The interface's addresses and
   * routes are the caller's business (src/host), as they are wg-quick's for wireguard-go.
   */
  async start(): Promise<void> {
    const { config, log } = this;
    const iface = config.interface;
    const { tso, gro } = this.offloads;
    this.tun = openTun(this.options.interfaceName, { vnetHdr: tso || gro, tso });
    if (this.tun.vnetHdr) {
      this.tunRead = new Uint8Array(new ArrayBuffer(TUN_READ_MAX));
      this.tunReadAddress = ptr(this.tunRead);
    }
    log.info(`interface ${this.tun.name} open; offloads ${formatOffloads(this.offloads)}${this.offloadsNote}`);
    this.listen = openUdpSocket({ port: iface.listenPort, fwmark: iface.fwmark, gro: this.offloads["udp-gro"] });
    log.info(`listening on UDP port ${this.listen.port}`);
    this.epoll.addReadable(this.tun.fd, TOKEN_TUN);
    this.epoll.addReadable(this.listen.fd, TOKEN_LISTEN);

    const now = performance.now();
    for (let i = 0; i < config.peers.length; i++) {
      const ep = config.peers[i].endpoint;
      if (!ep) continue;
      const endpoint = await resolveEndpoint(ep.host, ep.port);
      if (!endpoint) {
        log.warn(`peer ${this.links[i].name}: cannot resolve endpoint ${ep.host}; waiting for it to contact us`);
        continue;
      }
      this.setEndpoint(i, endpoint);
      this.protocol.endpointKnown(i, now, this);
    }
  }

  /** Runs the loop until stop(); resolves when it has exited. */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  stop(): void {
    this.stopping = true;
  }

  /** Closes every fd; closing the TUN fd removes the interface with its addresses and routes. */
  close(): void {
    for (const link of this.links) this.closePeerSocket(link);
    if (this.listen) libc.close(this.listen.fd);
    if (this.tun) libc.close(this.tun.fd);
    this.epoll.close();
    this.listen = null;
    this.tun = null;
  }

  // ---- the loop ----------------------------------------------------------------------------

  private async loop(): Promise<void> {
    const epoll = this.epoll;
    const protocol = this.protocol;
    // Bun's event loop (signals, timers) runs when we yield: before a long wait, and after at
    // most YIELD_EVERY_MS of work. After a round that did work the loop first lingers: a wait of
    // at most LINGER_MS before any yield, so the answer to what we just sent (a ping's echo, a
    // request's response) is handled at once, and the ~15-30 µs of Bun's event loop is spent
    // when nothing is expected, not between our send and our sleep (on a small machine the peer
    // we just woke may be waiting for this CPU). Once a wait ends with nothing to do, we yield.
    let lingering = false;
    let lastYield = performance.now();
    while (!this.stopping) {
      let now = performance.now();
      const busy = this.tunPending || this.listenPending || this.pendingPeerCount > 0;
      const untilTimer = Math.ceil(protocol.nextDeadline() - now);
      const timeout = busy ? 0 : Math.max(0, Math.min(untilTimer, lingering ? LINGER_MS : MAX_WAIT_MS));
      const n = epoll.wait(timeout);
      for (let i = 0; i < n; i++) {
        const token = epoll.token(i);
        if (token === TOKEN_TUN) this.tunPending = true;
        else if (token === TOKEN_LISTEN) this.listenPending = true;
        else this.markPeerPending(token - TOKEN_PEER_BASE);
      }
      now = performance.now();
      // A long wait comes right after a yield, and time asleep is not work.
      if (!lingering && timeout > 0) lastYield = now;
      this.tunWritten = false;
      if (this.listenPending) this.listenPending = !this.drainUdp(this.listen!.fd, now);
      if (this.pendingPeerCount > 0) this.drainPeers(now);
      // Writing to the TUN runs the kernel's receive path at once, and what it answers (an echo
      // reply, a TCP ACK) is usually queued on the TUN before write() returns: read it in this
      // round rather than after another wait.
      if (this.tunWritten) this.tunPending = true;
      if (this.tunPending) this.tunPending = !this.drainTun(now);
      if (now >= protocol.nextDeadline()) {
        protocol.tick(now, this);
        this.flushAllHeld(now);
      }
      const idle = n === 0 && !busy; // the wait ran out (or a signal interrupted it)
      if (idle || now - lastYield >= YIELD_EVERY_MS) {
        if (idle && now - this.lastCompaction >= COMPACT_EVERY_MS && this.worthCompacting()) this.compactHeap();
        await yieldToEventLoop();
        lingering = false;
        lastYield = performance.now();
      } else {
        lingering = true;
      }
    }
  }

  /** Enough control work since the last compaction: many handshakes, or much heap growth. */
  private worthCompacting(): boolean {
    const handshakes = this.protocol.handshakeMessages - this.handshakesAtCompaction;
    return handshakes >= COMPACT_AFTER_HANDSHAKES || heapSize() > this.heapAfterCompaction + COMPACT_AFTER_GROWTH;
  }

  /**
   * The data path allocates nothing, so the JS heap only grows from control work: handshakes
   * (Noise state, key material) and peers coming and going. After such a burst, when the loop is
   * about to sleep, collect and hand the freed memory back instead of keeping the heap at its
   * high-water mark: with 1000 peers RSS settles at ~67 MiB instead of staying at ~83 (see
   * bench/scale.ts). At most once per COMPACT_EVERY_MS; a collection of a ~12 MB heap takes
   * 7-20 ms.
   */
  private compactHeap(): void {
    this.handshakesAtCompaction = this.protocol.handshakeMessages;
    const before = heapSize();
    const t0 = performance.now();
    Bun.gc(true);
    Bun.shrink();
    this.heapAfterCompaction = heapSize();
    this.lastCompaction = performance.now();
    if (this.log.debugOn) {
      const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
      this.log.debug(`heap compacted: ${mib(before)} -> ${mib(this.heapAfterCompaction)} MiB in ${(this.lastCompaction - t0).toFixed(1)} ms`);
    }
  }

  private markPeerPending(peer: number): void {
    if (peer < 0 || peer >= this.links.length || this.peerPending[peer]) return;
    this.peerPending[peer] = 1;
    this.pendingPeers[this.pendingPeerCount++] = peer;
  }

  private drainPeers(now: number): void {
    const count = this.pendingPeerCount;
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const peer = this.pendingPeers[i];
      const socket = this.links[peer].socket;
      const drained = socket === null || this.drainUdp(socket.fd, now);
      if (drained) this.peerPending[peer] = 0;
      else this.pendingPeers[kept++] = peer;
    }
    this.pendingPeerCount = kept;
  }

  /** TUN -> peers. Returns true once the TUN is drained (EAGAIN). */
  private drainTun(now: number): boolean {
    if (this.tunRead !== null) return this.drainTunSegmenting(now);
    const tx = this.tx;
    const readSize = this.slotSize - HEADROOM - TAILROOM;
    let reads = 0;
    for (let round = 0; round < BATCHES_PER_ROUND; round++) {
      let count = 0;
      let drained = false;
      while (count < BATCH) {
        const start = tx.slotStart(count) + HEADROOM;
        const n = this.readTun(tx.addressOf(start), readSize);
        if (n < 0) {
          drained = true;
          break;
        }
        if (this.routeOutgoing(start, n, count, now)) count++;
        if (++reads === 1 && this.tunSparse && count > 0) {
          this.flushTx(count);
          count = 0;
        }
      }
      this.flushTx(count);
      if (drained) {
        this.tunSparse = reads <= 1;
        return true;
      }
    }
    this.tunSparse = false;
    return false;
  }

  /** read(2) from the TUN, retried on EINTR; -1 once it is drained (EAGAIN) or failing (logged). */
  private readTun(address: number, size: number): number {
    for (;;) {
      const n = libc.read(this.tun!.fd, address, size);
      if (n >= 0) return n;
      const code = errno();
      if (code === EINTR) continue;
      if (code !== EAGAIN) this.log.error(`read from TUN: ${errnoName(code)}`);
      return -1;
    }
  }

  /**
   * TUN with a vnet header -> peers: each read may be a TSO super-packet, cut into packets that
   * go straight into tx slots (segment() also finishes partial checksums). A slot's datagram
   * may sit in a later slot's bytes (a dropped packet leaves a hole), which sendmmsg's iovecs
   * do not mind. Returns true once the TUN is drained.
   */
  private drainTunSegmenting(now: number): boolean {
    const buf = this.tunRead!;
    const hdr = this.vnetHdr;
    const capacity = this.txCapacity;
    const room = this.slotSize - HEADROOM - TAILROOM;
    let reads = 0;
    for (let round = 0; round < BATCHES_PER_ROUND; round++) {
      let slots = 0; // slots whose bytes are in use
      let count = 0; // datagrams ready to send
      let drained = false;
      while (slots < capacity) {
        if (reads === 1 && this.tunSparse && count > 0) {
          this.flushTx(count);
          slots = 0;
          count = 0;
        }
        const n = this.readTun(this.tunReadAddress, TUN_READ_MAX);
        if (n < 0) {
          drained = true;
          break;
        }
        reads++;
        if (n <= VNET_HDR_LEN || !hdr.read(buf, 0)) {
          this.counters.notIp++;
          continue;
        }
        let made = segment(buf, VNET_HDR_LEN, n - VNET_HDR_LEN, hdr, this.tx.bytes, this.txStarts, this.txLengths, slots, capacity - slots, room);
        if (made === SEGMENT_NO_ROOM && slots > 0) {
          this.flushTx(count);
          slots = 0;
          count = 0;
          made = segment(buf, VNET_HDR_LEN, n - VNET_HDR_LEN, hdr, this.tx.bytes, this.txStarts, this.txLengths, 0, capacity, room);
        }
        if (made < 0) {
          this.counters.offloadErrors++;
          continue;
        }
        for (let k = slots; k < slots + made; k++) {
          if (this.routeOutgoing(this.txStarts[k], this.txLengths[k], count, now)) count++;
        }
        slots += made;
      }
      this.flushTx(count);
      if (drained) {
        this.tunSparse = reads <= 1;
        return true;
      }
    }
    this.tunSparse = false;
    return false;
  }

  /**
   * Picks the peer for the packet in tx slot `slot` and lets the protocol encapsulate it.
   * Returns true if the slot now holds a datagram to send.
   */
  private routeOutgoing(start: number, length: number, slot: number, now: number): boolean {
    const bytes = this.tx.bytes;
    const version = ipVersion(bytes, start, length);
    if (version === 0) {
      this.counters.notIp++;
      return false;
    }
    const peer = this.allowedIps.lookupPacket(bytes, start + (version === 4 ? IPV4_DST_OFFSET : IPV6_DST_OFFSET), version);
    if (peer === undefined) {
      this.counters.noRoute++;
      return false;
    }
    const protocol = this.protocol;
    const outcome = protocol.encapsulate(peer, bytes, start, length, now, this);
    if (outcome === Outcome.Send) {
      const link = this.links[peer];
      const result = protocol.result;
      link.txPackets++;
      link.txBytes += length;
      this.txPeer[slot] = peer;
      if (link.socket !== null) {
        this.tx.prepareSend(slot, result.offset, result.length, 0);
        this.txFd[slot] = link.socket.fd;
      } else {
        this.tx.names.set(link.sockaddr, this.tx.nameOffset(slot));
        this.tx.prepareSend(slot, result.offset, result.length, link.sockaddrLength);
        this.txFd[slot] = this.listen!.fd;
      }
      return true;
    }
    if (outcome === Outcome.Hold) this.hold(peer, bytes, start, length);
    return false;
  }

  /** Sends tx slots [0, count), one sendmmsg per run of slots that share a socket. */
  private flushTx(count: number): void {
    let start = 0;
    while (start < count) {
      const fd = this.txFd[start];
      let end = start + 1;
      while (end < count && this.txFd[end] === fd) end++;
      const link = this.links[this.txPeer[start]];
      const connected = link.socket !== null && link.socket.fd === fd;
      if (this.udpGso && connected) this.sendRunSegmented(link, fd, start, end);
      else this.sendRun(link, fd, start, end);
      start = end;
    }
  }

  /** Sends slots [start, end) on fd with one sendmmsg. */
  private sendRun(link: PeerLink, fd: number, start: number, end: number): void {
    if (start >= end) return;
    const sent = this.tx.send(fd, start, end - start);
    if (sent < end - start) {
      this.counters.udpErrors += end - start - sent;
      if (link.socket !== null && link.socket.fd === fd) this.recoverSocket(link, this.tx.lastErrno);
    }
  }

  /**
   * Slots [start, end) all go to one peer's connected socket: each run of equal-sized datagrams
   * (the last of a run may be shorter, as a TSO super-packet's last segment is) leaves as one
   * UDP GSO message; what does not form a run goes out in plain batches.
   */
  private sendRunSegmented(link: PeerLink, fd: number, start: number, end: number): void {
    const lengths = this.tx.lengths;
    let plain = start; // first slot not yet sent
    let i = start;
    while (i < end) {
      const size = lengths[i];
      let j = i + 1;
      let total = size;
      while (j < end && j - i < UDP_GSO_MAX_SEGMENTS && total + lengths[j] <= UDP_GSO_MAX_BYTES && lengths[j] <= size) {
        total += lengths[j];
        j++;
        if (lengths[j - 1] < size) break; // a shorter datagram ends the run
      }
      if (j - i < 2) {
        i++;
        continue;
      }
      this.sendRun(link, fd, plain, i);
      const code = this.tx.sendSegmented(fd, i, j - i, size);
      if (code !== 0) this.segmentedSendFailed(link, fd, i, j, code);
      i = j;
      plain = j;
    }
    this.sendRun(link, fd, plain, end);
  }

  private segmentedSendFailed(link: PeerLink, fd: number, start: number, end: number, code: number): void {
    if (code === EIO || code === EINVAL || code === EOPNOTSUPP) {
      // Either this kernel, route or device cannot segment UDP, or the socket itself is broken
      // (EINVAL also means our address went away): the same datagrams sent plainly tell which.
      this.sendRun(link, fd, start, end);
      if (this.tx.lastErrno === 0) {
        this.udpGso = false;
        this.log.warn(`UDP GSO refused (${errnoName(code)}); sending datagrams one by one from now on`);
      }
      return;
    }
    this.counters.udpErrors += end - start;
    this.recoverSocket(link, code);
  }

  /** UDP -> TUN. Returns true once `fd` is drained. */
  private drainUdp(fd: number, now: number): boolean {
    const rx = this.rx;
    for (let round = 0; round < BATCHES_PER_ROUND; round++) {
      const n = rx.recv(fd);
      if (n < 0) {
        // A pending ICMP error (e.g. ECONNREFUSED: the peer's port is closed) was reported;
        // the datagrams behind it are still there.
        continue;
      }
      // A lone datagram has nothing to be coalesced with: it skips the coalescer.
      const lone = n === 1 && rx.segmentSizes[0] === 0;
      this.loneDatagram = lone;
      for (let i = 0; i < n; i++) {
        const nameAt = rx.nameOffset(i);
        const offset = rx.offsets[i];
        const length = rx.lengths[i];
        const size = rx.segmentSizes[i];
        if (size === 0) {
          this.receiveDatagram(fd, offset, length, nameAt, now);
          continue;
        }
        // UDP GRO: datagrams of `size` bytes back to back, the last one possibly shorter.
        for (let at = 0; at < length; at += size) {
          this.receiveDatagram(fd, offset + at, Math.min(size, length - at), nameAt, now);
        }
      }
      // The batch's packets are still in rx: write what was coalesced before the next recv.
      this.loneDatagram = false;
      if (this.coalescer !== null && !lone) this.writeCoalesced();
      if (n < rx.capacity) return true;
    }
    return false;
  }

  /** One datagram from rx.bytes[offset, offset+length), from the sockaddr at rx.names[nameAt]. */
  private receiveDatagram(fd: number, offset: number, length: number, nameAt: number, now: number): void {
    const rx = this.rx;
    const protocol = this.protocol;
    const result = protocol.result;
    const outcome = protocol.receive(rx.bytes, offset, length, rx.names, nameAt, now, this);
    if (outcome === Outcome.Drop) {
      if (this.log.traceOn) this.log.trace(`dropped datagram of ${length} bytes`);
      return;
    }
    if (outcome === Outcome.ReplyToSource) {
      this.replyToSource(fd, nameAt, result.buffer, result.offset, result.length);
      return;
    }
    const peer = result.peer;
    const link = this.links[peer];
    if (link.endpoint === null || !sockaddrMatches(rx.names, nameAt, link.endpoint)) {
      this.learnEndpoint(peer, nameAt, now);
    }
    if (outcome === Outcome.Deliver) {
      this.deliver(peer, link, result.buffer, result.offset, result.length);
    } else if (outcome === Outcome.Reply) {
      this.sendControl(peer, result.buffer, result.offset, result.length);
    }
    if (link.held !== null && link.held.count > 0 && protocol.canSend(peer)) this.flushHeld(peer, now);
  }

  /** Writes a decapsulated packet to the TUN if its source is one the peer may use. */
  private deliver(peer: number, link: PeerLink, buf: Uint8Array, offset: number, length: number): void {
    const version = ipVersion(buf, offset, length);
    if (version === 0) {
      this.counters.notIp++;
      return;
    }
    const srcAt = offset + (version === 4 ? IPV4_SRC_OFFSET : IPV6_SRC_OFFSET);
    if (this.allowedIps.lookupPacket(buf, srcAt, version) !== peer) {
      this.counters.sourceRejected++;
      if (this.log.traceOn) this.log.trace(`peer ${link.name}: packet from a source outside its AllowedIPs dropped`);
      return;
    }
    link.rxPackets++;
    link.rxBytes += length;
    const coalescer = this.coalescer;
    if (coalescer !== null && !this.loneDatagram) {
      if (!coalescer.add(buf, offset, length)) {
        this.writeCoalesced();
        coalescer.add(buf, offset, length);
      }
      return;
    }
    if (this.tun!.vnetHdr) {
      // A zero header: no offload asked, the checksums are complete.
      offset -= VNET_HDR_LEN;
      length += VNET_HDR_LEN;
      writeZeroVnetHdr(buf, offset);
    }
    this.writeTun(buf, offset, length);
  }

  /** Writes the coalescer's outputs (each a vnet header and a packet) and starts a new batch. */
  private writeCoalesced(): void {
    const coalescer = this.coalescer!;
    const outputs = coalescer.finish();
    for (let i = 0; i < outputs; i++) {
      this.writeTun(coalescer.outBuffer(i), coalescer.outOffset(i), coalescer.outLength(i));
    }
    coalescer.reset();
  }

  private writeTun(buf: Uint8Array, offset: number, length: number): void {
    const address = buf === this.rx.bytes ? this.rx.addressOf(offset) : ptr(buf, offset);
    this.tunWritten = true;
    if (libc.write(this.tun!.fd, address, length) < 0) {
      const code = errno();
      if (this.counters.tunWriteErrors++ === 0) this.log.warn(`write to TUN failed (${errnoName(code)}); counting further failures quietly`);
    }
  }

  // ---- control path (handshakes, keepalives, held packets): rare, may allocate -------------

  sendControl(peer: number, buffer: Uint8Array, offset: number, length: number): void {
    const link = this.links[peer];
    let rc: number;
    if (link.socket !== null) {
      rc = libc.sendto(link.socket.fd, ptr(buffer, offset), length, 0, null, 0);
      if (rc < 0 && this.recoverSocket(link, errno())) {
        rc = libc.sendto(link.socket.fd, ptr(buffer, offset), length, 0, null, 0);
      }
    } else if (link.endpoint !== null) {
      rc = libc.sendto(this.listen!.fd, ptr(buffer, offset), length, 0, ptr(link.sockaddr), link.sockaddrLength);
    } else {
      return;
    }
    if (rc < 0) {
      this.counters.udpErrors++;
      if (this.log.debugOn) this.log.debug(`peer ${link.name}: send failed: ${errnoName(errno())}`);
    }
  }

  /**
   * A connected socket keeps the source address it had at connect(). When our own address
   * changes (we roamed), sends on it fail: connect a fresh one, at most once a second.
   * Returns true if the peer has a new socket.
   */
  private recoverSocket(link: PeerLink, code: number): boolean {
    if (code !== EINVAL && code !== EADDRNOTAVAIL && code !== ENETUNREACH && code !== EPERM) return false;
    const now = performance.now();
    if (link.endpoint === null || now - link.reconnectedAt < 1000) return false;
    link.reconnectedAt = now;
    this.log.info(`peer ${link.name}: sending failed (${errnoName(code)}); reconnecting its socket`);
    this.setEndpoint(link.index, link.endpoint);
    return link.socket !== null;
  }

  /** Answers a datagram's source without treating it as a peer (cookie replies). */
  private replyToSource(fd: number, nameAt: number, buffer: Uint8Array, offset: number, length: number): void {
    const names = this.rx.names;
    const family = names[nameAt] | (names[nameAt + 1] << 8);
    const nameLength = family === AF_INET ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE;
    // Copy: the rx batch is reused, and the sockaddr must match the socket's family.
    this.replyName.set(names.subarray(nameAt, nameAt + nameLength));
    const target = fd === this.listen!.fd ? fd : this.listen!.fd;
    if (libc.sendto(target, ptr(buffer, offset), length, 0, ptr(this.replyName), nameLength) < 0) this.counters.udpErrors++;
  }

  private hold(peer: number, buf: Uint8Array, offset: number, length: number): void {
    const link = this.links[peer];
    link.held ??= new HeldPackets(HEADROOM, TAILROOM);
    link.held.hold(buf, offset, length);
  }

  private flushHeld(peer: number, now: number): void {
    const link = this.links[peer];
    const held = link.held!;
    const protocol = this.protocol;
    for (let i = 0; i < held.count; i++) {
      const length = held.lengths[i];
      if (protocol.encapsulate(peer, held.buffers[i], HEADROOM, length, now, this) !== Outcome.Send) break;
      const r = protocol.result;
      this.sendControl(peer, r.buffer, r.offset, r.length);
      link.txPackets++;
      link.txBytes += length;
    }
    link.held = null;
  }

  private flushAllHeld(now: number): void {
    for (const link of this.links) {
      if (link.held !== null && link.held.count > 0 && this.protocol.canSend(link.index)) this.flushHeld(link.index, now);
    }
  }

  private learnEndpoint(peer: number, nameAt: number, now: number): void {
    const endpoint = decodeSockaddr(this.rx.names, nameAt);
    if (!endpoint) return;
    const link = this.links[peer];
    const before = link.endpoint;
    this.setEndpoint(peer, endpoint);
    this.log.info(`peer ${link.name}: endpoint ${before ? `${formatEndpoint(before)} -> ` : ""}${formatEndpoint(endpoint)}`);
    this.protocol.endpointKnown(peer, now, this);
  }

  /** Points the peer at `endpoint` and gives it a socket connected there (the seed's design). */
  private setEndpoint(peer: number, endpoint: Endpoint): void {
    const link = this.links[peer];
    const listen = this.listen!;
    link.endpoint = endpoint;
    link.sockaddrLength = encodeSockaddr(endpoint, listen.family, link.sockaddr);
    this.closePeerSocket(link);
    try {
      link.socket = openConnectedSocket(listen, endpoint, {
        port: listen.port,
        fwmark: this.config.interface.fwmark,
        gro: this.offloads["udp-gro"],
      });
      this.epoll.addReadable(link.socket.fd, TOKEN_PEER_BASE + peer);
    } catch (err) {
      // The listening socket still reaches the peer; the connected one is an optimisation.
      this.log.warn(`peer ${link.name}: no connected socket (${(err as Error).message}); using the listening socket`);
      link.socket = null;
    }
  }

  private closePeerSocket(link: PeerLink): void {
    if (link.socket === null) return;
    this.epoll.remove(link.socket.fd);
    libc.close(link.socket.fd);
    link.socket = null;
  }
}

async function resolveEndpoint(host: string, port: number): Promise<Endpoint | null> {
  const literal = parseIp(host);
  if (literal) return { address: literal, port };
  try {
    const { address } = await lookup(host);
    const parsed = parseIp(address);
    return parsed ? { address: parsed, port } : null;
  } catch {
    return null;
  }
}
