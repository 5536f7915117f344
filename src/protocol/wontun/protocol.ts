// The wontun protocol over all configured peers: finds the peer a datagram is for (by name for
// HandshakeInit, by our index otherwise), drives its session, and builds the control messages.
// The index we give a peer on the wire is its PeerId: unique while we live, as the seed's
// protocol needs (the seed used the peer's position in the config).
import { Outcome, ProtocolResult, type ControlSink, type PeerId, type ProtocolPeerStatus, type TunnelProtocol } from "../tunnel.ts";
import { Control, HandshakeState, STATE_NAMES, WontunSession } from "./session.ts";
import {
  DATA_HEADER_SIZE,
  TYPE_DATA,
  TYPE_HANDSHAKE_INIT,
  TYPE_HANDSHAKE_RESPONSE,
  decodeInitName,
  encodeName,
  messageType,
  readU32,
  writeDataHeader,
  writeHandshakeInit,
  writeHandshakeResponse,
} from "./messages.ts";

export interface WontunPeerSpec {
  id: PeerId;
  name: string;
  persistentKeepaliveSeconds: number;
}

/** Why datagrams were dropped, for status output and tests. */
export class DropCounters {
  malformed = 0;
  unknownName = 0;
  unknownIndex = 0;
  unexpected = 0;
}

export class WontunProtocol implements TunnelProtocol {
  readonly headroom = DATA_HEADER_SIZE;
  readonly tailroom = 0;
  readonly result = new ProtocolResult();
  handshakeMessages = 0;
  readonly counters = new DropCounters();
  readonly sessions = new Map<PeerId, WontunSession>();

  private nameField: Uint8Array;
  private readonly peerByName = new Map<string, PeerId>();
  private readonly names = new Map<PeerId, string>();
  private readonly control = new Uint8Array(new ArrayBuffer(128));
  private next = Number.POSITIVE_INFINITY;

  /** `onTransition` hears handshake state changes (for debug logs). */
  onTransition: ((peer: PeerId, from: string, to: string) => void) | null = null;

  constructor(
    localName: string,
    peers: WontunPeerSpec[] = [],
    private readonly random: () => number = Math.random,
    /** Wall clock in ms, for the last-handshake time status reports; the monotonic `now` comes with each call. */
    private readonly wallClock: () => number = Date.now,
  ) {
    this.nameField = encodeName(localName);
    for (const spec of peers) this.addPeer(spec);
  }

  // ---- peers come and go (the operations layer calls these) ---------------------------------

  addPeer(spec: WontunPeerSpec): void {
    if (this.sessions.has(spec.id) || this.peerByName.has(spec.name)) throw new Error(`peer ${spec.id} or name ${spec.name} exists already`);
    if (spec.id < 0 || spec.id > 0xffffffff) throw new Error(`peer id ${spec.id} does not fit the wire index`);
    encodeName(spec.name); // validates length
    this.peerByName.set(spec.name, spec.id);
    this.names.set(spec.id, spec.name);
    this.sessions.set(spec.id, new WontunSession(spec.id, spec.persistentKeepaliveSeconds * 1000, this.random));
  }

  removePeer(peer: PeerId): void {
    const name = this.names.get(peer);
    if (name === undefined) return;
    this.sessions.delete(peer);
    this.names.delete(peer);
    this.peerByName.delete(name);
  }

  peerByNameOf(name: string): PeerId | null {
    return this.peerByName.get(name) ?? null;
  }

  /** A new keepalive interval for a running peer; its session goes on. */
  updatePeer(peer: PeerId, persistentKeepaliveSeconds: number): void {
    const session = this.sessions.get(peer);
    if (!session) return;
    session.setPersistentKeepalive(persistentKeepaliveSeconds * 1000);
    if (session.deadline < this.next) this.next = session.deadline;
  }

  /** The name we send in HandshakeInit (reload may change it); sessions go on. */
  setLocalName(name: string): void {
    this.nameField = encodeName(name);
  }

  receive(buf: Uint8Array, offset: number, length: number, _source: Uint8Array, _sourceOffset: number, now: number, sink: ControlSink): Outcome {
    const type = messageType(buf, offset, length);
    if (type === 0) {
      if (length !== 0) this.counters.malformed++;
      return Outcome.Drop;
    }
    const result = this.result;
    if (type === TYPE_DATA) {
      const peer = readU32(buf, offset + 1);
      const session = this.sessions.get(peer);
      if (session === undefined) {
        this.counters.unknownIndex++;
        return Outcome.Drop;
      }
      result.peer = peer;
      const payload = length - DATA_HEADER_SIZE;
      const before = session.state;
      this.emit(peer, session.onData(payload > 0, now), now, sink);
      this.after(peer, session, before);
      if (payload === 0) return Outcome.Accept;
      result.buffer = buf;
      result.offset = offset + DATA_HEADER_SIZE;
      result.length = payload;
      return Outcome.Deliver;
    }
    this.handshakeMessages++;
    if (type === TYPE_HANDSHAKE_INIT) {
      const peer = this.peerByName.get(decodeInitName(buf, offset));
      if (peer === undefined) {
        this.counters.unknownName++;
        return Outcome.Drop;
      }
      const session = this.sessions.get(peer)!;
      const before = session.state;
      session.onInit(readU32(buf, offset + 1), now);
      this.after(peer, session, before);
      return this.reply(peer, Control.Response, now);
    }
    // TYPE_HANDSHAKE_RESPONSE: sender_idx echoes the index we assigned, i.e. our peer index.
    const peer = readU32(buf, offset + 5);
    const session = this.sessions.get(peer);
    if (session === undefined) {
      this.counters.unknownIndex++;
      return Outcome.Drop;
    }
    if (!session.expectsResponse()) {
      // Late duplicate, or forged: it must not reset a working session.
      this.counters.unexpected++;
      return Outcome.Drop;
    }
    const before = session.state;
    const control = session.onResponse(readU32(buf, offset + 1), now);
    this.after(peer, session, before);
    return this.reply(peer, control, now);
  }

  encapsulate(peer: PeerId, buf: Uint8Array, offset: number, length: number, now: number, sink: ControlSink): Outcome {
    const session = this.sessions.get(peer);
    if (session === undefined) return Outcome.Drop;
    if (!session.canSend) {
      const before = session.state;
      this.emit(peer, session.onSend(true, now), now, sink);
      this.after(peer, session, before);
      return session.hasEndpoint ? Outcome.Hold : Outcome.Drop;
    }
    session.onSend(true, now);
    if (session.deadline < this.next) this.next = session.deadline;
    const start = offset - DATA_HEADER_SIZE;
    writeDataHeader(buf, start, session.remoteIndex);
    const result = this.result;
    result.peer = peer;
    result.buffer = buf;
    result.offset = start;
    result.length = length + DATA_HEADER_SIZE;
    return Outcome.Send;
  }

  canSend(peer: PeerId): boolean {
    return this.sessions.get(peer)?.canSend ?? false;
  }

  endpointKnown(peer: PeerId, now: number, sink: ControlSink): void {
    const session = this.sessions.get(peer);
    if (session === undefined || session.hasEndpoint) return;
    const before = session.state;
    this.emit(peer, session.endpointKnown(now), now, sink);
    this.after(peer, session, before);
  }

  tick(now: number, sink: ControlSink): void {
    let next = Number.POSITIVE_INFINITY;
    for (const [peer, session] of this.sessions) {
      for (let guard = 0; guard < 4 && session.deadline <= now; guard++) {
        const before = session.state;
        this.emit(peer, session.tick(now), now, sink);
        this.after(peer, session, before);
      }
      if (session.deadline < next) next = session.deadline;
    }
    this.next = next;
  }

  nextDeadline(): number {
    return this.next;
  }

  peerStatus(peer: PeerId): ProtocolPeerStatus {
    const s = this.sessions.get(peer);
    if (!s) return { state: "unknown", lastHandshakeWallMs: 0 };
    return { state: STATE_NAMES[s.state], lastHandshakeWallMs: s.lastHandshakeWallMs };
  }

  stateName(peer: PeerId): string {
    const s = this.sessions.get(peer);
    return s ? STATE_NAMES[s.state] : "unknown";
  }

  drops(): Record<string, number> {
    return { ...this.counters };
  }

  /** Builds the control message into the shared control buffer; returns its length. */
  private build(peer: PeerId, control: Control): number {
    const session = this.sessions.get(peer)!;
    switch (control) {
      case Control.Init:
        return writeHandshakeInit(this.control, 0, peer, this.nameField);
      case Control.Response:
        return writeHandshakeResponse(this.control, 0, peer, session.remoteIndex);
      case Control.Keepalive:
        writeDataHeader(this.control, 0, session.remoteIndex);
        return DATA_HEADER_SIZE;
      default:
        return 0;
    }
  }

  private emit(peer: PeerId, control: Control, now: number, sink: ControlSink): void {
    if (control === Control.Nothing) return;
    const length = this.build(peer, control);
    this.sessions.get(peer)!.sent(now);
    sink.sendControl(peer, this.control, 0, length);
  }

  private reply(peer: PeerId, control: Control, now: number): Outcome {
    const result = this.result;
    result.peer = peer;
    if (control === Control.Nothing) return Outcome.Accept;
    result.buffer = this.control;
    result.offset = 0;
    result.length = this.build(peer, control);
    this.sessions.get(peer)!.sent(now);
    return Outcome.Reply;
  }

  private after(peer: PeerId, session: WontunSession, before: number): void {
    if (session.deadline < this.next) this.next = session.deadline;
    if (session.state === HandshakeState.Connected && before !== HandshakeState.Connected) session.lastHandshakeWallMs = this.wallClock();
    if (session.state !== before && this.onTransition) {
      this.onTransition(peer, STATE_NAMES[before], STATE_NAMES[session.state]);
    }
  }
}
