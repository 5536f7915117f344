// The Noise IKpsk2 handshake (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s), as a pair of small state
// machines over the Noise "symmetric state". WireGuard is this pattern with the prologue
// "WireGuard v1 zx2c4 Jason@zx2c4.com", a TAI64N timestamp as the first payload and an empty
// second payload; keeping the pattern generic lets the cacophony test vectors check it.
//
//   <- s                         (responder's static key known in advance)
//   -> e, es, s, ss  [payload]
//   <- e, ee, se, psk [payload]
import { aeadOpenOnce, aeadSealOnce, constantTimeEqual, hash, kdf, wipe, x25519 } from "../../crypto/primitives.ts";

export const KEY_SIZE = 32;
export const TAG_SIZE = 16;
const EMPTY = new Uint8Array(0);

export interface StaticKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * WONTUN_NOISE_CACHE=off: every handshake hashes the protocol name, the prologue and the first
 * static key afresh. By default the transcript hash after them is kept (they are the same for
 * every handshake a responder answers: its own static key), which saves three BLAKE2s calls and
 * a TextEncoder per handshake.
 */
export const noiseCacheEnabled = process.env.WONTUN_NOISE_CACHE?.trim().toLowerCase() !== "off";

/** The last (protocol name, prologue, first static key) and the state after mixing them in. */
interface CachedStart {
  name: string;
  prologue: Uint8Array;
  key: Uint8Array;
  /** ck after the name (ck is h before the prologue is mixed in). */
  ck: Uint8Array;
  /** h after name, prologue and key. */
  h: Uint8Array;
}
let cachedStart: CachedStart | null = null;

/** Noise's SymmetricState: chaining key, transcript hash and the current cipher key. */
export class SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  private k: Uint8Array | null = null;
  private n = 0;

  /** `from`: start from this state instead of the protocol name (taken, not copied). */
  constructor(protocolName: string, from?: { ck: Uint8Array; h: Uint8Array }) {
    if (from) {
      this.ck = from.ck;
      this.h = from.h;
      return;
    }
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= 32) {
      this.h = new Uint8Array(32);
      this.h.set(name);
    } else {
      this.h = hash(name);
    }
    this.ck = this.h.slice();
  }

  /**
   * InitializeSymmetric(protocolName), MixHash(prologue), MixHash(key): how both sides of IK
   * start (the key is the responder's static public key). Taken from a one-entry cache when the
   * three are the ones of the previous call (always, for a responder).
   */
  static start(protocolName: string, prologue: Uint8Array, key: Uint8Array): SymmetricState {
    const c = cachedStart;
    if (noiseCacheEnabled && c !== null && c.name === protocolName && constantTimeEqual(c.prologue, prologue) && constantTimeEqual(c.key, key)) {
      return new SymmetricState(protocolName, { ck: c.ck.slice(), h: c.h.slice() });
    }
    const st = new SymmetricState(protocolName);
    const ck = st.ck.slice();
    st.mixHash(prologue);
    st.mixHash(key);
    if (noiseCacheEnabled) cachedStart = { name: protocolName, prologue: prologue.slice(), key: key.slice(), ck, h: st.h.slice() };
    return st;
  }

  mixHash(data: Uint8Array): void {
    this.h = hash(this.h, data);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = kdf(this.ck, ikm, 2);
    this.ck = ck;
    this.k = k;
    this.n = 0;
  }

  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, th, k] = kdf(this.ck, ikm, 3);
    this.ck = ck;
    this.mixHash(th);
    this.k = k;
    this.n = 0;
  }

  /** Always keyed in IK (es precedes the first encryption), so plaintext passthrough is not needed. */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    if (!this.k) throw new Error("noise: encrypt before a key was mixed");
    const ct = aeadSealOnce(this.k, this.n++, plaintext, this.h);
    this.mixHash(ct);
    return ct;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array | null {
    if (!this.k) throw new Error("noise: decrypt before a key was mixed");
    const pt = aeadOpenOnce(this.k, this.n++, ciphertext, this.h);
    if (pt === null) return null;
    this.mixHash(ciphertext);
    return pt;
  }

  /** The two transport keys: [initiator -> responder, responder -> initiator]. */
  split(): [Uint8Array, Uint8Array] {
    const [a, b] = kdf(this.ck, EMPTY, 2);
    return [a, b];
  }

  wipe(): void {
    wipe(this.ck);
    if (this.k) wipe(this.k);
  }
}

function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  return x25519(privateKey, publicKey);
}

/** Initiator side. One object per handshake attempt. */
export class IKInitiator {
  readonly state: SymmetricState;

  constructor(
    protocolName: string,
    prologue: Uint8Array,
    private readonly s: StaticKeyPair,
    private readonly rs: Uint8Array,
    private readonly psk: Uint8Array,
    readonly e: StaticKeyPair,
    /** DH(s, rs) if already known (it never changes for a pair of static keys). */
    private readonly precomputedSs: Uint8Array | null = null,
  ) {
    this.state = SymmetricState.start(protocolName, prologue, rs);
  }

  /** -> e, es, s, ss, payload. Returns e.pub || enc(s) || enc(payload), or null if a DH is degenerate. */
  writeMessage1(payload: Uint8Array): Uint8Array | null {
    const st = this.state;
    st.mixHash(this.e.publicKey);
    st.mixKey(this.e.publicKey); // psk handshakes also mix e into the key
    const es = dh(this.e.privateKey, this.rs);
    if (!es) return null;
    st.mixKey(es);
    const encStatic = st.encryptAndHash(this.s.publicKey);
    const ss = this.precomputedSs ?? dh(this.s.privateKey, this.rs);
    if (!ss) return null;
    st.mixKey(ss);
    const encPayload = st.encryptAndHash(payload);
    const out = new Uint8Array(KEY_SIZE + encStatic.length + encPayload.length);
    out.set(this.e.publicKey);
    out.set(encStatic, KEY_SIZE);
    out.set(encPayload, KEY_SIZE + encStatic.length);
    return out;
  }

  /** <- e, ee, se, psk, payload. Returns the payload, or null if the message does not authenticate. */
  readMessage2(message: Uint8Array): Uint8Array | null {
    if (message.length < KEY_SIZE + TAG_SIZE) return null;
    const st = this.state;
    const re = message.subarray(0, KEY_SIZE);
    st.mixHash(re);
    st.mixKey(re);
    const ee = dh(this.e.privateKey, re);
    if (!ee) return null;
    st.mixKey(ee);
    const se = dh(this.s.privateKey, re);
    if (!se) return null;
    st.mixKey(se);
    st.mixKeyAndHash(this.psk);
    return st.decryptAndHash(message.subarray(KEY_SIZE));
  }
}

/**
 * DH(s, rs) for an initiator's static key, or null to refuse the handshake (e.g. an unknown key,
 * so no DH is spent on it). The default computes it; callers cache it per peer.
 */
export type StaticStatic = (rs: Uint8Array) => Uint8Array | null;

/** Responder side. The psk is chosen after message 1 reveals who the initiator is. */
export class IKResponder {
  readonly state: SymmetricState;
  /**
   * The initiator's static public key, once decrypted from message 1. Only authenticated if
   * readMessage1 returned a payload; set even when the static-static step refused it.
   */
  rs: Uint8Array | null = null;
  private re: Uint8Array | null = null;

  constructor(
    protocolName: string,
    prologue: Uint8Array,
    private readonly s: StaticKeyPair,
    private readonly staticStatic: StaticStatic = (rs) => dh(s.privateKey, rs),
  ) {
    this.state = SymmetricState.start(protocolName, prologue, s.publicKey);
  }

  /**
   * -> e, es, s, ss, payload. `staticLength` is the plaintext size of s (32). Returns the payload,
   * or null if the message does not authenticate; rs then names the initiator.
   */
  readMessage1(message: Uint8Array): Uint8Array | null {
    const encStaticLength = KEY_SIZE + TAG_SIZE;
    if (message.length < KEY_SIZE + encStaticLength + TAG_SIZE) return null;
    const st = this.state;
    const re = message.subarray(0, KEY_SIZE).slice();
    st.mixHash(re);
    st.mixKey(re);
    const es = dh(this.s.privateKey, re);
    if (!es) return null;
    st.mixKey(es);
    const rs = st.decryptAndHash(message.subarray(KEY_SIZE, KEY_SIZE + encStaticLength));
    if (!rs) return null;
    this.rs = rs;
    const ss = this.staticStatic(rs);
    if (!ss) return null;
    st.mixKey(ss);
    const payload = st.decryptAndHash(message.subarray(KEY_SIZE + encStaticLength));
    if (!payload) return null;
    this.re = re;
    return payload;
  }

  /** <- e, ee, se, psk, payload. Returns e.pub || enc(payload), or null if a DH is degenerate. */
  writeMessage2(e: StaticKeyPair, psk: Uint8Array, payload: Uint8Array): Uint8Array | null {
    if (!this.re || !this.rs) throw new Error("noise: writeMessage2 before readMessage1");
    const st = this.state;
    st.mixHash(e.publicKey);
    st.mixKey(e.publicKey);
    const ee = dh(e.privateKey, this.re);
    if (!ee) return null;
    st.mixKey(ee);
    const se = dh(e.privateKey, this.rs);
    if (!se) return null;
    st.mixKey(se);
    st.mixKeyAndHash(psk);
    const enc = st.encryptAndHash(payload);
    return concat(e.publicKey, enc);
  }
}
