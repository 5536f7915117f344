// libsodium (libsodium.so.23) through bun:ffi, loaded once for everything that uses it: the
// per-packet AEAD backend (aead-libsodium.ts) and the handshake primitives (primitives.ts).
// Every function here works on caller-owned memory and keeps no state between calls, so a
// handshake done with it leaves no native objects behind for the garbage collector.
import { dlopen, FFIType } from "bun:ffi";
import { openFirst } from "./native-library.ts";

const P = FFIType.ptr;
const U64 = FFIType.u64;
const I32 = FFIType.i32;

function open(name: string) {
  return dlopen(name, {
    sodium_init: { args: [], returns: I32 },
    sodium_memzero: { args: [P, U64], returns: FFIType.void },
    // (c, mac, maclen_p, m, mlen, ad, adlen, nsec, npub, k)
    crypto_aead_chacha20poly1305_ietf_encrypt_detached: { args: [P, P, P, P, U64, P, U64, P, P, P], returns: I32 },
    // (m, nsec, c, clen, mac, ad, adlen, npub, k)
    crypto_aead_chacha20poly1305_ietf_decrypt_detached: { args: [P, P, P, U64, P, P, U64, P, P], returns: I32 },
    // (c, clen_p, m, mlen, ad, adlen, nsec, npub, k): c = ciphertext || tag
    crypto_aead_chacha20poly1305_ietf_encrypt: { args: [P, P, P, U64, P, U64, P, P, P], returns: I32 },
    // (m, mlen_p, nsec, c, clen, ad, adlen, npub, k): -1 unless the tag verifies
    crypto_aead_chacha20poly1305_ietf_decrypt: { args: [P, P, P, P, U64, P, U64, P, P], returns: I32 },
    crypto_aead_xchacha20poly1305_ietf_encrypt: { args: [P, P, P, U64, P, U64, P, P, P], returns: I32 },
    crypto_aead_xchacha20poly1305_ietf_decrypt: { args: [P, P, P, P, U64, P, U64, P, P], returns: I32 },
    // (q, n, p): -1 if the shared point is all zeros (a low-order public key)
    crypto_scalarmult: { args: [P, P, P], returns: I32 },
    // (q, n): the public key of n
    crypto_scalarmult_base: { args: [P, P], returns: I32 },
  }).symbols;
}

export type Libsodium = ReturnType<typeof open>;

let loaded: Libsodium | string | undefined;

/** The library's functions, initialised, or why it could not be loaded. */
export function libsodium(): Libsodium | string {
  if (loaded !== undefined) return loaded;
  const lib = openFirst(["libsodium.so.23", "libsodium.so"], open, "libsodium");
  if (typeof lib === "string") return (loaded = lib);
  // 0 = initialised now, 1 = already initialised, -1 = failure.
  if (lib.sodium_init() < 0) return (loaded = "sodium_init() failed");
  return (loaded = lib);
}
