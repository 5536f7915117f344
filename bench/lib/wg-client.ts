// A minimal WireGuard initiator for the scale benchmarks, built from wontun's own Noise and
// crypto code: handshake initiations from many peer keys (with mac1, and mac2 once the
// responder hands out cookies), response checking, and a transport message carrying one ICMP
// echo request. Deliberately not the WireGuardProtocol class: the benchmark needs thousands of
// independent handshakes from one process, addressed from many source sockets.
import { aeadOpenOnce, aeadSealOnce, hash, mac, randomBytes, xaeadOpen } from "../../src/crypto/primitives.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import { CONSTRUCTION, IDENTIFIER, LABEL_COOKIE, LABEL_MAC1 } from "../../src/protocol/wireguard/constants.ts";
import {
  COOKIE_ENCRYPTED,
  COOKIE_NONCE,
  COOKIE_RECEIVER,
  COOKIE_REPLY_SIZE,
  INITIATION_MAC1,
  INITIATION_MAC2,
  INITIATION_NOISE,
  INITIATION_SENDER,
  INITIATION_SIZE,
  RESPONSE_NOISE,
  RESPONSE_NOISE_SIZE,
  RESPONSE_RECEIVER,
  RESPONSE_SENDER,
  TRANSPORT_COUNTER,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_RECEIVER,
  TYPE_INITIATION,
  TYPE_TRANSPORT,
  readCounter,
  readU32,
  writeCounter,
  writeType,
  writeU32,
} from "../../src/protocol/wireguard/messages.ts";
import { IKInitiator, type StaticKeyPair } from "../../src/protocol/wireguard/noise.ts";
import { tai64n } from "../../src/protocol/wireguard/tai64n.ts";

const ZERO_PSK = new Uint8Array(32);
const EMPTY = new Uint8Array(0);
const MAC_SIZE = 16;

/** The responder as an initiator must know it: its public key and the two keys derived from it. */
export class ResponderKeys {
  readonly mac1Key: Uint8Array;
  readonly cookieKey: Uint8Array;
  constructor(readonly publicKey: Uint8Array) {
    this.mac1Key = hash(LABEL_MAC1, publicKey);
    this.cookieKey = hash(LABEL_COOKIE, publicKey);
  }
}

export function staticKeyPair(privateKey: Uint8Array): StaticKeyPair {
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

function ephemeral(): StaticKeyPair {
  const k = randomBytes(32);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return staticKeyPair(k);
}

/** One handshake initiation, ready to send (mac2 is filled in at send time). */
export class Initiation {
  readonly message = new Uint8Array(INITIATION_SIZE);
  constructor(
    readonly peer: number,
    readonly senderIndex: number,
    readonly noise: IKInitiator,
  ) {}

  get mac1(): Uint8Array {
    return this.message.subarray(INITIATION_MAC1, INITIATION_MAC1 + MAC_SIZE);
  }

  /** Sets mac2 from the cookie of the socket it leaves from (zeros without one). */
  setMac2(cookie: Uint8Array | null): void {
    if (cookie) this.message.set(mac(cookie, this.message.subarray(0, INITIATION_MAC2)), INITIATION_MAC2);
    else this.message.fill(0, INITIATION_MAC2, INITIATION_MAC2 + MAC_SIZE);
  }
}

/**
 * A new initiation from `identity` to the responder, stamped with `unixMillis` (the responder
 * accepts only timestamps newer than the last it took from this peer; TAI64N is whitened to
 * ~16.8 ms steps, so successive initiations of one peer must be at least that far apart).
 */
export function makeInitiation(peer: number, identity: StaticKeyPair, responder: ResponderKeys, unixMillis: number): Initiation {
  const noise = new IKInitiator(CONSTRUCTION, IDENTIFIER, identity, responder.publicKey, ZERO_PSK, ephemeral());
  const body = noise.writeMessage1(tai64n(unixMillis));
  if (!body) throw new Error("degenerate key");
  const senderIndex = readU32(randomBytes(4), 0);
  const init = new Initiation(peer, senderIndex, noise);
  const msg = init.message;
  writeType(msg, 0, TYPE_INITIATION);
  writeU32(msg, INITIATION_SENDER, senderIndex);
  msg.set(body, INITIATION_NOISE);
  msg.set(mac(responder.mac1Key, msg.subarray(0, INITIATION_MAC1)), INITIATION_MAC1);
  return init;
}

/** The cookie in a cookie reply to `init`, or null if it does not open. */
export function openCookieReply(reply: Uint8Array, init: Initiation, responder: ResponderKeys): Uint8Array | null {
  if (reply.length !== COOKIE_REPLY_SIZE) return null;
  return xaeadOpen(
    responder.cookieKey,
    reply.subarray(COOKIE_NONCE, COOKIE_NONCE + 24),
    reply.subarray(COOKIE_ENCRYPTED, COOKIE_REPLY_SIZE),
    init.mac1,
  );
}

export function cookieReceiver(reply: Uint8Array): number {
  return readU32(reply, COOKIE_RECEIVER);
}

export function responseReceiver(response: Uint8Array): number {
  return readU32(response, RESPONSE_RECEIVER);
}

/** A session from a checked response. */
export interface Session {
  /** The responder's index for this session (goes into our transport messages). */
  remoteIndex: number;
  /** Our index (the responder's transport messages to us carry it). */
  localIndex: number;
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  sendCounter: number;
}

/** Checks a response (Noise message 2) against the initiation; null if it does not authenticate. */
export function completeHandshake(init: Initiation, response: Uint8Array): Session | null {
  const payload = init.noise.readMessage2(response.subarray(RESPONSE_NOISE, RESPONSE_NOISE + RESPONSE_NOISE_SIZE));
  if (payload === null || payload.length !== 0) return null;
  const [sendKey, recvKey] = init.noise.state.split();
  return { remoteIndex: readU32(response, RESPONSE_SENDER), localIndex: init.senderIndex, sendKey, recvKey, sendCounter: 0 };
}

/** A transport message carrying `packet` (padded to 16 bytes) in `session`. */
export function sealTransport(session: Session, packet: Uint8Array): Uint8Array {
  const padded = new Uint8Array((packet.length + 15) & ~15);
  padded.set(packet);
  const counter = session.sendCounter++;
  const sealed = aeadSealOnce(session.sendKey, counter, padded, EMPTY);
  const msg = new Uint8Array(TRANSPORT_HEADER_SIZE + sealed.length);
  writeType(msg, 0, TYPE_TRANSPORT);
  writeU32(msg, TRANSPORT_RECEIVER, session.remoteIndex);
  writeCounter(msg, TRANSPORT_COUNTER, counter);
  msg.set(sealed, TRANSPORT_HEADER_SIZE);
  return msg;
}

export function transportReceiver(msg: Uint8Array): number {
  return readU32(msg, TRANSPORT_RECEIVER);
}

/** The (padded) packet inside a transport message, or null if it does not open. */
export function openTransport(session: Session, msg: Uint8Array): Uint8Array | null {
  const counter = readCounter(msg, TRANSPORT_COUNTER);
  if (counter < 0) return null;
  return aeadOpenOnce(session.recvKey, counter, msg.subarray(TRANSPORT_HEADER_SIZE), EMPTY);
}

// ---- a ping inside the tunnel ---------------------------------------------------------------

function checksum(buf: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (buf[i] << 8) | (i + 1 < end ? buf[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4Bytes(address: string): number[] {
  return address.split(".").map(Number);
}

/** An IPv4 ICMP echo request from `src` to `dst` with identifier `id` and 16 bytes of payload. */
export function icmpEchoRequest(src: string, dst: string, id: number, seq: number): Uint8Array {
  const p = new Uint8Array(20 + 8 + 16);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[4] = id >> 8;
  p[5] = id & 0xff;
  p[8] = 64; // TTL
  p[9] = 1; // ICMP
  p.set(ipv4Bytes(src), 12);
  p.set(ipv4Bytes(dst), 16);
  const h = checksum(p, 0, 20);
  p[10] = h >> 8;
  p[11] = h & 0xff;
  p[20] = 8; // echo request
  p[24] = id >> 8;
  p[25] = id & 0xff;
  p[26] = seq >> 8;
  p[27] = seq & 0xff;
  for (let i = 28; i < p.length; i++) p[i] = i;
  const c = checksum(p, 20, p.length);
  p[22] = c >> 8;
  p[23] = c & 0xff;
  return p;
}

/** True if `packet` is an ICMP echo reply to `dst` with identifier `id`. */
export function isEchoReply(packet: Uint8Array, dst: string, id: number): boolean {
  if (packet.length < 28 || packet[0] >> 4 !== 4 || packet[9] !== 1) return false;
  const ihl = (packet[0] & 15) * 4;
  const d = ipv4Bytes(dst);
  for (let i = 0; i < 4; i++) if (packet[16 + i] !== d[i]) return false;
  return packet[ihl] === 0 && ((packet[ihl + 4] << 8) | packet[ihl + 5]) === id;
}
