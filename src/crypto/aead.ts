// ChaCha20-Poly1305 (RFC 8439) for the data path, as WireGuard uses it: a 32-byte key per session
// direction, a 96-bit nonce of four zero bytes followed by the packet counter as a 64-bit
// little-endian integer, and no associated data. Two interchangeable backends:
// - "libcrypto": OpenSSL's EVP interface through bun:ffi, about 1 µs per 1420-byte packet;
// - "noble": @noble/ciphers in pure JS, about ten times slower, used when libcrypto is missing.
// Both work in place on caller-owned buffers so the packet path never copies payloads.
import { loadLibcryptoBackend } from "./aead-libcrypto.ts";
import { nobleBackend } from "./aead-noble.ts";

export const TAG_SIZE = 16;
export const KEY_SIZE = 32;

/** One session key prepared for a backend: create once per key, destroy when the key is retired. */
export interface AeadKey {
  readonly backend: AeadBackend["name"];
}

/** What a key will be used for: a session's send key only seals, its receive key only opens. */
export type KeyUse = "seal" | "open" | "both";

export interface AeadBackend {
  readonly name: "libcrypto" | "noble";
  /** `use` lets a backend prepare only what is needed (libcrypto: one native context, not two). */
  createKey(key: Uint8Array, use?: KeyUse): AeadKey;
  /** In place: buf[off, off+len) plaintext -> ciphertext, then the 16-byte tag at off+len.
   *  counter: an integer in 0..2^53-1. No associated data. Does not allocate. */
  seal(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): void;
  /** In place: buf[off, off+len) = ciphertext || tag (len >= 16) -> plaintext in
   *  buf[off, off+len-16). False if authentication fails (buf contents are then unspecified). */
  open(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): boolean;
  /** Wipes the key material; the AeadKey must not be used afterwards. */
  destroyKey(key: AeadKey): void;
}

let selected: AeadBackend | undefined;

/** The libcrypto backend if libcrypto.so.3 loads and passes its self-test, else noble.
 *  WONTUN_AEAD=noble|libcrypto forces one; forcing an unavailable libcrypto throws. */
export function selectAeadBackend(): AeadBackend {
  if (selected) return selected;
  const forced = process.env.WONTUN_AEAD?.trim().toLowerCase();
  if (forced && forced !== "noble" && forced !== "libcrypto") {
    throw new Error(`WONTUN_AEAD must be "noble" or "libcrypto", not "${process.env.WONTUN_AEAD}"`);
  }
  if (forced === "noble") return (selected = nobleBackend);
  const libcrypto = loadLibcryptoBackend();
  if (typeof libcrypto === "string") {
    if (forced === "libcrypto") throw new Error(`WONTUN_AEAD=libcrypto: ${libcrypto}`);
    return (selected = nobleBackend);
  }
  return (selected = libcrypto);
}
