// Handshake-time primitives of the WireGuard (Noise IKpsk2) construction: BLAKE2s hash, keyed
// BLAKE2s MAC, HMAC-BLAKE2s and its KDF, X25519, ChaCha20-Poly1305 with associated data and
// XChaCha20-Poly1305. These allocate freely; the per-packet AEAD is in aead.ts.
//
// Implementation choices (measured in Bun 1.4.5, see bench/aead.ts):
// - hash: Bun.CryptoHasher("blake2s256") (BoringSSL), ~0.45 µs for 32 bytes, against ~1.1 µs
//   for node:crypto createHash("blake2s256") and ~6 µs for noble; those are the fallbacks.
// - hmac: composed from that hash (64-byte block, ipad/opad): in Bun 1.4.5 both
//   createHmac("blake2s256") and new Bun.CryptoHasher("blake2s256", key) throw; kdf builds on it.
// - mac: OpenSSL's BLAKE2SMAC through bun:ffi (libcrypto-mac.ts), ~0.5 µs for an initiation's
//   mac1; @noble/hashes' keyed blake2s (2-5 µs) when libcrypto cannot do it or WONTUN_MAC=noble.
//   node:crypto and Bun.CryptoHasher have no keyed BLAKE2s.
// - hmac/kdf: composed from hash(). An HMAC on the shared hasher with scratch buffers instead of
//   fresh ones, and OpenSSL's EVP_MAC HMAC with BLAKE2S-256, were both measured no faster
//   (~0.8-0.9 µs per HMAC, ~2.4 µs per KDF with two outputs): the native calls dominate.
// - x25519 and the AEADs with associated data (a few of each per handshake): libsodium, one FFI
//   call each on caller-owned memory. The alternatives left objects behind: node:crypto's X25519
//   needs a native KeyObject per public key, @noble/ciphers allocates per call, and after a burst
//   of a thousand handshakes the process kept megabytes more (bench/scale.ts). Each is checked
//   once against a known answer, with fallbacks: x25519 to node:crypto diffieHellman on KeyObjects
//   imported from DER-wrapped raw keys (the last few private keys kept imported, since importing
//   costs ~16 µs of ~55), then noble; the AEADs to @noble/ciphers.
import { createHash, createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from "node:crypto";
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 as nobleX25519 } from "@noble/curves/ed25519.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { libcryptoKeyedBlake2s, type KeyedBlake2s } from "./libcrypto-mac.ts";
import { libsodium, type Libsodium } from "./libsodium.ts";

export const HASH_SIZE = 32;
export const MAC_SIZE = 16;
export const KEY_SIZE = 32;
export const TAG_SIZE = 16;

// ---------------------------------------------------------------------------------------------
// BLAKE2s

const ABC_BLAKE2S = "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"; // RFC 7693 App. B

type Blake2sImpl = "Bun.CryptoHasher" | "node:crypto" | "noble";

function pickBlake2s(): Blake2sImpl {
  const abc = new Uint8Array([0x61, 0x62, 0x63]);
  try {
    if (typeof Bun !== "undefined" && new Bun.CryptoHasher("blake2s256").update(abc).digest("hex") === ABC_BLAKE2S) {
      return "Bun.CryptoHasher";
    }
  } catch {
    // not in this runtime
  }
  try {
    if (createHash("blake2s256").update(abc).digest("hex") === ABC_BLAKE2S) return "node:crypto";
  } catch {
    // not in this runtime
  }
  return "noble";
}

/** Which implementation each primitive uses in this process (for logs and the bench). */
export const implementations = {
  hash: pickBlake2s(),
  mac: "noble" as "libcrypto" | "noble", // settled on first use, see macImpl()
  x25519: "libsodium" as "libsodium" | "node:crypto" | "noble", // settled on first use, see x25519Impl()
  aead: "libsodium" as "libsodium" | "noble", // settled on first use, see aeadImpl()
};

/**
 * Settles every primitive's implementation now (each runs a self-test on first use): a daemon
 * calls this while idle, so that its first handshake does not pay ~10 ms for it.
 */
export function selectHandshakeCrypto(): void {
  x25519Impl();
  aeadImpl();
  macImpl();
}

const hexBytes = (s: string) => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

/** Copies a Buffer result into a plain Uint8Array and wipes the Buffer. */
function plain(b: Buffer): Uint8Array {
  const out = new Uint8Array(b.length);
  out.set(b);
  b.fill(0);
  return out;
}

// Bun.CryptoHasher.digest(out) insists on room for its largest digest (64 bytes).
const digestScratch = new Uint8Array(64);
// One hasher for every hash: digest() resets it for the next use. A new one per call would leave
// a native hashing context per call for the garbage collector, which does not see their size: a
// burst of handshakes (dozens of hashes each) then grew the process by megabytes.
let sharedHasher: Bun.CryptoHasher | null = null;

/** BLAKE2s-256 of the concatenation of parts. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  switch (implementations.hash) {
    case "Bun.CryptoHasher": {
      const h = (sharedHasher ??= new Bun.CryptoHasher("blake2s256"));
      try {
        for (const p of parts) h.update(p);
      } catch (err) {
        sharedHasher = null; // holds part of this input: never reuse it
        throw err;
      }
      h.digest(digestScratch);
      const out = digestScratch.slice(0, HASH_SIZE);
      digestScratch.fill(0, 0, HASH_SIZE);
      return out;
    }
    case "node:crypto": {
      const h = createHash("blake2s256");
      for (const p of parts) h.update(p);
      return plain(h.digest());
    }
    default: {
      const h = blake2s.create();
      for (const p of parts) h.update(p);
      return h.digest();
    }
  }
}

let keyedBlake2s: KeyedBlake2s | null = null;
let macChecked = false;

/**
 * libcrypto's BLAKE2SMAC if it loads and agrees with noble on a sample (both key sizes used),
 * unless WONTUN_MAC=noble; settled once.
 */
function macImpl(): "libcrypto" | "noble" {
  if (macChecked) return implementations.mac;
  macChecked = true;
  if (process.env.WONTUN_MAC?.trim().toLowerCase() === "noble") return (implementations.mac = "noble");
  const lib = libcryptoKeyedBlake2s();
  if (typeof lib === "string") return (implementations.mac = "noble");
  try {
    const data = Uint8Array.from({ length: 150 }, (_, i) => (i * 7 + 3) & 0xff);
    for (const keyLength of [32, 16, 1]) {
      const key = data.subarray(keyLength, keyLength * 2);
      const expected = blake2s.create({ key, dkLen: MAC_SIZE }).update(data.subarray(3, 119)).digest();
      if (!constantTimeEqual(lib.mac16(key, data.subarray(3, 119)), expected)) return (implementations.mac = "noble");
    }
  } catch {
    return (implementations.mac = "noble");
  }
  keyedBlake2s = lib;
  return (implementations.mac = "libcrypto");
}

/** Keyed BLAKE2s with a 16-byte output (WireGuard's MAC); key is 1..32 bytes. */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  if (macImpl() === "libcrypto" && parts.length === 1) return keyedBlake2s!.mac16(key, parts[0]);
  return macNoble(key, ...parts);
}

/** Keyed BLAKE2s with @noble/hashes, whatever mac() uses (for tests and the bench). */
export function macNoble(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({ key, dkLen: MAC_SIZE });
  for (const p of parts) h.update(p);
  return h.digest();
}

const BLOCK = 64;

/** HMAC-BLAKE2s-256 (RFC 2104 over BLAKE2s, 64-byte block) of the concatenation of parts. */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const pad = new Uint8Array(BLOCK);
  if (key.length > BLOCK) {
    const k = hash(key);
    pad.set(k);
    k.fill(0);
  } else {
    pad.set(key);
  }
  for (let i = 0; i < BLOCK; i++) pad[i] ^= 0x36;
  const inner = hash(pad, ...parts);
  for (let i = 0; i < BLOCK; i++) pad[i] ^= 0x36 ^ 0x5c;
  const out = hash(pad, inner);
  pad.fill(0);
  inner.fill(0);
  return out;
}

const ONE = new Uint8Array([1]);
const TWO = new Uint8Array([2]);
const THREE = new Uint8Array([3]);

/** WireGuard's KDF_n: t0 = HMAC(key, input), t1 = HMAC(t0, 0x1), t_i = HMAC(t0, t_{i-1} || i). */
export function kdf(key: Uint8Array, input: Uint8Array, n: 1): [Uint8Array];
export function kdf(key: Uint8Array, input: Uint8Array, n: 2): [Uint8Array, Uint8Array];
export function kdf(key: Uint8Array, input: Uint8Array, n: 3): [Uint8Array, Uint8Array, Uint8Array];
export function kdf(key: Uint8Array, input: Uint8Array, n: 1 | 2 | 3): Uint8Array[];
export function kdf(key: Uint8Array, input: Uint8Array, n: 1 | 2 | 3): Uint8Array[] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, ONE);
  const out = [t1];
  if (n >= 2) {
    const t2 = hmac(t0, t1, TWO);
    out.push(t2);
    if (n >= 3) out.push(hmac(t0, t2, THREE));
  }
  t0.fill(0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// X25519

// DER prefixes wrapping a raw 32-byte X25519 key (RFC 8410): PKCS#8 private key, SPKI public key.
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);
const privateDer = Buffer.alloc(PKCS8_PREFIX.length + 32);
privateDer.set(PKCS8_PREFIX);
const publicDer = Buffer.alloc(SPKI_PREFIX.length + 32);
publicDer.set(SPKI_PREFIX);

interface CachedPrivate {
  readonly bytes: Uint8Array;
  readonly key: KeyObject;
}
/** Most recently used first. Holds copies of private keys; forgetX25519Keys() drops them. */
const privateCache: CachedPrivate[] = [];
const PRIVATE_CACHE_SIZE = 4;

function importPrivate(priv: Uint8Array): KeyObject {
  for (let i = 0; i < privateCache.length; i++) {
    const entry = privateCache[i];
    if (constantTimeEqual(entry.bytes, priv)) {
      if (i > 0) {
        privateCache.splice(i, 1);
        privateCache.unshift(entry);
      }
      return entry.key;
    }
  }
  privateDer.set(priv, PKCS8_PREFIX.length);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateDer, format: "der", type: "pkcs8" });
  } finally {
    privateDer.fill(0, PKCS8_PREFIX.length);
  }
  const bytes = new Uint8Array(32); // a copy (Buffer#slice would share the caller's memory)
  bytes.set(priv);
  privateCache.unshift({ bytes, key });
  if (privateCache.length > PRIVATE_CACHE_SIZE) privateCache.pop()!.bytes.fill(0);
  return key;
}

function importPublic(pub: Uint8Array): KeyObject {
  publicDer.set(pub, SPKI_PREFIX.length);
  return createPublicKey({ key: publicDer, format: "der", type: "spki" });
}

/** Drops the cached imported private keys (e.g. when the interface's private key changes). */
export function forgetX25519Keys(): void {
  for (const entry of privateCache) entry.bytes.fill(0);
  privateCache.length = 0;
}

function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i];
  return acc === 0;
}

function nodeX25519(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: importPrivate(priv), publicKey: importPublic(pub) });
  } catch (e) {
    // BoringSSL/OpenSSL refuse an all-zero shared secret (a low-order public key).
    if ((e as { code?: string }).code === "ERR_CRYPTO_OPERATION_FAILED") return null;
    throw e;
  }
  const out = plain(shared);
  return isZero(out) ? null : out;
}

function nobleX25519Shared(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  let out: Uint8Array;
  try {
    out = nobleX25519.getSharedSecret(priv, pub);
  } catch {
    return null; // noble throws on an all-zero result; lengths were checked by the caller
  }
  return isZero(out) ? null : out;
}

let x25519Checked = false;
/** Set by whichever of x25519Impl() and aeadImpl() first finds libsodium usable. */
let sodium: Libsodium | null = null;

/** The first of libsodium, node:crypto and noble that passes RFC 7748 §5.2; settled once. */
function x25519Impl(): "libsodium" | "node:crypto" | "noble" {
  if (x25519Checked) return implementations.x25519;
  x25519Checked = true;
  const k = hexBytes("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  const u = hexBytes("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  const expected = hexBytes("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
  const lib = libsodium();
  if (typeof lib !== "string") {
    sodium = lib;
    const r = sodiumX25519(k, u);
    if (r && constantTimeEqual(r, expected)) return (implementations.x25519 = "libsodium");
  }
  try {
    const r = nodeX25519(k, u);
    forgetX25519Keys();
    implementations.x25519 = r && constantTimeEqual(r, expected) ? "node:crypto" : "noble";
  } catch {
    implementations.x25519 = "noble";
  }
  return implementations.x25519;
}

function sodiumX25519(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  const out = new Uint8Array(32);
  return sodium!.crypto_scalarmult(out, priv, pub) === 0 ? out : null;
}

/** X25519(privateKey, publicKey), or null when the shared secret is all zeros (must be rejected). */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  if (privateKey.length !== 32 || publicKey.length !== 32) {
    throw new RangeError(`X25519 keys are 32 bytes (got ${privateKey.length} and ${publicKey.length})`);
  }
  switch (x25519Impl()) {
    case "libsodium":
      return sodiumX25519(privateKey, publicKey);
    case "node:crypto":
      return nodeX25519(privateKey, publicKey);
    default:
      return nobleX25519Shared(privateKey, publicKey);
  }
}

/** The X25519 public key for a private key (the private key is clamped as X25519 always does). */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  if (privateKey.length !== 32) throw new RangeError(`X25519 private key is 32 bytes, got ${privateKey.length}`);
  switch (x25519Impl()) {
    case "libsodium": {
      const out = new Uint8Array(32);
      sodium!.crypto_scalarmult_base(out, privateKey);
      return out;
    }
    case "node:crypto": {
      const der = createPublicKey(importPrivate(privateKey)).export({ type: "spki", format: "der" });
      return plain(der.subarray(SPKI_PREFIX.length));
    }
    default:
      return nobleX25519.getPublicKey(privateKey);
  }
}

/** X25519 through node:crypto KeyObjects, the first fallback, whatever x25519() uses (for tests). */
export function x25519NodeCrypto(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  return nodeX25519(privateKey, publicKey);
}

/** X25519 with the noble implementation, whatever x25519() uses (for tests and the bench). */
export function x25519Noble(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  return nobleX25519Shared(privateKey, publicKey);
}

// ---------------------------------------------------------------------------------------------
// AEAD with associated data (handshake messages, cookie replies)

/** WireGuard's 96-bit nonce: 4 zero bytes || counter as 64-bit little-endian. */
function wgNonce(counter: number): Uint8Array {
  if (!(counter >= 0 && counter <= Number.MAX_SAFE_INTEGER && Math.floor(counter) === counter)) {
    throw new RangeError(`AEAD counter ${counter} is not an integer in 0..2^53-1`);
  }
  const nonce = new Uint8Array(12);
  const v = new DataView(nonce.buffer);
  v.setUint32(4, counter >>> 0, true);
  v.setUint32(8, Math.floor(counter / 4294967296), true);
  return nonce;
}

let aeadChecked = false;

/** libsodium if it loads and agrees with @noble/ciphers on a sample of both constructions. */
function aeadImpl(): "libsodium" | "noble" {
  if (aeadChecked) return implementations.aead;
  aeadChecked = true;
  implementations.aead = "noble";
  const lib = libsodium();
  if (typeof lib === "string") return "noble";
  sodium = lib;
  const key = hexBytes("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const nonce = hexBytes("070000004041424344454647");
  const xnonce = hexBytes("404142434445464748494a4b4c4d4e4f5051525354555657");
  const ad = hexBytes("50515253c0c1c2c3c4c5c6c7");
  const message = new TextEncoder().encode("Ladies and Gentlemen of the class of '99");
  try {
    for (const x of [false, true]) {
      const n = x ? xnonce : nonce;
      const sealed = (x ? xchacha20poly1305 : chacha20poly1305)(key, n, ad).encrypt(message);
      if (!constantTimeEqual(sodiumSeal(x, key, n, message, ad), sealed)) return "noble";
      const opened = sodiumOpen(x, key, n, sealed, ad);
      if (opened === null || !constantTimeEqual(opened, message)) return "noble";
      sealed[0] ^= 1;
      if (sodiumOpen(x, key, n, sealed, ad) !== null) return "noble";
    }
  } catch {
    return "noble";
  }
  return (implementations.aead = "libsodium");
}

/** libsodium reads the key and nonce through bare pointers: their lengths are checked here. */
function checkKeyAndNonce(xchacha: boolean, key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== KEY_SIZE) throw new RangeError(`AEAD key must be ${KEY_SIZE} bytes, got ${key.length}`);
  const nonceSize = xchacha ? 24 : 12;
  if (nonce.length !== nonceSize) throw new RangeError(`AEAD nonce must be ${nonceSize} bytes, got ${nonce.length}`);
}

function sodiumSeal(xchacha: boolean, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  checkKeyAndNonce(xchacha, key, nonce);
  const lib = sodium!;
  const seal = xchacha ? lib.crypto_aead_xchacha20poly1305_ietf_encrypt : lib.crypto_aead_chacha20poly1305_ietf_encrypt;
  const out = new Uint8Array(plaintext.length + TAG_SIZE);
  // Empty inputs are passed as NULL with length 0, which libsodium accepts.
  seal(out, null, plaintext.length ? plaintext : null, plaintext.length, ad.length ? ad : null, ad.length, null, nonce, key);
  return out;
}

function sodiumOpen(xchacha: boolean, key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  checkKeyAndNonce(xchacha, key, nonce);
  if (sealed.length < TAG_SIZE) return null;
  const lib = sodium!;
  const open = xchacha ? lib.crypto_aead_xchacha20poly1305_ietf_decrypt : lib.crypto_aead_chacha20poly1305_ietf_decrypt;
  const out = new Uint8Array(sealed.length - TAG_SIZE);
  const ok = open(out.length ? out : null, null, null, sealed, sealed.length, ad.length ? ad : null, ad.length, nonce, key) === 0;
  return ok ? out : null;
}

/** Raw RFC 8439 ChaCha20-Poly1305 seal with an explicit 12-byte nonce: ciphertext || tag. */
export function chacha20poly1305Raw(key: Uint8Array, nonce12: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  if (aeadImpl() === "libsodium") return sodiumSeal(false, key, nonce12, plaintext, ad);
  return chacha20poly1305(key, nonce12, ad).encrypt(plaintext);
}

/** ChaCha20-Poly1305 seal with WireGuard's counter nonce and associated data: ciphertext || tag. */
export function aeadSealOnce(key: Uint8Array, counter: number, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return chacha20poly1305Raw(key, wgNonce(counter), plaintext, ad);
}

/** Opens aeadSealOnce's output; null if it is shorter than a tag or does not authenticate. */
export function aeadOpenOnce(key: Uint8Array, counter: number, ciphertextWithTag: Uint8Array, ad: Uint8Array): Uint8Array | null {
  // Nothing was sealed under a counter outside 0..2^53-1 (aeadSealOnce refuses those).
  if (ciphertextWithTag.length < TAG_SIZE || !Number.isSafeInteger(counter) || counter < 0) return null;
  if (aeadImpl() === "libsodium") return sodiumOpen(false, key, wgNonce(counter), ciphertextWithTag, ad);
  try {
    return chacha20poly1305(key, wgNonce(counter), ad).decrypt(ciphertextWithTag);
  } catch {
    return null;
  }
}

/** XChaCha20-Poly1305 seal (24-byte nonce), for cookie replies: ciphertext || tag. */
export function xaeadSeal(key: Uint8Array, nonce24: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  if (aeadImpl() === "libsodium") return sodiumSeal(true, key, nonce24, plaintext, ad);
  return xchacha20poly1305(key, nonce24, ad).encrypt(plaintext);
}

/** Opens xaeadSeal's output; null if it is shorter than a tag or does not authenticate. */
export function xaeadOpen(key: Uint8Array, nonce24: Uint8Array, ciphertextWithTag: Uint8Array, ad: Uint8Array): Uint8Array | null {
  if (ciphertextWithTag.length < TAG_SIZE) return null;
  if (aeadImpl() === "libsodium") return sodiumOpen(true, key, nonce24, ciphertextWithTag, ad);
  try {
    return xchacha20poly1305(key, nonce24, ad).decrypt(ciphertextWithTag);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Utilities

/** n bytes from the system CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** Equal length and contents, in time that depends only on the length. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Overwrites buf with zeros. */
export function wipe(buf: Uint8Array): void {
  buf.fill(0);
}
