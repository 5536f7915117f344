// The UDP side of the device, behind one interface (the idea of wireguard-go's conn.Bind): the
// device hands it encapsulated datagrams for a peer's route and takes received datagrams from
// it, and never sees sockets, sendmmsg batches, UDP GSO/GRO or how an endpoint is addressed.
// Two implementations: UdpBind (kernel sockets, bind-udp.ts) and MemoryBind (datagrams between
// devices in one process, bind-memory.ts).
//
// Sources: a received datagram's source is a struct sockaddr_in/_in6 in `received.sources`, the
// form the protocols take (TunnelProtocol.receive). The device passes it on and asks the Bind
// about it (isSource, sourceEndpoint); it never reads it.
import type { Endpoint } from "../net/endpoint.ts";
import type { Logger } from "../log.ts";
import { DeviceCounters } from "./counters.ts";

/** Room before/after a packet in every slot for any protocol's header and trailer. */
export const PACKET_HEADROOM = 32;
export const PACKET_TAILROOM = 32;

/** One peer's way out, owned by the Bind (for UdpBind: its sockaddr and connected socket). */
export class PeerRoute {
  endpoint: Endpoint | null = null;
  /** Datagram bytes from/to this peer, handshakes and keepalives included (`wg show transfer`). */
  rxBytes = 0;
  txBytes = 0;

  constructor(readonly label: string) {}
}

/**
 * Something datagrams arrive on: one socket (fd >= 0, watched with epoll by the device), or an
 * in-memory queue (fd -1, visited on every step).
 */
export interface ReceiveQueue {
  readonly fd: number;
  /** The device's mark: it has data left over (edge-triggered: no new event will come). */
  pending: boolean;
}

/** Told when a Bind opens or closes a queue (the device watches its fd). */
export interface QueueWatcher {
  queueOpened(queue: ReceiveQueue): void;
  queueClosed(queue: ReceiveQueue): void;
}

/**
 * The datagrams of the last receive(): datagram i is bytes[offsets[i], offsets[i]+lengths[i]),
 * from the sockaddr at sources[sourceOffsets[i]]. Each has PACKET_HEADROOM bytes (with UDP GRO:
 * at least the protocol's header) free before it, and is valid until the next receive().
 */
export class ReceivedDatagrams {
  count = 0;
  /** The batch was full: more may be waiting. */
  full = false;
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly sourceOffsets: Int32Array;

  constructor(
    readonly bytes: Uint8Array,
    readonly sources: Uint8Array,
    capacity: number,
  ) {
    this.offsets = new Int32Array(capacity);
    this.lengths = new Int32Array(capacity);
    this.sourceOffsets = new Int32Array(capacity);
  }
}

/** receive() found an error report (an ICMP error on a connected socket), not datagrams. */
export const RECEIVE_ERROR = -1;

export interface Bind {
  /** The bound UDP port (0 before open). */
  readonly port: number;
  /** The datagrams of the last receive(). */
  readonly received: ReceivedDatagrams;
  /**
   * Outgoing slots: slot i's bytes start at txSlotStart(i), txSlotSize long. The device (through
   * the Tun) reads packets into them, the protocol encapsulates in place, queue() marks them.
   */
  readonly txBytes: Uint8Array;
  readonly txCapacity: number;
  readonly txSlotSize: number;
  txSlotStart(slot: number): number;
  /** Where drop counters go (the device sets its own). */
  counters: DeviceCounters;

  setWatcher(watcher: QueueWatcher): void;
  /**
   * Listens on `port` (0: any free one) and returns the port bound. If already open, the new
   * socket is opened before the old one closes, and routes move to the new port; on failure it
   * throws and the old socket stays.
   */
  open(port: number): number;
  /** SO_MARK on every socket, now and later (0: none). Throws if the kernel refuses. */
  setMark(mark: number): void;
  close(): void;

  createRoute(label: string): PeerRoute;
  /** Points the route at `endpoint` (UdpBind: a socket connected there, the seed's design). */
  setEndpoint(route: PeerRoute, endpoint: Endpoint): void;
  /** Closes what the route holds; it is not used again. */
  closeRoute(route: PeerRoute): void;
  /** True if the source at sources[at] is the route's endpoint. Allocates nothing. */
  isSource(route: PeerRoute, sources: Uint8Array, at: number): boolean;
  /** The source at sources[at] as an endpoint (allocates: roaming only). */
  sourceEndpoint(sources: Uint8Array, at: number): Endpoint | null;

  /** Receives a batch from `queue` into `received`; returns its count or RECEIVE_ERROR. */
  receive(queue: ReceiveQueue): number;
  /** Marks slot `slot` to carry txBytes[offset, offset+length) to `route` at the next flush. */
  queue(slot: number, offset: number, length: number, route: PeerRoute): void;
  /** Sends slots [0, count). */
  flush(count: number): void;
  /** Sends one datagram to `route` now (control path: handshakes, keepalives, held packets). */
  send(route: PeerRoute, buffer: Uint8Array, offset: number, length: number): void;
  /** Answers the source at sources[at] without a route (cookie replies). */
  replyToSource(sources: Uint8Array, at: number, buffer: Uint8Array, offset: number, length: number): void;
  /**
   * Work that can wait (UdpBind: connecting new endpoints' sockets), run when the device is about
   * to sleep, after setEndpoint, once no handshake came for a while.
   */
  idle(): void;
}

export interface BindOptions {
  log: Logger;
  /** Largest IP packet the device sends (the MTU). */
  mtu: number;
  /** Outgoing slots (a TSO super-packet needs up to 128). */
  txCapacity: number;
}

/**
 * The largest packet a data path built for `mtu` carries (at least 1500): what its slots hold.
 * A larger MTU needs a new data path, i.e. a restart.
 */
export function packetRoomFor(mtu: number): number {
  return Math.max(mtu, 1500);
}

/** Bytes per slot: any packet up to packetRoomFor(mtu) with room around it. */
export function slotSizeFor(mtu: number): number {
  return PACKET_HEADROOM + packetRoomFor(mtu) + PACKET_TAILROOM;
}
