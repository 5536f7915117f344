// WireGuard's data path for the extra data-path threads: sealing and opening transport messages
// with the keypairs the main thread published in SharedSessions. Handshakes, timers and held
// packets stay with the main thread: what this thread cannot do (no session, a handshake message
// that landed here, an endpoint it learnt, a keypair to confirm or renew) it hands over through
// ThreadEvents. Sans-IO like the protocols: bytes and time in, Outcome out.
import type { AeadBackend, AeadKey } from "../crypto/aead.ts";
import { wipe } from "../crypto/primitives.ts";
import { ipTotalLength, ipVersion } from "../net/ip-packet.ts";
import { Outcome, ProtocolResult, type ControlSink, type PeerId, type ProtocolPeerStatus, type TunnelProtocol } from "../protocol/tunnel.ts";
import { REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_ON_RECEIVE_AFTER } from "../protocol/wireguard/constants.ts";
import { openTransport, type OpeningKeypair } from "../protocol/wireguard/transport.ts";
import {
  PADDING_MULTIPLE,
  TRANSPORT_COUNTER,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_RECEIVER,
  TYPE_TRANSPORT,
  messageType,
  readU32,
  writeCounter,
  writeType,
  writeU32,
} from "../protocol/wireguard/messages.ts";
import {
  A_AUTH_RECEIVED,
  A_AUTH_SENT,
  A_DATA_RECEIVED,
  A_DATA_SENT,
  COUNTER_BLOCK,
  KF_EXPIRED,
  KF_INITIATOR,
  KF_NEXT,
  STALE_BLOCKS,
  SharedSessions,
} from "./shared-sessions.ts";

const TAG_SIZE = 16;
/** Packets a thread hands to the main thread per peer while it has no session (wireguard-go stages 128). */
const HELD_CAP = 128;

/** What a data-path thread tells the main thread. */
export interface ThreadEvents {
  /** A packet for `peer`, which has no usable session here: the main thread holds it. */
  held(peer: PeerId, packet: Uint8Array): void;
  /** A handshake message (or cookie reply) that was steered here: the main thread answers it. */
  handshake(datagram: Uint8Array, source: Uint8Array): void;
  /** The main thread has requests to read in SharedSessions (a handshake, a confirmation). */
  wake(): void;
  /** This thread learnt a new endpoint for `peer` (the device has it). */
  endpoint(peer: PeerId): void;
}

/** A keypair slot's receive key in this thread, as openTransport needs it (made once per keypair, not per packet). */
class SlotKeys implements OpeningKeypair {
  readonly createdAt: number;

  constructor(
    private readonly aead: AeadBackend,
    private readonly sessions: SharedSessions,
    private readonly slot: number,
    readonly generation: number,
    readonly key: AeadKey,
  ) {
    this.createdAt = sessions.createdAt(slot);
  }

  open(counter: number, buf: Uint8Array, offset: number, length: number): boolean {
    return this.aead.open(this.key, counter, buf, offset, length);
  }

  acceptCounter(counter: number): boolean {
    return this.sessions.acceptCounter(this.slot, counter);
  }
}

export class ThreadProtocol implements TunnelProtocol {
  readonly headroom = TRANSPORT_HEADER_SIZE;
  readonly tailroom = PADDING_MULTIPLE - 1 + TAG_SIZE;
  readonly result = new ProtocolResult();
  readonly handshakeMessages = 0;
  readonly counters = { unknownIndex: 0, expiredKeypair: 0, decryptFailed: 0, replayedData: 0, malformed: 0, badInnerPacket: 0, noSession: 0 };
  /** Set while the device applies a change the main thread sent (no echo back). */
  applyingMainChange = false;

  private readonly peerSlotById = new Map<PeerId, number>();
  private readonly peerIdBySlot: (PeerId | undefined)[] = [];
  // Per peer slot: the keypair slot and generation this thread sends with, its key, and the
  // counters left in the block it holds.
  private readonly sendSlot: Int32Array;
  private readonly sendGeneration: Int32Array;
  private readonly sendNext: Float64Array;
  private readonly sendEnd: Float64Array;
  private readonly sendKeys: (AeadKey | null)[];
  // Per keypair slot: this thread's receive key, with the generation it was read under.
  private readonly openKeys: (SlotKeys | null)[];
  private readonly sendScratch = new Uint8Array(32);
  private readonly recvScratch = new Uint8Array(32);

  constructor(
    private readonly sessions: SharedSessions,
    private readonly aead: AeadBackend,
    private readonly thread: number,
    private readonly threads: number,
    private readonly mtu: number,
    private readonly events: ThreadEvents,
  ) {
    const peers = sessions.peerCapacity;
    this.sendSlot = new Int32Array(peers).fill(-1);
    this.sendGeneration = new Int32Array(peers);
    this.sendNext = new Float64Array(peers);
    this.sendEnd = new Float64Array(peers);
    this.sendKeys = new Array<AeadKey | null>(peers).fill(null);
    this.openKeys = new Array<SlotKeys | null>(sessions.keypairCapacity).fill(null);
  }

  // ---- peers (the main thread's messages) ------------------------------------------------

  addPeer(id: PeerId, peerSlot: number): void {
    this.peerSlotById.set(id, peerSlot);
    this.peerIdBySlot[peerSlot] = id;
  }

  removePeer(id: PeerId): void {
    const slot = this.peerSlotById.get(id);
    if (slot === undefined) return;
    this.peerSlotById.delete(id);
    this.peerIdBySlot[slot] = undefined;
    this.dropSendKey(slot);
  }

  // ---- packets out -----------------------------------------------------------------------

  encapsulate(peerId: PeerId, buf: Uint8Array, offset: number, length: number, now: number, _sink: ControlSink): Outcome {
    const ps = this.peerSlotById.get(peerId);
    if (ps === undefined) return Outcome.Drop;
    const sessions = this.sessions;
    const slot = sessions.currentSlot(ps);
    if (slot < 0) return this.noSession(peerId, ps, buf, offset, length);
    const generation = sessions.generation(slot);
    if ((this.sendSlot[ps] !== slot || this.sendGeneration[ps] !== generation) && !this.loadSendKey(ps, slot, generation)) {
      return this.noSession(peerId, ps, buf, offset, length);
    }
    const createdAt = sessions.createdAt(slot);
    if ((sessions.flags(slot) & KF_EXPIRED) !== 0 || now - createdAt >= REJECT_AFTER_TIME) return this.noSession(peerId, ps, buf, offset, length);
    let counter = this.sendNext[ps];
    const end = this.sendEnd[ps];
    if (counter >= end || sessions.highestBlock(slot) - (end / COUNTER_BLOCK - 1) > STALE_BLOCKS) {
      const block = sessions.reserveBlock(slot, generation);
      if (block < 0) return this.noSession(peerId, ps, buf, offset, length);
      counter = block * COUNTER_BLOCK;
      this.sendEnd[ps] = counter + COUNTER_BLOCK;
    }
    this.sendNext[ps] = counter + 1;

    let padded = (length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
    if (padded > this.mtu) padded = Math.max(length, this.mtu);
    if (padded > length) buf.fill(0, offset + length, offset + padded);
    const start = offset - TRANSPORT_HEADER_SIZE;
    writeType(buf, start, TYPE_TRANSPORT);
    writeU32(buf, start + TRANSPORT_RECEIVER, sessions.remoteIndex(slot));
    writeCounter(buf, start + TRANSPORT_COUNTER, counter);
    this.aead.seal(this.sendKeys[ps]!, counter, buf, offset, padded);
    const total = TRANSPORT_HEADER_SIZE + padded + TAG_SIZE;
    sessions.noteActivity(this.thread, ps, A_AUTH_SENT, now);
    if (sessions.noteActivity(this.thread, ps, A_DATA_SENT, now)) this.events.wake();
    sessions.addTransfer(this.thread, ps, 0, total);
    if ((sessions.flags(slot) & KF_INITIATOR) !== 0 && (counter >= REKEY_AFTER_MESSAGES || now - createdAt >= REKEY_AFTER_TIME)) {
      if (sessions.askHandshake(ps)) this.events.wake();
    }
    const result = this.result;
    result.peer = peerId;
    result.buffer = buf;
    result.offset = start;
    result.length = total;
    return Outcome.Send;
  }

  /** No keypair to send with: the packet goes to the main thread, which holds it and starts a handshake. */
  private noSession(peerId: PeerId, ps: number, buf: Uint8Array, offset: number, length: number): Outcome {
    this.counters.noSession++;
    if (this.sessions.countHeld(ps, HELD_CAP)) this.events.held(peerId, buf.slice(offset, offset + length));
    return Outcome.Drop;
  }

  private loadSendKey(ps: number, slot: number, generation: number): boolean {
    this.dropSendKey(ps);
    const key = this.keyFromSlot(slot, generation, "seal");
    if (key === null) return false;
    this.sendKeys[ps] = key;
    this.sendSlot[ps] = slot;
    this.sendGeneration[ps] = generation;
    this.sendNext[ps] = 0;
    this.sendEnd[ps] = 0;
    return true;
  }

  private dropSendKey(ps: number): void {
    const key = this.sendKeys[ps];
    if (key !== null) this.aead.destroyKey(key);
    this.sendKeys[ps] = null;
    this.sendSlot[ps] = -1;
  }

  canSend(peerId: PeerId): boolean {
    const ps = this.peerSlotById.get(peerId);
    return ps !== undefined && this.sessions.currentSlot(ps) >= 0;
  }

  // ---- datagrams in ------------------------------------------------------------------------

  receive(buf: Uint8Array, offset: number, length: number, source: Uint8Array, sourceOffset: number, now: number, _sink: ControlSink): Outcome {
    const type = messageType(buf, offset, length);
    if (type !== TYPE_TRANSPORT) {
      if (type === 0) this.counters.malformed++;
      else this.events.handshake(buf.slice(offset, offset + length), source.slice(sourceOffset, sourceOffset + 28));
      return Outcome.Drop;
    }
    const sessions = this.sessions;
    const slot = sessions.slotOfIndex(readU32(buf, offset + TRANSPORT_RECEIVER));
    if (slot < 0) {
      this.counters.unknownIndex++;
      return Outcome.Drop;
    }
    const generation = sessions.generation(slot);
    let keys = this.openKeys[slot];
    if (keys === null || keys.generation !== generation) keys = this.loadOpenKey(slot, generation);
    if (keys === null) {
      this.counters.unknownIndex++;
      return Outcome.Drop;
    }
    if (!openTransport(keys, buf, offset, length, now, this.counters)) return Outcome.Drop;
    const createdAt = keys.createdAt;
    const sealedAt = offset + TRANSPORT_HEADER_SIZE;
    const sealedLength = length - TRANSPORT_HEADER_SIZE;
    const ps = sessions.peerSlotOf(slot);
    const peerId = this.peerIdBySlot[ps];
    if (peerId === undefined) return Outcome.Drop; // a peer this thread has not been told of yet
    const result = this.result;
    result.peer = peerId;
    const flags = sessions.flags(slot);
    if ((flags & KF_NEXT) !== 0 && sessions.askConfirm(ps, slot)) this.events.wake();
    // An initiator renews its session before the responder would stop accepting it.
    if ((flags & KF_INITIATOR) !== 0 && now - createdAt >= REKEY_ON_RECEIVE_AFTER && sessions.currentSlot(ps) === slot) {
      if (sessions.askHandshake(ps)) this.events.wake();
    }
    if (sessions.noteActivity(this.thread, ps, A_AUTH_RECEIVED, now)) this.events.wake();
    sessions.addTransfer(this.thread, ps, length, 0);
    const plainLength = sealedLength - TAG_SIZE;
    if (plainLength === 0) return Outcome.Accept; // keepalive
    sessions.noteActivity(this.thread, ps, A_DATA_RECEIVED, now);
    const version = ipVersion(buf, sealedAt, plainLength);
    const packetLength = version === 0 ? 0 : ipTotalLength(buf, sealedAt, version);
    if (packetLength === 0 || packetLength > plainLength) {
      this.counters.badInnerPacket++;
      return Outcome.Accept;
    }
    result.buffer = buf;
    result.offset = sealedAt;
    result.length = packetLength;
    return Outcome.Deliver;
  }

  /** This thread's receive key for slot's keypair under `generation`, or null if it is gone. */
  private loadOpenKey(slot: number, generation: number): SlotKeys | null {
    const old = this.openKeys[slot];
    if (old !== null) this.aead.destroyKey(old.key);
    this.openKeys[slot] = null;
    const key = this.keyFromSlot(slot, generation, "open");
    if (key === null) return null;
    const keys = new SlotKeys(this.aead, this.sessions, slot, generation, key);
    this.openKeys[slot] = keys;
    return keys;
  }

  /** An AEAD key of this thread's from slot's keypair (seal: the send key, open: the receive key), or null if the keypair is not live under `generation`. */
  private keyFromSlot(slot: number, generation: number, use: "seal" | "open"): AeadKey | null {
    if (!SharedSessions.live(generation)) return null;
    const ok = this.sessions.readKeys(slot, generation, this.sendScratch, this.recvScratch);
    const wanted = use === "seal" ? this.sendScratch : this.recvScratch;
    const key = ok ? this.aead.createKey(wanted, use) : null;
    wipe(this.sendScratch);
    wipe(this.recvScratch);
    return key;
  }

  // ---- the rest of TunnelProtocol: the main thread's business --------------------------------

  endpointKnown(peer: PeerId, _now: number, _sink: ControlSink): void {
    if (!this.applyingMainChange) this.events.endpoint(peer);
  }

  tick(_now: number, _sink: ControlSink): void {}

  nextDeadline(): number {
    return Number.POSITIVE_INFINITY;
  }

  peerStatus(_peer: PeerId): ProtocolPeerStatus {
    return { state: "data path", lastHandshakeWallMs: 0 };
  }

  drops(): Record<string, number> {
    return { ...this.counters };
  }

  /** Every drop counted so far (to tell whether anything changed). */
  dropTotal(): number {
    const c = this.counters;
    return c.unknownIndex + c.expiredKeypair + c.decryptFailed + c.replayedData + c.malformed + c.badInnerPacket + c.noSession;
  }
}
