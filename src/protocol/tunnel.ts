// The contract between the device loop (which owns every file descriptor) and a tunnel
// protocol (pure logic: bytes and time in, decisions out). The device calls the protocol with
// datagrams, outgoing IP packets and the clock; the protocol answers with an Outcome code and
// fills `result`. Nothing here allocates per packet: `result` is one reused object.

/**
 * A peer: a number the operations layer assigns and never reuses while the process lives. It is
 * neither a config position nor an array slot; protocols and the device key their state by it.
 */
export type PeerId = number;

/** What a protocol knows of one peer, for status output. */
export interface ProtocolPeerStatus {
  /** The session in words ("up", "handshaking", "no session"; wontun: its state name). */
  state: string;
  /** Wall-clock ms of the last completed handshake; 0 = never. */
  lastHandshakeWallMs: number;
}

/** What the device should do with what it just handed the protocol. */
export const enum Outcome {
  /** Invalid, unknown or unwanted: drop it. */
  Drop = 0,
  /** Valid datagram from result.peer that carries nothing for the TUN (e.g. a keepalive). */
  Accept = 1,
  /** Valid datagram from result.peer: write result.buffer[offset, offset+length) to the TUN. */
  Deliver = 2,
  /** Valid datagram from result.peer: send result.buffer[offset, offset+length) back to it. */
  Reply = 3,
  /** Outgoing packet encapsulated in place: send result.buffer[offset, offset+length) to result.peer. */
  Send = 4,
  /** Outgoing packet cannot be sent yet (no session): hold it until the peer is ready. */
  Hold = 5,
  /**
   * Not from a known peer (or not authenticated yet): send result.buffer[offset, offset+length)
   * back to the datagram's source address, and learn nothing from it (cookie replies).
   */
  ReplyToSource = 6,
}

export class ProtocolResult {
  peer: PeerId = -1;
  buffer: Uint8Array = new Uint8Array(0);
  offset = 0;
  length = 0;
}

/** Where timers and handshakes send their control datagrams. */
export interface ControlSink {
  sendControl(peer: PeerId, buffer: Uint8Array, offset: number, length: number): void;
}

/** Milliseconds on a monotonic clock. */
export type Millis = number;

export interface TunnelProtocol {
  /** Bytes the protocol writes in front of an outgoing IP packet. */
  readonly headroom: number;
  /** Bytes it may append after an outgoing IP packet. */
  readonly tailroom: number;
  readonly result: ProtocolResult;
  /**
   * Handshake messages received or sent so far. Unlike the data path, handshakes may allocate:
   * the device uses the count to decide when to hand freed memory back.
   */
  readonly handshakeMessages: number;

  /**
   * A datagram arrived from the sockaddr at source[sourceOffset] (struct sockaddr_in or _in6);
   * `sink` takes any extra control datagrams it provokes.
   */
  receive(
    buffer: Uint8Array,
    offset: number,
    length: number,
    source: Uint8Array,
    sourceOffset: number,
    now: Millis,
    sink: ControlSink,
  ): Outcome;
  /**
   * The IP packet in buffer[offset, offset+length) goes to `peer`; buffer has `headroom` bytes
   * free before offset and `tailroom` after. Returns Send, Hold or Drop.
   */
  encapsulate(peer: PeerId, buffer: Uint8Array, offset: number, length: number, now: Millis, sink: ControlSink): Outcome;
  /** True once packets to `peer` can be encapsulated (held packets may be flushed). */
  canSend(peer: PeerId): boolean;
  /** The device learnt or configured an endpoint for `peer`. */
  endpointKnown(peer: PeerId, now: Millis, sink: ControlSink): void;
  /**
   * Work that would otherwise fall on a later handshake (WireGuard: each peer's static-static DH),
   * done while the device is idle: at most `batch` units per call. True while some remains.
   */
  prepare?(batch: number): boolean;
  /** Runs due timers (retransmits, keepalives). */
  tick(now: Millis, sink: ControlSink): void;
  /** When tick() next has work, or Infinity. */
  nextDeadline(): Millis;
  /** Forgets `peer`: its sessions are wiped and its indices retired. */
  removePeer(peer: PeerId): void;
  /** The session state of `peer`, for status output. */
  peerStatus(peer: PeerId): ProtocolPeerStatus;
  /** Datagrams dropped so far, by reason. */
  drops(): Record<string, number>;
}
