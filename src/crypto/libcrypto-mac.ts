// Keyed BLAKE2s (WireGuard's MAC: mac1, mac2, cookies) through OpenSSL's EVP_MAC "BLAKE2SMAC"
// (libcrypto.so.3, OpenSSL >= 3.0) called with bun:ffi: ~0.5 µs for a 116-byte initiation
// against ~2-5 µs for @noble/hashes' keyed blake2s, and nothing allocated but the 16-byte result.
// Under load a responder computes three of these per initiation (mac1, the cookie for the
// source, mac2) and one per response.
//
// One EVP_MAC_CTX serves every call (the handshake path is single-threaded): its output size is
// set once to 16 bytes (OSSL_PARAM "size"), and each call re-initialises it with that call's key.
// The context keeps the last key until the next call; WireGuard's MAC keys are hashes of public
// keys, and cookies, which are not long-term secrets.
import { dlopen, FFIType, ptr, type Pointer } from "bun:ffi";
import { isLittleEndian, openFirst } from "./native-library.ts";

const T = FFIType;

function open(name: string) {
  return dlopen(name, {
    EVP_MAC_fetch: { args: [T.ptr, T.ptr, T.ptr], returns: T.ptr },
    EVP_MAC_CTX_new: { args: [T.ptr], returns: T.ptr },
    EVP_MAC_CTX_set_params: { args: [T.ptr, T.ptr], returns: T.i32 },
    EVP_MAC_init: { args: [T.ptr, T.ptr, T.u64, T.ptr], returns: T.i32 },
    EVP_MAC_update: { args: [T.ptr, T.ptr, T.u64], returns: T.i32 },
    EVP_MAC_final: { args: [T.ptr, T.ptr, T.ptr, T.u64], returns: T.i32 },
  }).symbols;
}

/** OSSL_PARAM_UNSIGNED_INTEGER from openssl/core.h. */
const OSSL_PARAM_UNSIGNED_INTEGER = 2;
/** sizeof(OSSL_PARAM) on LP64: key, data_type (padded), data, data_size, return_size. */
const OSSL_PARAM_SIZE = 40;

export interface KeyedBlake2s {
  /** BLAKE2s keyed with `key` (1..32 bytes), 16-byte output, over `data`. */
  mac16(key: Uint8Array, data: Uint8Array): Uint8Array;
}

// Everything whose address OpenSSL keeps or reads later is held here, so it stays alive.
const keep: Uint8Array[] = [];

function cString(s: string): Uint8Array {
  const b = new TextEncoder().encode(`${s}\0`);
  keep.push(b);
  return b;
}

let loaded: KeyedBlake2s | string | undefined;

/** The libcrypto keyed BLAKE2s, or why it cannot be used (no library, OpenSSL < 3, no BLAKE2SMAC). */
export function libcryptoKeyedBlake2s(): KeyedBlake2s | string {
  if (loaded !== undefined) return loaded;
  if (!isLittleEndian()) return (loaded = "the OSSL_PARAM layout here assumes a little-endian host");
  const lib = openFirst(["libcrypto.so.3", "libcrypto.so"], open, "libcrypto");
  if (typeof lib === "string") return (loaded = lib);
  const mac = lib.EVP_MAC_fetch(null, cString("BLAKE2SMAC"), null);
  if (!mac) return (loaded = "libcrypto has no BLAKE2SMAC");
  const ctx = lib.EVP_MAC_CTX_new(mac);
  if (!ctx) return (loaded = "EVP_MAC_CTX_new failed");
  // { "size", unsigned integer, &16, sizeof(size_t), OSSL_PARAM_UNMODIFIED } then the terminator.
  const size = new BigUint64Array([16n]);
  keep.push(new Uint8Array(size.buffer));
  const params = new Uint8Array(OSSL_PARAM_SIZE * 2);
  keep.push(params);
  const v = new DataView(params.buffer);
  v.setBigUint64(0, BigInt(ptr(cString("size"))), true);
  v.setUint32(8, OSSL_PARAM_UNSIGNED_INTEGER, true);
  v.setBigUint64(16, BigInt(ptr(size)), true);
  v.setBigUint64(24, 8n, true);
  v.setBigUint64(32, 0xffffffffffffffffn, true);
  if (lib.EVP_MAC_CTX_set_params(ctx, params) !== 1) return (loaded = "BLAKE2SMAC refused a 16-byte output size");
  const outLength = new BigUint64Array(1);
  keep.push(new Uint8Array(outLength.buffer));
  const outLengthPtr: Pointer = ptr(outLength);
  const impl: KeyedBlake2s = {
    mac16(key: Uint8Array, data: Uint8Array): Uint8Array {
      if (key.length < 1 || key.length > 32) throw new RangeError(`BLAKE2s MAC key must be 1..32 bytes, got ${key.length}`);
      const out = new Uint8Array(16);
      // bun:ffi passes a typed array as the address of its first byte (subarrays included).
      if (
        lib.EVP_MAC_init(ctx, key, key.length, null) !== 1 ||
        lib.EVP_MAC_update(ctx, data.length ? data : null, data.length) !== 1 ||
        lib.EVP_MAC_final(ctx, out, outLengthPtr, 16) !== 1
      ) {
        throw new Error("libcrypto BLAKE2SMAC failed");
      }
      return out;
    },
  };
  return (loaded = impl);
}
