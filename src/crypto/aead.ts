// ChaCha20-Poly1305 (RFC 8439) for the data path, as WireGuard uses it: a 32-byte key per session
// direction, a 96-bit nonce of four zero bytes followed by the packet counter as a 64-bit
// little-endian integer, and no associated data. Interchangeable backends, best first:
// - "libsodium+libgcrypt": libsodium for short payloads, libgcrypt for long ones, loaded on the
//   first long payload (aead-by-size.ts); OpenSSL for long ones when libgcrypt cannot be loaded.
//   libgcrypt has less fixed cost per packet than OpenSSL 3's EVP and opens 1420 bytes ~12 %
//   faster (0.90 against 1.02 µs, bench/aead.ts); it seals at the same speed;
// - "libsodium+libcrypto": the same with OpenSSL for long payloads (the default until libgcrypt);
// - "libsodium": one bun:ffi call per packet, the cheapest for short payloads and after idleness;
// - "libcrypto": OpenSSL's EVP interface through bun:ffi, four calls but faster per byte;
// - "libgcrypt": libgcrypt's cipher interface, three calls per packet;
// - "noble": @noble/ciphers in pure JS, about ten times slower, when neither library loads.
// All work in place on caller-owned buffers so the packet path never copies payloads.
import { BySizeBackend } from "./aead-by-size.ts";
import { loadLibcryptoBackend } from "./aead-libcrypto.ts";
import { loadLibgcryptBackend } from "./aead-libgcrypt.ts";
import { loadLibsodiumBackend } from "./aead-libsodium.ts";
import { nobleBackend } from "./aead-noble.ts";
import { quote } from "../text.ts";

export const TAG_SIZE = 16;
export const KEY_SIZE = 32;

/** One session key prepared for a backend: create once per key, destroy when the key is retired. */
export interface AeadKey {
  readonly backend: AeadBackend["name"];
}

export type BackendName = "libsodium+libcrypto" | "libsodium+libgcrypt" | "libsodium" | "libcrypto" | "libgcrypt" | "noble";
/** In order of preference. */
export const BACKEND_NAMES: readonly BackendName[] = [
  "libsodium+libgcrypt",
  "libsodium+libcrypto",
  "libsodium",
  "libcrypto",
  "libgcrypt",
  "noble",
];

/** What a key will be used for: a session's send key only seals, its receive key only opens. */
export type KeyUse = "seal" | "open" | "both";

export interface AeadBackend {
  readonly name: BackendName;
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

/** A backend by name, or why it cannot be used here. */
export function loadAeadBackend(name: BackendName): AeadBackend | string {
  if (name === "libsodium+libcrypto" || name === "libsodium+libgcrypt") {
    const short = loadLibsodiumBackend();
    if (typeof short === "string") return short;
    return new BySizeBackend(name, short, name === "libsodium+libcrypto" ? loadLibcryptoBackend : loadGcryptOrLibcrypto);
  }
  if (name === "libsodium") return loadLibsodiumBackend();
  if (name === "libcrypto") return loadLibcryptoBackend();
  if (name === "libgcrypt") return loadLibgcryptBackend();
  return nobleBackend;
}

/** libgcrypt, or OpenSSL where libgcrypt cannot be loaded (or why neither can). */
function loadGcryptOrLibcrypto(): AeadBackend | string {
  const gcrypt = loadLibgcryptBackend();
  if (typeof gcrypt !== "string") return gcrypt;
  const libcrypto = loadLibcryptoBackend();
  return typeof libcrypto === "string" ? `${gcrypt}; ${libcrypto}` : libcrypto;
}

/**
 * The backend WONTUN_AEAD forces: null when it is unset or empty, `{ error }` when it names none
 * (callers that read the environment first report that as a usage error).
 */
export function forcedAeadBackend(raw = process.env.WONTUN_AEAD): BackendName | null | { error: string } {
  const forced = raw?.trim().toLowerCase();
  if (!forced) return null;
  if ((BACKEND_NAMES as readonly string[]).includes(forced)) return forced as BackendName;
  return { error: `WONTUN_AEAD must be one of ${BACKEND_NAMES.join(", ")}, not ${quote(raw!)}` };
}

/**
 * The first backend of BACKEND_NAMES that loads and passes its self-test. WONTUN_AEAD set to one
 * of the names forces it; forcing one that cannot load throws.
 */
export function selectAeadBackend(): AeadBackend {
  if (selected) return selected;
  const forced = forcedAeadBackend();
  if (forced !== null) {
    if (typeof forced === "object") throw new Error(forced.error);
    const backend = loadAeadBackend(forced);
    if (typeof backend === "string") throw new Error(`WONTUN_AEAD=${forced}: ${backend}`);
    return (selected = backend);
  }
  for (const name of BACKEND_NAMES) {
    const backend = loadAeadBackend(name);
    if (typeof backend !== "string") return (selected = backend);
  }
  return (selected = nobleBackend);
}
