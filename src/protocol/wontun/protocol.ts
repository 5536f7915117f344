// The wontun protocol over all configured peers: finds the peer a datagram is for (by name for
// HandshakeInit, by our index otherwise), drives its session, and builds the control messages.
import { Outcome, ProtocolResult, type ControlSink, type TunnelProtocol } from "../tunnel.ts";
import { Control, STATE_NAMES, WontunSession } from "./session.ts";
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
  readonly drops = new DropCounters();
  readonly sessions: WontunSession[];

  private readonly nameField: Uint8Array;
  private readonly peerByName = new Map<string, number>();
  private readonly control = new Uint8Array(new ArrayBuffer(128));
  private next = Number.POSITIVE_INFINITY;

  /** `onTransition` hears handshake state changes (for debug logs). */
  onTransition: ((peer: number, from: string, to: string) => void) | null = null;

  constructor(localName: string, peers: WontunPeerSpec[], random: () => number = Math.random) {
    this.nameField = encodeName(localName);
    this.sessions = peers.map((p, i) => {
      encodeName(p.name); // validates length
      this.peerByName.set(p.name, i);
      return new WontunSession(i, p.persistentKeepaliveSeconds * 1000, random);
    });
  }

  receive(buf: Uint8Array, offset: number, length: number, _source: Uint8Array, _sourceOffset: number, now: number, sink: ControlSink): Outcome {
    const type = messageType(buf, offset, length);
    if (type === 0) {
      if (length !== 0) this.drops.malformed++;
      return Outcome.Drop;
    }
    const result = this.result;
    if (type === TYPE_DATA) {
      const peer = readU32(buf, offset + 1);
      const session = this.sessions[peer];
      if (session === undefined) {
        this.drops.unknownIndex++;
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
        this.drops.unknownName++;
        return Outcome.Drop;
      }
      const session = this.sessions[peer];
      const before = session.state;
      session.onInit(readU32(buf, offset + 1), now);
      this.after(peer, session, before);
      return this.reply(peer, Control.Response, now);
    }
    // TYPE_HANDSHAKE_RESPONSE: sender_idx echoes the index we assigned, i.e. our peer index.
    const peer = readU32(buf, offset + 5);
    const session = this.sessions[peer];
    if (session === undefined) {
      this.drops.unknownIndex++;
      return Outcome.Drop;
    }
    if (!session.expectsResponse()) {
      // Late duplicate, or forged: it must not reset a working session.
      this.drops.unexpected++;
      return Outcome.Drop;
    }
    const before = session.state;
    const control = session.onResponse(readU32(buf, offset + 1), now);
    this.after(peer, session, before);
    return this.reply(peer, control, now);
  }

  encapsulate(peer: number, buf: Uint8Array, offset: number, length: number, now: number, sink: ControlSink): Outcome {
    const session = this.sessions[peer];
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

  canSend(peer: number): boolean {
    return this.sessions[peer].canSend;
  }

  endpointKnown(peer: number, now: number, sink: ControlSink): void {
    const session = this.sessions[peer];
    if (session.hasEndpoint) return;
    const before = session.state;
    this.emit(peer, session.endpointKnown(now), now, sink);
    this.after(peer, session, before);
  }

  tick(now: number, sink: ControlSink): void {
    let next = Number.POSITIVE_INFINITY;
    const sessions = this.sessions;
    for (let peer = 0; peer < sessions.length; peer++) {
      const session = sessions[peer];
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

  describe(peer: number): string {
    const s = this.sessions[peer];
    return `${STATE_NAMES[s.state]}${s.remoteIndex >= 0 ? ` remote-index=${s.remoteIndex}` : ""}`;
  }

  stateName(peer: number): string {
    return STATE_NAMES[this.sessions[peer].state];
  }

  /** Builds the control message into the shared control buffer; returns its length. */
  private build(peer: number, control: Control): number {
    const session = this.sessions[peer];
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

  private emit(peer: number, control: Control, now: number, sink: ControlSink): void {
    if (control === Control.Nothing) return;
    const length = this.build(peer, control);
    this.sessions[peer].sent(now);
    sink.sendControl(peer, this.control, 0, length);
  }

  private reply(peer: number, control: Control, now: number): Outcome {
    const result = this.result;
    result.peer = peer;
    if (control === Control.Nothing) return Outcome.Accept;
    result.buffer = this.control;
    result.offset = 0;
    result.length = this.build(peer, control);
    this.sessions[peer].sent(now);
    return Outcome.Reply;
  }

  private after(peer: number, session: WontunSession, before: number): void {
    if (session.deadline < this.next) this.next = session.deadline;
    if (session.state !== before && this.onTransition) {
      this.onTransition(peer, STATE_NAMES[before], STATE_NAMES[session.state]);
    }
  }
}
