// mac1/mac2 and cookie replies: WireGuard's defence against handshake floods.
// - mac1 (always): a MAC keyed by the receiver's public key, so only someone who knows it can
//   make us do any DH work.
// - mac2 (under load): a MAC keyed by a cookie that we hand out, encrypted, to the source
//   address of an initiation; only a sender that can receive at that address can use it.
import { constantTimeEqual, hash, mac, randomBytes, xaeadOpen, xaeadSeal } from "../../crypto/primitives.ts";
import { COOKIE_REFRESH_TIME, LABEL_COOKIE, LABEL_MAC1 } from "./constants.ts";
import { COOKIE_ENCRYPTED, COOKIE_NONCE, COOKIE_RECEIVER, COOKIE_REPLY_SIZE, TYPE_COOKIE_REPLY, writeType, writeU32 } from "./messages.ts";

const MAC_SIZE = 16;
const ZERO_MAC = new Uint8Array(MAC_SIZE);

/** The checking side: validates mac1/mac2 of messages sent to us and makes cookie replies. */
export class CookieChecker {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private secret: Uint8Array;
  private secretSetAt = Number.NEGATIVE_INFINITY;

  constructor(
    ourPublicKey: Uint8Array,
    private readonly random: (n: number) => Uint8Array = randomBytes,
  ) {
    this.mac1Key = hash(LABEL_MAC1, ourPublicKey);
    this.cookieKey = hash(LABEL_COOKIE, ourPublicKey);
    this.secret = random(32);
  }

  /** mac1 of msg[offset, offset+macAt) must be at macAt. */
  checkMac1(buf: Uint8Array, offset: number, macAt: number): boolean {
    const expected = mac(this.mac1Key, buf.subarray(offset, offset + macAt));
    return constantTimeEqual(expected, buf.subarray(offset + macAt, offset + macAt + MAC_SIZE));
  }

  /** mac2 (right after mac1) must be keyed by the cookie for `source`. */
  checkMac2(buf: Uint8Array, offset: number, mac1At: number, source: Uint8Array, now: number): boolean {
    const cookie = this.cookieFor(source, now);
    const mac2At = mac1At + MAC_SIZE;
    const expected = mac(cookie, buf.subarray(offset, offset + mac2At));
    return constantTimeEqual(expected, buf.subarray(offset + mac2At, offset + mac2At + MAC_SIZE));
  }

  /** A cookie reply to the message at buf[offset] (whose sender index is `senderIndex`). */
  createReply(buf: Uint8Array, offset: number, mac1At: number, senderIndex: number, source: Uint8Array, now: number, out: Uint8Array): number {
    const cookie = this.cookieFor(source, now);
    const nonce = this.random(24);
    const mac1 = buf.subarray(offset + mac1At, offset + mac1At + MAC_SIZE);
    const sealed = xaeadSeal(this.cookieKey, nonce, cookie, mac1);
    writeType(out, 0, TYPE_COOKIE_REPLY);
    writeU32(out, COOKIE_RECEIVER, senderIndex);
    out.set(nonce, COOKIE_NONCE);
    out.set(sealed, COOKIE_ENCRYPTED);
    return COOKIE_REPLY_SIZE;
  }

  private cookieFor(source: Uint8Array, now: number): Uint8Array {
    if (now - this.secretSetAt >= COOKIE_REFRESH_TIME) {
      this.secret = this.random(32);
      this.secretSetAt = now;
    }
    return mac(this.secret, source);
  }
}

/** The sending side, one per peer: adds mac1/mac2 to our handshake messages to that peer. */
export class CookieJar {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private cookie: Uint8Array | null = null;
  private cookieAt = Number.NEGATIVE_INFINITY;
  private lastMac1: Uint8Array | null = null;

  constructor(peerPublicKey: Uint8Array) {
    this.mac1Key = hash(LABEL_MAC1, peerPublicKey);
    this.cookieKey = hash(LABEL_COOKIE, peerPublicKey);
  }

  /** Fills mac1 at macAt and mac2 after it (zeros unless we hold a fresh cookie). */
  addMacs(msg: Uint8Array, macAt: number, now: number): void {
    const mac1 = mac(this.mac1Key, msg.subarray(0, macAt));
    msg.set(mac1, macAt);
    this.lastMac1 = mac1;
    const mac2 = this.cookie && now - this.cookieAt < COOKIE_REFRESH_TIME
      ? mac(this.cookie, msg.subarray(0, macAt + MAC_SIZE))
      : ZERO_MAC;
    msg.set(mac2, macAt + MAC_SIZE);
  }

  /** Takes the cookie from a reply to our last handshake message; false if it does not open. */
  consumeReply(buf: Uint8Array, offset: number, now: number): boolean {
    if (!this.lastMac1) return false;
    const nonce = buf.subarray(offset + COOKIE_NONCE, offset + COOKIE_NONCE + 24);
    const sealed = buf.subarray(offset + COOKIE_ENCRYPTED, offset + COOKIE_REPLY_SIZE);
    const cookie = xaeadOpen(this.cookieKey, nonce, sealed, this.lastMac1);
    if (!cookie) return false;
    this.cookie = cookie;
    this.cookieAt = now;
    return true;
  }
}
