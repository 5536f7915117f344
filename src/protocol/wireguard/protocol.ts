// WireGuard over all configured peers, sans-IO: handshakes (Noise IKpsk2 with mac1/mac2 and
// cookies), transport data sealed and opened in place, key rotation with key confirmation, and
// the timers, all driven by datagrams, outgoing packets and the clock handed in by the device.
import type { AeadBackend } from "../../crypto/aead.ts";
import { publicKeyOf } from "../../crypto/keys.ts";
import { constantTimeEqual, randomBytes, selectHandshakeCrypto, x25519 } from "../../crypto/primitives.ts";
import { ipTotalLength, ipVersion } from "../../net/ip-packet.ts";
import { Outcome, ProtocolResult, type ControlSink, type PeerId, type ProtocolPeerStatus, type TunnelProtocol } from "../tunnel.ts";
import {
  CONSTRUCTION,
  HANDSHAKE_INITIATION_RATE,
  IDENTIFIER,
  KEEPALIVE_TIMEOUT,
  MAX_HANDSHAKE_ATTEMPTS,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_ON_RECEIVE_AFTER,
  REKEY_TIMEOUT,
  UNDER_LOAD_HANDSHAKES_PER_SECOND,
  UNDER_LOAD_HOLD,
  ZERO_KEYS_AFTER,
} from "./constants.ts";
import { CookieChecker } from "./cookie.ts";
import { Keypair, type SessionCounters } from "./keypair.ts";
import {
  COOKIE_RECEIVER,
  INITIATION_MAC1,
  INITIATION_NOISE,
  INITIATION_NOISE_SIZE,
  INITIATION_SENDER,
  INITIATION_SIZE,
  PADDING_MULTIPLE,
  RESPONSE_MAC1,
  RESPONSE_NOISE,
  RESPONSE_NOISE_SIZE,
  RESPONSE_RECEIVER,
  RESPONSE_SENDER,
  RESPONSE_SIZE,
  TRANSPORT_COUNTER,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_RECEIVER,
  TYPE_COOKIE_REPLY,
  TYPE_INITIATION,
  TYPE_RESPONSE,
  TYPE_TRANSPORT,
  messageType,
  readU32,
  writeCounter,
  writeType,
  writeU32,
} from "./messages.ts";
import { IKInitiator, IKResponder, type StaticKeyPair } from "./noise.ts";
import { PendingHandshake, WgPeer } from "./peer.ts";
import { RateLimiter } from "./ratelimit.ts";
import { compareTai64n, tai64n } from "./tai64n.ts";
import { openTransport } from "./transport.ts";

const TAG_SIZE = 16;
const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(32);
/** Jitter bytes drawn from `random` at once: one allocation per this many armed timers. */
const JITTER_BYTES = 256;

export interface WgPeerSpec {
  id: PeerId;
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  persistentKeepaliveSeconds: number;
}

/** What may change on a running peer (undefined = unchanged; a null key = none). */
export interface WgPeerUpdate {
  presharedKey?: Uint8Array | null;
  persistentKeepaliveSeconds?: number;
}

export interface WireGuardOptions {
  /** null: no key yet (the userspace API sets one later); no handshakes until then. */
  privateKey: Uint8Array | null;
  /** Peers to start with; more come and go through addPeer/removePeer. */
  peers?: WgPeerSpec[];
  aead: AeadBackend;
  /** Interface MTU: packets are padded to a multiple of 16 but never beyond it. */
  mtu: number;
  /** Randomness (keys, indices, jitter); injectable for tests. */
  random?: (n: number) => Uint8Array;
  /** Wall clock in ms for TAI64N timestamps; the monotonic `now` comes with each call. */
  wallClock?: () => number;
}

/**
 * Where the sessions live when other threads seal and open with them too (src/threads): local
 * indices name shared slots, and every keypair is published there before its keys are wiped.
 */
export interface SessionStore {
  /** A new local index for a handshake with `peer`. */
  allocateIndex(peer: PeerId): number;
  /** The index is no longer ours (handshake abandoned or keypair retired). */
  releaseIndex(index: number): void;
  /** Publishes a new keypair; its counters and replay window are the shared ones. */
  publish(peer: PeerId, localIndex: number, remoteIndex: number, sendKey: Uint8Array, recvKey: Uint8Array, isInitiator: boolean, createdAt: number): SessionCounters;
  /** The peer's keypairs changed: `current` sends, `next` awaits confirmation. */
  keypairsChanged(peer: PeerId, current: Keypair | null, next: Keypair | null): void;
}

/** Counters of what was dropped and why: status output and tests. */
export class WgCounters {
  malformed = 0;
  badMac1 = 0;
  unknownPeer = 0;
  unknownIndex = 0;
  handshakeFailed = 0;
  replayedInitiation = 0;
  floodedInitiation = 0;
  cookiesSent = 0;
  rateLimited = 0;
  decryptFailed = 0;
  replayedData = 0;
  expiredKeypair = 0;
  badInnerPacket = 0;
  /** Handshake messages while no private key is set. */
  noPrivateKey = 0;
}

export class WireGuardProtocol implements TunnelProtocol {
  readonly headroom = TRANSPORT_HEADER_SIZE;
  readonly tailroom = PADDING_MULTIPLE - 1 + TAG_SIZE;
  readonly result = new ProtocolResult();
  readonly counters = new WgCounters();
  readonly peers = new Map<PeerId, WgPeer>();
  handshakeMessages = 0;

  /** Debug hook for handshake events (never given secrets). */
  onEvent: ((peer: PeerId, message: string) => void) | null = null;

  /** Our static key pair; null until a private key is set (then every handshake is dropped). */
  private identity: StaticKeyPair | null = null;
  private readonly aead: AeadBackend;
  private readonly mtu: number;
  private readonly random: (n: number) => Uint8Array;
  private readonly wallClock: () => number;
  private checker: CookieChecker | null = null;
  private readonly jitter: () => number;
  private readonly limiter = new RateLimiter();
  private readonly peerByKey = new Map<string, WgPeer>();
  /** Our session indices: a keypair (transport, cookie replies) or a handshake in flight. */
  private readonly indices = new Map<number, Keypair | PendingHandshake>();
  private readonly control = new Uint8Array(new ArrayBuffer(256));
  private next = Number.POSITIVE_INFINITY;
  // Load accounting for cookies: handshake messages seen in the current one-second window.
  private handshakeWindowStart = Number.NEGATIVE_INFINITY;
  private handshakesInWindow = 0;
  private underLoadUntil = Number.NEGATIVE_INFINITY;
  private lastLimiterGc = 0;
  private store: SessionStore | null = null;
  /** Peers whose static-static DH is not computed yet: prepare() does them before their handshakes. */
  private readonly unprepared = new Set<WgPeer>();
  private cryptoSelected = false;
  /** Random bytes for timer jitter, drawn JITTER_BYTES at a time (see jitterByte). */
  private readonly jitterBytes = new Uint8Array(JITTER_BYTES);
  private jitterUsed = JITTER_BYTES;

  constructor(options: WireGuardOptions) {
    this.aead = options.aead;
    this.mtu = options.mtu;
    this.random = options.random ?? randomBytes;
    this.wallClock = options.wallClock ?? Date.now;
    this.jitter = WgPeer.jitter(() => this.jitterByte() / 256);
    if (options.privateKey) this.setPrivateKey(options.privateKey);
    for (const spec of options.peers ?? []) this.addPeer(spec);
  }

  /**
   * One random byte for a timer's jitter. A flow arms the new-handshake timer once per round
   * trip (dataSent after authenticatedReceived cleared it): drawing from a pool keeps that from
   * allocating, and the bytes still come from `random` (a seeded simulation stays reproducible).
   */
  private jitterByte(): number {
    if (this.jitterUsed === JITTER_BYTES) {
      this.jitterBytes.set(this.random(JITTER_BYTES));
      this.jitterUsed = 0;
    }
    return this.jitterBytes[this.jitterUsed++];
  }

  /** From now on sessions live in `store`, shared with other threads (set before any handshake). */
  shareSessions(store: SessionStore): void {
    this.store = store;
  }

  /** Our public key; null while no private key is set. */
  get publicKey(): Uint8Array | null {
    return this.identity?.publicKey ?? null;
  }

  get privateKey(): Uint8Array | null {
    return this.identity?.privateKey ?? null;
  }

  // ---- peers and keys come and go (the operations layer calls these) ------------------------

  /** Adds a peer; its public key must not belong to another peer. */
  addPeer(spec: WgPeerSpec): void {
    const id = keyId(spec.publicKey);
    if (this.peers.has(spec.id) || this.peerByKey.has(id)) throw new Error(`peer ${spec.id} or its public key exists already`);
    const peer = new WgPeer(spec.id, spec.publicKey, spec.presharedKey ?? ZERO_KEY, spec.persistentKeepaliveSeconds * 1000, this.jitter);
    this.peers.set(spec.id, peer);
    this.peerByKey.set(id, peer);
    this.unprepared.add(peer);
  }

  removePeer(peerId: PeerId): void {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    this.wipePeer(peer);
    this.unprepared.delete(peer);
    this.peers.delete(peerId);
    this.peerByKey.delete(keyId(peer.publicKey));
  }

  /** The peer whose public key is `key`, if any. */
  peerByPublicKey(key: Uint8Array): PeerId | null {
    return this.peerByKey.get(keyId(key))?.id ?? null;
  }

  /**
   * Changes what a running peer uses for its next handshake and keepalives; its current session
   * goes on (a new PSK takes effect at the next handshake, as in wireguard-go).
   */
  updatePeer(peerId: PeerId, update: WgPeerUpdate, now: number, sink: ControlSink): void {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    if (update.presharedKey !== undefined) peer.presharedKey = update.presharedKey ?? ZERO_KEY;
    if (update.persistentKeepaliveSeconds !== undefined) {
      const wasOff = peer.persistentKeepaliveMs === 0;
      peer.setPersistentKeepalive(update.persistentKeepaliveSeconds * 1000, now);
      // Turned on: keep the NAT mapping open from now on, as wireguard-go does.
      if (wasOff && peer.persistentKeepaliveMs > 0 && peer.hasEndpoint) this.sendKeepalive(peer, now, sink);
      this.noteDeadline(peer);
    }
  }

  /**
   * A new static key (null: none). What depends on it is redone, as wireguard-go's
   * SetPrivateKey does: the cookie checker, every peer's cached DH, and the sessions, which
   * may no longer be used to send (the next packet starts a handshake). A peer whose public key
   * is our new one cannot be a peer: its id is returned, for the caller to remove.
   */
  setPrivateKey(privateKey: Uint8Array | null): PeerId[] {
    const current = this.identity?.privateKey;
    if (privateKey && current && constantTimeEqual(privateKey, current)) return [];
    if (!privateKey && !current) return [];
    this.identity = privateKey ? { privateKey: privateKey.slice(), publicKey: publicKeyOf(privateKey) } : null;
    this.checker = this.identity ? new CookieChecker(this.identity.publicKey, this.random) : null;
    const clashing: PeerId[] = [];
    for (const peer of this.peers.values()) {
      peer.staticStatic = undefined;
      this.unprepared.add(peer);
      this.dropPending(peer);
      peer.expireSending();
      if (this.identity && constantTimeEqual(peer.publicKey, this.identity.publicKey)) clashing.push(peer.id);
    }
    return clashing;
  }

  /**
   * DH(our static, the peer's static), computed ahead by prepare() or on first use, and kept:
   * one X25519 fewer per handshake. wireguard-go computes it when a peer or key is set; here a
   * config of 1000 peers starts ~30 ms sooner and the idle loop does it right after. Null if the
   * peer's key is of low order (the handshake is then refused, as without the cache).
   */
  private staticStatic(peer: WgPeer): Uint8Array | null {
    if (peer.staticStatic === undefined) {
      peer.staticStatic = x25519(this.identity!.privateKey, peer.publicKey);
      this.unprepared.delete(peer);
    }
    return peer.staticStatic;
  }

  /** Settles the handshake's crypto implementations, then computes `batch` peers' static-static DH. */
  prepare(batch: number): boolean {
    if (!this.cryptoSelected) {
      this.cryptoSelected = true;
      selectHandshakeCrypto();
      return true;
    }
    if (this.identity === null) return false; // setPrivateKey queues every peer again
    if (this.unprepared.size === 0) return false; // asked at every idle moment: no iterator then
    let done = 0;
    for (const peer of this.unprepared) {
      if (done++ === batch) return true;
      this.staticStatic(peer);
    }
    return false;
  }

  /** For the responder: the cached DH of a configured initiator; null for any other key. */
  private readonly staticStaticOf = (rs: Uint8Array): Uint8Array | null => {
    const peer = this.peerByKey.get(keyId(rs));
    return peer ? this.staticStatic(peer) : null;
  };

  // ---- datagrams in ------------------------------------------------------------------------

  receive(
    buf: Uint8Array,
    offset: number,
    length: number,
    sourceBuf: Uint8Array,
    sourceOffset: number,
    now: number,
    sink: ControlSink,
  ): Outcome {
    const type = messageType(buf, offset, length);
    if (type === TYPE_TRANSPORT) return this.receiveTransport(buf, offset, length, now, sink);
    if (type === 0) {
      this.counters.malformed++;
      return Outcome.Drop;
    }
    this.handshakeMessages++;
    if (type === TYPE_COOKIE_REPLY) return this.receiveCookieReply(buf, offset, now);
    const checker = this.checker;
    if (checker === null) {
      this.counters.noPrivateKey++;
      return Outcome.Drop;
    }
    const mac1At = type === TYPE_INITIATION ? INITIATION_MAC1 : RESPONSE_MAC1;
    if (!checker.checkMac1(buf, offset, mac1At)) {
      this.counters.badMac1++;
      return Outcome.Drop;
    }
    if (this.underLoad(now)) {
      const source = sockaddrKey(sourceBuf, sourceOffset);
      if (!checker.checkMac2(buf, offset, mac1At, source, now)) {
        const sender = readU32(buf, offset + (type === TYPE_INITIATION ? INITIATION_SENDER : RESPONSE_SENDER));
        const n = checker.createReply(buf, offset, mac1At, sender, source, now, this.control);
        this.counters.cookiesSent++;
        return this.replyToSource(n);
      }
      if (now - this.lastLimiterGc >= 1000) {
        this.limiter.gc(now);
        this.lastLimiterGc = now;
      }
      if (!this.limiter.allow(addressOf(source), now)) {
        this.counters.rateLimited++;
        return Outcome.Drop;
      }
    }
    return type === TYPE_INITIATION
      ? this.receiveInitiation(buf, offset, now)
      : this.receiveResponse(buf, offset, now, sink);
  }

  private receiveTransport(buf: Uint8Array, offset: number, length: number, now: number, sink: ControlSink): Outcome {
    const entry = this.indices.get(readU32(buf, offset + TRANSPORT_RECEIVER));
    if (!(entry instanceof Keypair)) {
      this.counters.unknownIndex++;
      return Outcome.Drop;
    }
    const keypair = entry;
    if (!openTransport(keypair, buf, offset, length, now, this.counters)) return Outcome.Drop;
    const sealedAt = offset + TRANSPORT_HEADER_SIZE;
    const sealedLength = length - TRANSPORT_HEADER_SIZE;
    const peer = keypair.peer;
    const result = this.result;
    result.peer = peer.id;
    if (keypair === peer.next) this.confirm(peer);
    // An initiator renews its session before the responder would stop accepting it.
    if (peer.current === keypair && keypair.isInitiator && now - keypair.createdAt >= REKEY_ON_RECEIVE_AFTER) {
      this.initiate(peer, false, now, sink);
    }
    peer.authenticatedTraversal(now);
    peer.authenticatedReceived();
    const plainLength = sealedLength - TAG_SIZE;
    if (plainLength === 0) {
      this.noteDeadline(peer);
      return Outcome.Accept; // keepalive
    }
    peer.dataReceived(now);
    this.noteDeadline(peer);
    const version = ipVersion(buf, sealedAt, plainLength);
    const packetLength = version === 0 ? 0 : ipTotalLength(buf, sealedAt, version);
    if (packetLength === 0 || packetLength > plainLength) {
      this.counters.badInnerPacket++;
      return Outcome.Accept; // authentic but not a packet: the peer is still alive
    }
    result.buffer = buf;
    result.offset = sealedAt;
    result.length = packetLength; // drops the padding
    return Outcome.Deliver;
  }

  private receiveInitiation(buf: Uint8Array, offset: number, now: number): Outcome {
    const responder = new IKResponder(CONSTRUCTION, IDENTIFIER, this.identity!, this.staticStaticOf);
    const timestamp = responder.readMessage1(buf.subarray(offset + INITIATION_NOISE, offset + INITIATION_NOISE + INITIATION_NOISE_SIZE));
    const peer = responder.rs ? this.peerByKey.get(keyId(responder.rs)) : undefined;
    if (responder.rs && !peer) {
      this.counters.unknownPeer++;
      return Outcome.Drop;
    }
    if (!timestamp || !peer) {
      this.counters.handshakeFailed++;
      return Outcome.Drop;
    }
    if (peer.lastTimestamp && compareTai64n(timestamp, peer.lastTimestamp) <= 0) {
      this.counters.replayedInitiation++;
      return Outcome.Drop;
    }
    if (now - peer.lastInitiationConsumedAt < HANDSHAKE_INITIATION_RATE) {
      this.counters.floodedInitiation++;
      return Outcome.Drop;
    }
    peer.lastTimestamp = timestamp;
    peer.lastInitiationConsumedAt = now;
    const remoteIndex = readU32(buf, offset + INITIATION_SENDER);

    const ephemeral = this.ephemeral();
    const noise = responder.writeMessage2(ephemeral, peer.presharedKey, EMPTY);
    if (!noise) {
      this.counters.handshakeFailed++;
      return Outcome.Drop;
    }
    const localIndex = this.newIndex(peer);
    const [recvKey, sendKey] = responder.state.split();
    responder.state.wipe();
    const keypair = this.newKeypair(peer, localIndex, remoteIndex, sendKey, recvKey, false, now);
    this.installResponderKeypair(peer, keypair);

    const msg = this.control;
    msg.fill(0, 0, RESPONSE_SIZE);
    writeType(msg, 0, TYPE_RESPONSE);
    writeU32(msg, RESPONSE_SENDER, localIndex);
    writeU32(msg, RESPONSE_RECEIVER, remoteIndex);
    msg.set(noise, RESPONSE_NOISE);
    peer.cookies.addMacs(msg.subarray(0, RESPONSE_SIZE), RESPONSE_MAC1, now);
    peer.lastHandshakeSentAt = now;
    peer.authenticatedTraversal(now);
    peer.authenticatedReceived();
    peer.authenticatedSent();
    peer.sessionDerived(now);
    this.noteDeadline(peer);
    this.event(peer, "handshake initiation received; response sent");
    const result = this.result;
    result.peer = peer.id;
    result.buffer = msg;
    result.offset = 0;
    result.length = RESPONSE_SIZE;
    return Outcome.Reply;
  }

  private receiveResponse(buf: Uint8Array, offset: number, now: number, sink: ControlSink): Outcome {
    const entry = this.indices.get(readU32(buf, offset + RESPONSE_RECEIVER));
    if (!(entry instanceof PendingHandshake)) {
      this.counters.unknownIndex++;
      return Outcome.Drop;
    }
    const peer = entry.peer;
    const payload = entry.noise.readMessage2(buf.subarray(offset + RESPONSE_NOISE, offset + RESPONSE_NOISE + RESPONSE_NOISE_SIZE));
    if (payload === null || payload.length !== 0) {
      this.counters.handshakeFailed++;
      return Outcome.Drop;
    }
    const [sendKey, recvKey] = entry.noise.state.split();
    entry.noise.state.wipe();
    this.indices.delete(entry.localIndex);
    peer.pending = null;
    const remoteIndex = readU32(buf, offset + RESPONSE_SENDER);
    const keypair = this.newKeypair(peer, entry.localIndex, remoteIndex, sendKey, recvKey, true, now);
    this.installInitiatorKeypair(peer, keypair);
    peer.authenticatedTraversal(now);
    peer.authenticatedReceived();
    peer.sessionDerived(now);
    peer.handshakeComplete(this.wallClock());
    this.event(peer, "handshake complete (we initiated)");
    const result = this.result;
    result.peer = peer.id;
    // Confirm the keys to the responder at once; held packets, if any, follow it.
    const n = this.buildKeepalive(peer, now);
    this.noteDeadline(peer);
    if (n === 0) return Outcome.Accept;
    result.buffer = this.control;
    result.offset = 0;
    result.length = n;
    return Outcome.Reply;
  }

  private receiveCookieReply(buf: Uint8Array, offset: number, now: number): Outcome {
    const entry = this.indices.get(readU32(buf, offset + COOKIE_RECEIVER));
    const peer = entry?.peer;
    if (!peer || !peer.cookies.consumeReply(buf, offset, now)) {
      this.counters.unknownIndex++;
      return Outcome.Drop;
    }
    this.event(peer, "cookie reply received: the peer is under load");
    // Not authenticated in the Noise sense: no endpoint update. The next retry carries mac2.
    return Outcome.Drop;
  }

  // ---- packets out -------------------------------------------------------------------------

  encapsulate(peerId: PeerId, buf: Uint8Array, offset: number, length: number, now: number, sink: ControlSink): Outcome {
    const peer = this.peers.get(peerId);
    if (peer === undefined) return Outcome.Drop;
    const keypair = peer.current;
    const counter = keypair === null || now - keypair.createdAt >= REJECT_AFTER_TIME ? -1 : keypair.counters.next();
    if (counter < 0) {
      this.initiate(peer, false, now, sink);
      return peer.hasEndpoint ? Outcome.Hold : Outcome.Drop;
    }
    let padded = (length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
    if (padded > this.mtu) padded = Math.max(length, this.mtu);
    if (padded > length) buf.fill(0, offset + length, offset + padded);
    const start = offset - TRANSPORT_HEADER_SIZE;
    writeType(buf, start, TYPE_TRANSPORT);
    writeU32(buf, start + TRANSPORT_RECEIVER, keypair!.remoteIndex);
    writeCounter(buf, start + TRANSPORT_COUNTER, counter);
    keypair!.seal(counter, buf, offset, padded);
    peer.authenticatedTraversal(now);
    peer.authenticatedSent();
    peer.dataSent(now);
    if (keypair!.isInitiator && (counter >= REKEY_AFTER_MESSAGES || now - keypair!.createdAt >= REKEY_AFTER_TIME)) {
      this.initiate(peer, false, now, sink);
    }
    this.noteDeadline(peer);
    const result = this.result;
    result.peer = peerId;
    result.buffer = buf;
    result.offset = start;
    result.length = TRANSPORT_HEADER_SIZE + padded + TAG_SIZE;
    return Outcome.Send;
  }

  canSend(peerId: PeerId): boolean {
    const keypair = this.peers.get(peerId)?.current ?? null;
    return keypair !== null && keypair.counters.canSend();
  }

  // ---- what other data-path threads saw (src/threads) ---------------------------------------

  /**
   * Another thread sent or received for `peer` at these times (0: not since the last call): the
   * timer events replayed in time order, as if this thread had handled the packets.
   */
  absorbThreadActivity(peerId: PeerId, dataSentAt: number, dataReceivedAt: number, authSentAt: number, authReceivedAt: number): void {
    const peer = this.peers.get(peerId);
    if (peer === undefined) return;
    // [time, event] with sends before receipts at equal times, as the single thread does them.
    const events: [number, number][] = [];
    if (authSentAt > 0) events.push([authSentAt, 0]);
    if (dataSentAt > 0) events.push([dataSentAt, 1]);
    if (authReceivedAt > 0) events.push([authReceivedAt, 2]);
    if (dataReceivedAt > 0) events.push([dataReceivedAt, 3]);
    events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    for (const [at, event] of events) {
      if (event === 0) {
        peer.authenticatedTraversal(at);
        peer.authenticatedSent();
      } else if (event === 1) {
        peer.dataSent(at);
      } else if (event === 2) {
        peer.authenticatedTraversal(at);
        peer.authenticatedReceived();
      } else {
        peer.dataReceived(at);
      }
    }
    this.noteDeadline(peer);
  }

  /** Another thread opened a packet with keypair `localIndex`: if it is the unconfirmed one, it is confirmed. */
  confirmFromThread(peerId: PeerId, localIndex: number): void {
    const peer = this.peers.get(peerId);
    if (peer?.next && peer.next.localIndex === localIndex) this.confirm(peer);
  }

  /** Another thread has no usable keypair for `peer`, or its keypair is due for renewal. */
  requestHandshake(peerId: PeerId, now: number, sink: ControlSink): void {
    const peer = this.peers.get(peerId);
    if (peer !== undefined) this.initiate(peer, false, now, sink);
  }

  endpointKnown(peerId: PeerId, now: number, sink: ControlSink): void {
    const peer = this.peers.get(peerId);
    if (peer === undefined || peer.hasEndpoint) return;
    peer.hasEndpoint = true;
    // A peer with a persistent keepalive is brought up at once, as wg does; others on demand.
    if (peer.persistentKeepaliveMs > 0) this.initiate(peer, false, now, sink);
  }

  // ---- timers ------------------------------------------------------------------------------

  tick(now: number, sink: ControlSink): void {
    let next = Number.POSITIVE_INFINITY;
    for (const peer of this.peers.values()) {
      if (peer.deadline <= now) this.runTimers(peer, now, sink);
      if (peer.deadline < next) next = peer.deadline;
    }
    this.next = next;
  }

  nextDeadline(): number {
    return this.next;
  }

  private runTimers(peer: WgPeer, now: number, sink: ControlSink): void {
    if (now >= peer.retransmitAt) {
      peer.retransmitAt = Number.POSITIVE_INFINITY;
      if (peer.handshakeAttempts >= MAX_HANDSHAKE_ATTEMPTS) {
        this.event(peer, `handshake did not complete after ${peer.handshakeAttempts + 1} attempts; giving up until there is traffic`);
        this.dropPending(peer);
        if (peer.zeroKeysAt === Number.POSITIVE_INFINITY) peer.zeroKeysAt = now + ZERO_KEYS_AFTER;
      } else {
        peer.handshakeAttempts++;
        this.event(peer, `no response to handshake; retry ${peer.handshakeAttempts}`);
        this.initiate(peer, true, now, sink);
      }
    }
    if (now >= peer.sendKeepaliveAt) {
      peer.sendKeepaliveAt = Number.POSITIVE_INFINITY;
      this.sendKeepalive(peer, now, sink);
      if (peer.needAnotherKeepalive) {
        peer.needAnotherKeepalive = false;
        peer.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT;
      }
    }
    if (now >= peer.newHandshakeAt) {
      peer.newHandshakeAt = Number.POSITIVE_INFINITY;
      this.event(peer, "no reply to data for 15 s; new handshake");
      this.initiate(peer, false, now, sink);
    }
    if (now >= peer.zeroKeysAt) {
      peer.zeroKeysAt = Number.POSITIVE_INFINITY;
      this.event(peer, "no handshake for 9 minutes; keys wiped");
      this.wipePeer(peer);
    }
    if (now >= peer.persistentKeepaliveAt) {
      peer.persistentKeepaliveAt = Number.POSITIVE_INFINITY;
      this.sendKeepalive(peer, now, sink);
    }
    peer.updateDeadline();
  }

  // ---- handshakes we start -----------------------------------------------------------------

  private initiate(peer: WgPeer, isRetry: boolean, now: number, sink: ControlSink): void {
    if (!peer.hasEndpoint || this.identity === null) return;
    if (!isRetry) peer.handshakeAttempts = 0;
    if (now - peer.lastHandshakeSentAt < REKEY_TIMEOUT) return;
    this.dropPending(peer);
    const localIndex = this.newIndex(peer);
    const noise = new IKInitiator(
      CONSTRUCTION,
      IDENTIFIER,
      this.identity,
      peer.publicKey,
      peer.presharedKey,
      this.ephemeral(),
      this.staticStatic(peer),
    );
    const body = noise.writeMessage1(tai64n(this.wallClock()));
    if (!body) return; // degenerate peer key: nothing we can do
    const pending = new PendingHandshake(peer, localIndex, noise);
    this.indices.set(localIndex, pending);
    peer.pending = pending;
    const msg = this.control;
    msg.fill(0, 0, INITIATION_SIZE);
    writeType(msg, 0, TYPE_INITIATION);
    writeU32(msg, INITIATION_SENDER, localIndex);
    msg.set(body, INITIATION_NOISE);
    peer.cookies.addMacs(msg.subarray(0, INITIATION_SIZE), INITIATION_MAC1, now);
    peer.lastHandshakeSentAt = now;
    peer.authenticatedTraversal(now);
    peer.authenticatedSent();
    peer.handshakeInitiated(now);
    this.noteDeadline(peer);
    this.event(peer, isRetry ? "handshake initiation resent" : "handshake initiation sent");
    this.handshakeMessages++;
    sink.sendControl(peer.id, msg, 0, INITIATION_SIZE);
  }

  private sendKeepalive(peer: WgPeer, now: number, sink: ControlSink): void {
    const n = this.buildKeepalive(peer, now);
    if (n > 0) sink.sendControl(peer.id, this.control, 0, n);
    else this.initiate(peer, false, now, sink);
  }

  /** A keepalive (empty transport message) in the control buffer; 0 if there is no session. */
  private buildKeepalive(peer: WgPeer, now: number): number {
    const keypair = peer.current;
    const counter = keypair === null || now - keypair.createdAt >= REJECT_AFTER_TIME ? -1 : keypair.counters.next();
    if (counter < 0) return 0;
    const msg = this.control;
    writeType(msg, 0, TYPE_TRANSPORT);
    writeU32(msg, TRANSPORT_RECEIVER, keypair!.remoteIndex);
    writeCounter(msg, TRANSPORT_COUNTER, counter);
    keypair!.seal(counter, msg, TRANSPORT_HEADER_SIZE, 0);
    peer.authenticatedTraversal(now);
    peer.authenticatedSent();
    return TRANSPORT_HEADER_SIZE + TAG_SIZE;
  }

  // ---- keypair rotation --------------------------------------------------------------------

  private installInitiatorKeypair(peer: WgPeer, keypair: Keypair): void {
    this.indices.set(keypair.localIndex, keypair);
    this.retire(peer.previous);
    if (peer.next) {
      peer.previous = peer.next;
      peer.next = null;
      this.retire(peer.current);
    } else {
      peer.previous = peer.current;
    }
    peer.current = keypair;
    this.keypairsChanged(peer);
  }

  private installResponderKeypair(peer: WgPeer, keypair: Keypair): void {
    this.indices.set(keypair.localIndex, keypair);
    this.retire(peer.next);
    this.retire(peer.previous);
    peer.previous = null;
    peer.next = keypair;
    this.keypairsChanged(peer);
  }

  /** The initiator used the responder's new keys: they become current. */
  private confirm(peer: WgPeer): void {
    this.retire(peer.previous);
    peer.previous = peer.current;
    peer.current = peer.next;
    peer.next = null;
    this.keypairsChanged(peer);
    peer.handshakeComplete(this.wallClock());
    this.event(peer, "handshake complete (peer initiated)");
  }

  private retire(keypair: Keypair | null): void {
    if (!keypair) return;
    this.indices.delete(keypair.localIndex);
    keypair.destroy();
    this.store?.releaseIndex(keypair.localIndex);
  }

  private dropPending(peer: WgPeer): void {
    if (!peer.pending) return;
    this.indices.delete(peer.pending.localIndex);
    this.store?.releaseIndex(peer.pending.localIndex);
    peer.pending.noise.state.wipe();
    peer.pending = null;
  }

  private wipePeer(peer: WgPeer): void {
    this.dropPending(peer);
    this.retire(peer.current);
    this.retire(peer.previous);
    this.retire(peer.next);
    peer.current = peer.previous = peer.next = null;
    this.keypairsChanged(peer);
  }

  // ---- helpers -----------------------------------------------------------------------------

  private ephemeral(): StaticKeyPair {
    const privateKey = clampPrivateKey(this.random(32));
    return { privateKey, publicKey: publicKeyOf(privateKey) };
  }

  private newKeypair(
    peer: WgPeer,
    localIndex: number,
    remoteIndex: number,
    sendKey: Uint8Array,
    recvKey: Uint8Array,
    isInitiator: boolean,
    now: number,
  ): Keypair {
    const counters = this.store?.publish(peer.id, localIndex, remoteIndex, sendKey, recvKey, isInitiator, now);
    return new Keypair(peer, localIndex, remoteIndex, sendKey, recvKey, isInitiator, now, this.aead, counters);
  }

  private keypairsChanged(peer: WgPeer): void {
    this.store?.keypairsChanged(peer.id, peer.current, peer.next);
  }

  private newIndex(peer: WgPeer): number {
    if (this.store !== null) return this.store.allocateIndex(peer.id);
    for (;;) {
      const b = this.random(4);
      const index = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
      if (!this.indices.has(index)) return index;
    }
  }

  private underLoad(now: number): boolean {
    if (now - this.handshakeWindowStart >= 1000) {
      this.handshakeWindowStart = now;
      this.handshakesInWindow = 0;
    }
    if (++this.handshakesInWindow > UNDER_LOAD_HANDSHAKES_PER_SECOND) this.underLoadUntil = now + UNDER_LOAD_HOLD;
    return now < this.underLoadUntil;
  }

  private replyToSource(length: number): Outcome {
    const result = this.result;
    result.peer = -1;
    result.buffer = this.control;
    result.offset = 0;
    result.length = length;
    return Outcome.ReplyToSource;
  }

  private noteDeadline(peer: WgPeer): void {
    if (peer.deadline < this.next) this.next = peer.deadline;
  }

  private event(peer: WgPeer, message: string): void {
    this.onEvent?.(peer.id, message);
  }

  peerStatus(peerId: PeerId): ProtocolPeerStatus {
    const peer = this.peers.get(peerId);
    if (!peer) return { state: "unknown", lastHandshakeWallMs: 0 };
    const state = peer.current ? "up" : peer.pending ? "handshaking" : "no session";
    return { state, lastHandshakeWallMs: peer.lastHandshakeWallTime };
  }

  drops(): Record<string, number> {
    return { ...this.counters };
  }
}

/** X25519 private key clamping, as wg genkey does. */
function clampPrivateKey(key: Uint8Array): Uint8Array {
  key[0] &= 248;
  key[31] = (key[31] & 127) | 64;
  return key;
}

function keyId(key: Uint8Array): string {
  return Buffer.from(key).toString("base64");
}

/** Port then address of a sockaddr_in/_in6: what a cookie is bound to. */
function sockaddrKey(buf: Uint8Array, offset: number): Uint8Array {
  const family = buf[offset] | (buf[offset + 1] << 8);
  if (family === 2) return buf.slice(offset + 2, offset + 8);
  const key = new Uint8Array(18);
  key.set(buf.subarray(offset + 2, offset + 4));
  key.set(buf.subarray(offset + 8, offset + 24), 2);
  return key;
}

/** The address bytes of a sockaddrKey (for the rate limiter). */
function addressOf(key: Uint8Array): Uint8Array {
  return key.subarray(2);
}
