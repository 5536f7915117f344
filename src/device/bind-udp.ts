// The Bind over kernel UDP sockets: one listening socket, and per peer a socket on the same port
// connected to its endpoint (SO_REUSEPORT, the seed's design: the kernel then sorts each peer's
// datagrams onto its own socket, and sends need no address). Batches go through
// recvmmsg/sendmmsg; runs of equal-sized datagrams to one peer leave as one UDP GSO message;
// with UDP GRO, glued datagrams are split here.
import { ptr } from "bun:ffi";
import { libc, errno } from "../sys/libc.ts";
import { EADDRNOTAVAIL, EINVAL, EIO, ENETUNREACH, EOPNOTSUPP, EPERM, errnoName } from "../sys/errno.ts";
import { DatagramBatch, UDP_GSO_MAX_BYTES, UDP_GSO_MAX_SEGMENTS } from "../sys/mmsg.ts";
import { openConnectedSocket, openUdpSocket, setSocketMark, type UdpSocket } from "../sys/udp.ts";
import {
  AF_INET,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_MAX,
  decodeSockaddr,
  encodeSockaddr,
  sockaddrMatches,
} from "../sys/sockaddr.ts";
import { formatEndpoint, type Endpoint } from "../net/endpoint.ts";
import type { Logger } from "../log.ts";
import { DeviceCounters } from "./counters.ts";
import {
  PACKET_HEADROOM,
  PeerRoute,
  RECEIVE_ERROR,
  ReceivedDatagrams,
  slotSizeFor,
  type Bind,
  type BindOptions,
  type QueueWatcher,
  type ReceiveQueue,
} from "./bind.ts";

/** Datagrams per recvmmsg. */
const RECV_BATCH = 32;
/** Receive slots with UDP GRO: each is 64 KiB, as one may hold up to 64 glued datagrams. */
const GRO_BATCH = 16;
const GRO_SLOT = 65535;
/** The kernel glues at most this many datagrams into one GRO buffer (UDP_GRO_CNT_MAX). */
const GRO_MAX_SEGMENTS = 64;

export interface UdpBindOptions extends BindOptions {
  /** UDP_SEGMENT on sends (switched off for good if the kernel refuses it). */
  gso: boolean;
  /** UDP_GRO on the sockets; needs the protocol's header to be room enough for a vnet header. */
  gro: boolean;
  /**
   * A socket per peer connected to its endpoint (default true). Off with several data-path
   * threads: a connected socket would take the peer's datagrams from the SO_REUSEPORT group
   * that spreads them over the threads.
   */
  connectPeers?: boolean;
  /** A socket another thread opened in the listening socket's group: open() takes it as it is. */
  socket?: UdpSocket;
}

/** A socket the device may be told is readable. */
class UdpQueue implements ReceiveQueue {
  pending = false;
  constructor(readonly socket: UdpSocket) {}
  get fd(): number {
    return this.socket.fd;
  }
}

class UdpRoute extends PeerRoute {
  /** The endpoint as a sockaddr for the listening socket's sendto/sendmmsg. */
  readonly sockaddr = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));
  sockaddrLength = 0;
  /** Socket on our port connected to the endpoint, if open. */
  connected: UdpQueue | null = null;
  /** When the connected socket was last re-created after a send error (ms, monotonic). */
  reconnectedAt = Number.NEGATIVE_INFINITY;
}

const NO_WATCHER: QueueWatcher = { queueOpened() {}, queueClosed() {} };

export class UdpBind implements Bind {
  readonly received: ReceivedDatagrams;
  readonly txBytes: Uint8Array;
  readonly txCapacity: number;
  readonly txSlotSize: number;
  counters = new DeviceCounters();

  private readonly log: Logger;
  private readonly rx: DatagramBatch;
  private readonly tx: DatagramBatch;
  /** Per tx slot: the socket it leaves on and the route it goes to. */
  private readonly txFd: Int32Array;
  private readonly txRoute: (UdpRoute | null)[];
  private readonly gro: boolean;
  private readonly connectPeers: boolean;
  private adopted: UdpSocket | null;
  private gso: boolean;
  private mark = 0;
  private listen: UdpQueue | null = null;
  private watcher: QueueWatcher = NO_WATCHER;
  private readonly routes = new Set<UdpRoute>();
  /** Routes whose connected socket waits for idle(). */
  private readonly unconnected = new Set<UdpRoute>();
  private readonly replyName = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));

  constructor(options: UdpBindOptions) {
    this.log = options.log;
    this.gro = options.gro;
    this.gso = options.gso;
    this.connectPeers = options.connectPeers ?? true;
    this.adopted = options.socket ?? null;
    this.txCapacity = options.txCapacity;
    this.txSlotSize = slotSizeFor(options.mtu);
    // Datagrams land after the headroom so a decapsulated packet has room for a vnet header.
    this.rx = this.gro
      ? new DatagramBatch(GRO_BATCH, PACKET_HEADROOM + GRO_SLOT, PACKET_HEADROOM, true)
      : new DatagramBatch(RECV_BATCH, this.txSlotSize, PACKET_HEADROOM);
    this.received = new ReceivedDatagrams(this.rx.bytes, this.rx.names, this.gro ? GRO_BATCH * GRO_MAX_SEGMENTS : RECV_BATCH);
    this.tx = new DatagramBatch(this.txCapacity, this.txSlotSize);
    this.txBytes = this.tx.bytes;
    this.txFd = new Int32Array(this.txCapacity);
    this.txRoute = new Array<UdpRoute | null>(this.txCapacity).fill(null);
  }

  get port(): number {
    return this.listen?.socket.port ?? 0;
  }

  /** The listening socket (its port and family), once open. */
  get listenSocket(): UdpSocket | null {
    return this.listen?.socket ?? null;
  }

  txSlotStart(slot: number): number {
    return this.tx.slotStart(slot);
  }

  setWatcher(watcher: QueueWatcher): void {
    this.watcher = watcher;
  }

  open(port: number): number {
    const old = this.listen;
    if (old !== null && port !== 0 && port === old.socket.port) return port;
    // The new socket first: if the port cannot be had, nothing changes.
    const socket = this.adopted ?? openUdpSocket({ port, fwmark: this.mark, gro: this.gro });
    this.adopted = null;
    const listen = new UdpQueue(socket);
    this.listen = listen;
    this.watcher.queueOpened(listen);
    if (old !== null) {
      for (const route of this.routes) if (route.endpoint !== null) this.connect(route, route.endpoint);
      this.closeQueue(old);
    }
    return listen.socket.port;
  }

  setMark(mark: number): void {
    if (this.listen !== null) setSocketMark(this.listen.fd, mark);
    for (const route of this.routes) if (route.connected !== null) setSocketMark(route.connected.fd, mark);
    this.mark = mark;
  }

  close(): void {
    for (const route of this.routes) this.closeConnected(route);
    this.routes.clear();
    this.unconnected.clear();
    if (this.listen !== null) this.closeQueue(this.listen);
    this.listen = null;
  }

  // ---- routes ------------------------------------------------------------------------------

  createRoute(label: string): PeerRoute {
    const route = new UdpRoute(label);
    this.routes.add(route);
    return route;
  }

  setEndpoint(route: PeerRoute, endpoint: Endpoint): void {
    this.connect(route as UdpRoute, endpoint, false);
  }

  idle(): void {
    if (this.unconnected.size === 0) return;
    for (const route of this.unconnected) if (route.endpoint !== null) this.connect(route, route.endpoint);
    this.unconnected.clear();
  }

  closeRoute(route: PeerRoute): void {
    const udp = route as UdpRoute;
    this.closeConnected(udp);
    this.routes.delete(udp);
    this.unconnected.delete(udp);
    // A slot queued for it must not reach a closed fd; flush() skips routes without a socket.
    for (let i = 0; i < this.txCapacity; i++) if (this.txRoute[i] === udp) this.txRoute[i] = null;
  }

  isSource(route: PeerRoute, sources: Uint8Array, at: number): boolean {
    return route.endpoint !== null && sockaddrMatches(sources, at, route.endpoint);
  }

  sourceEndpoint(sources: Uint8Array, at: number): Endpoint | null {
    return decodeSockaddr(sources, at);
  }

  /** Takes `socket` (opened by another thread, as `socket` in the options) in place of the listening one. */
  replaceSocket(socket: UdpSocket): void {
    this.adopted = socket;
    this.open(0);
  }

  /**
   * Points the route at `endpoint` and gives it a socket connected there: at once (`now`), or at
   * the next idle(), which the device calls once handshakes have settled (a new endpoint: a server
   * taking a burst of handshakes answers them first and opens the ~1000 sockets after, 60-70 µs
   * each; meanwhile the listening socket carries them).
   */
  private connect(route: UdpRoute, endpoint: Endpoint, now = true): void {
    const listen = this.listen!.socket;
    route.endpoint = endpoint;
    route.sockaddrLength = encodeSockaddr(endpoint, listen.family, route.sockaddr);
    this.closeConnected(route);
    if (!this.connectPeers) return;
    if (!now) {
      this.unconnected.add(route);
      return;
    }
    this.unconnected.delete(route);
    try {
      route.connected = new UdpQueue(openConnectedSocket(listen, endpoint, { port: listen.port, fwmark: this.mark, gro: this.gro }));
      this.watcher.queueOpened(route.connected);
    } catch (err) {
      // The listening socket still reaches the peer; the connected one is an optimisation.
      this.log.warn(`peer ${route.label}: no connected socket to ${formatEndpoint(endpoint)} (${(err as Error).message}); using the listening socket`);
      route.connected = null;
    }
  }

  private closeConnected(route: UdpRoute): void {
    if (route.connected === null) return;
    this.closeQueue(route.connected);
    route.connected = null;
  }

  private closeQueue(queue: UdpQueue): void {
    this.watcher.queueClosed(queue);
    libc.close(queue.fd);
  }

  // ---- receiving ---------------------------------------------------------------------------

  receive(queue: ReceiveQueue): number {
    const rx = this.rx;
    const n = rx.recv(queue.fd);
    // A pending ICMP error (e.g. ECONNREFUSED: the peer's port is closed) was reported; the
    // datagrams behind it are still there.
    if (n < 0) return RECEIVE_ERROR;
    const out = this.received;
    out.full = n === rx.capacity;
    if (!this.gro) {
      for (let i = 0; i < n; i++) {
        out.offsets[i] = rx.offsets[i];
        out.lengths[i] = rx.lengths[i];
        out.sourceOffsets[i] = rx.nameOffset(i);
      }
      out.count = n;
      return n;
    }
    let count = 0;
    const capacity = out.offsets.length;
    for (let i = 0; i < n; i++) {
      const offset = rx.offsets[i];
      const length = rx.lengths[i];
      const size = rx.segmentSizes[i];
      const nameAt = rx.nameOffset(i);
      if (size === 0) {
        if (count === capacity) break;
        out.offsets[count] = offset;
        out.lengths[count] = length;
        out.sourceOffsets[count++] = nameAt;
        continue;
      }
      // UDP GRO: datagrams of `size` bytes back to back, the last one possibly shorter.
      for (let at = 0; at < length && count < capacity; at += size) {
        out.offsets[count] = offset + at;
        out.lengths[count] = Math.min(size, length - at);
        out.sourceOffsets[count++] = nameAt;
      }
    }
    out.count = count;
    return count;
  }

  // ---- sending -----------------------------------------------------------------------------

  queue(slot: number, offset: number, length: number, route: PeerRoute): void {
    const udp = route as UdpRoute;
    this.txRoute[slot] = udp;
    if (udp.connected !== null) {
      this.tx.prepareSend(slot, offset, length, 0);
      this.txFd[slot] = udp.connected.fd;
    } else {
      this.tx.names.set(udp.sockaddr, this.tx.nameOffset(slot));
      this.tx.prepareSend(slot, offset, length, udp.sockaddrLength);
      this.txFd[slot] = this.listen!.fd;
    }
  }

  /** One sendmmsg (or UDP GSO message) per run of slots that share a socket and a peer. */
  flush(count: number): void {
    let start = 0;
    while (start < count) {
      const fd = this.txFd[start];
      const route = this.txRoute[start];
      let end = start + 1;
      while (end < count && this.txFd[end] === fd && this.txRoute[end] === route) end++;
      if (route !== null) {
        if (this.gso) this.sendRunSegmented(route, fd, start, end);
        else this.sendRun(route, fd, start, end);
      }
      start = end;
    }
  }

  /** Sends slots [start, end) on fd with one sendmmsg. */
  private sendRun(route: UdpRoute, fd: number, start: number, end: number): void {
    if (start >= end) return;
    const sent = this.tx.send(fd, start, end - start);
    // Which datagrams failed is not known: count the first `sent` as the ones that left.
    this.countSent(start, start + sent);
    if (sent < end - start) {
      this.counters.udpErrors += end - start - sent;
      if (route.connected !== null && route.connected.fd === fd) this.recoverSocket(route, this.tx.lastErrno);
    }
  }

  private countSent(start: number, end: number): void {
    const lengths = this.tx.lengths;
    for (let i = start; i < end; i++) this.txRoute[i]!.txBytes += lengths[i];
  }

  /**
   * Slots [start, end) all go to one peer on one socket: each run of equal-sized datagrams
   * (the last of a run may be shorter, as a TSO super-packet's last segment is) leaves as one
   * UDP GSO message; what does not form a run goes out in plain batches.
   */
  private sendRunSegmented(route: UdpRoute, fd: number, start: number, end: number): void {
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
      this.sendRun(route, fd, plain, i);
      const code = this.tx.sendSegmented(fd, i, j - i, size);
      if (code === 0) route.txBytes += total;
      else this.segmentedSendFailed(route, fd, i, j, code);
      i = j;
      plain = j;
    }
    this.sendRun(route, fd, plain, end);
  }

  private segmentedSendFailed(route: UdpRoute, fd: number, start: number, end: number, code: number): void {
    if (code === EIO || code === EINVAL || code === EOPNOTSUPP) {
      // Either this kernel, route or device cannot segment UDP, or the socket itself is broken
      // (EINVAL also means our address went away): the same datagrams sent plainly tell which.
      this.sendRun(route, fd, start, end);
      if (this.tx.lastErrno === 0) {
        this.gso = false;
        this.log.warn(`UDP GSO refused (${errnoName(code)}); sending datagrams one by one from now on`);
      }
      return;
    }
    this.counters.udpErrors += end - start;
    this.recoverSocket(route, code);
  }

  // ---- control path: rare, may allocate ----------------------------------------------------

  send(route: PeerRoute, buffer: Uint8Array, offset: number, length: number): void {
    const udp = route as UdpRoute;
    let rc: number;
    if (udp.connected !== null) {
      rc = libc.sendto(udp.connected.fd, ptr(buffer, offset), length, 0, null, 0);
      if (rc < 0 && this.recoverSocket(udp, errno())) {
        rc = libc.sendto(udp.connected!.fd, ptr(buffer, offset), length, 0, null, 0);
      }
    } else if (udp.endpoint !== null && this.listen !== null) {
      rc = libc.sendto(this.listen.fd, ptr(buffer, offset), length, 0, ptr(udp.sockaddr), udp.sockaddrLength);
    } else {
      return;
    }
    if (rc < 0) {
      // Read errno before anything else makes a syscall.
      const code = errno();
      this.counters.udpErrors++;
      if (this.log.debugOn) this.log.debug(`peer ${udp.label}: send failed: ${errnoName(code)}`);
      return;
    }
    udp.txBytes += length;
  }

  replyToSource(sources: Uint8Array, at: number, buffer: Uint8Array, offset: number, length: number): void {
    if (this.listen === null) return;
    const family = sources[at] | (sources[at + 1] << 8);
    const nameLength = family === AF_INET ? SOCKADDR_IN_SIZE : SOCKADDR_IN6_SIZE;
    // Copy: the receive batch is reused. Sent from the listening socket, whichever socket the
    // datagram came in on (its sockaddr has that socket's family, which all ours share).
    this.replyName.set(sources.subarray(at, at + nameLength));
    if (libc.sendto(this.listen.fd, ptr(buffer, offset), length, 0, ptr(this.replyName), nameLength) < 0) this.counters.udpErrors++;
  }

  /**
   * A connected socket keeps the source address it had at connect(). When our own address
   * changes (we roamed), sends on it fail: connect a fresh one, at most once a second.
   * Returns true if the route has a new socket.
   */
  private recoverSocket(route: UdpRoute, code: number): boolean {
    if (code !== EINVAL && code !== EADDRNOTAVAIL && code !== ENETUNREACH && code !== EPERM) return false;
    const now = performance.now();
    if (route.endpoint === null || now - route.reconnectedAt < 1000) return false;
    route.reconnectedAt = now;
    this.log.info(`peer ${route.label}: sending failed (${errnoName(code)}); reconnecting its socket`);
    this.connect(route, route.endpoint);
    return route.connected !== null;
  }
}
