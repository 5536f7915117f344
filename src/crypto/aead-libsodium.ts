// ChaCha20-Poly1305 (IETF, 96-bit nonce) through libsodium (libsodium.so.23) called with bun:ffi.
//
// One native call per packet, no context objects: crypto_aead_chacha20poly1305_ietf_*_detached
// take the key and nonce by pointer and work in place (libsodium documents that the message and
// ciphertext may share memory; decryption checks the tag before it writes anything). Each key
// owns one small ArrayBuffer holding key and nonce, whose address is taken once.
//
// Why it is preferred over libcrypto: on this 2-core VM a sealing call is ~0.75 µs hot for 84
// bytes (OpenSSL's EVP: ~1.1 µs, four calls) and, what matters for latency, ~12 µs the first time
// after 10 ms of idleness against OpenSSL's ~25 µs: EVP's provider dispatch touches far more
// code and data that has gone cold by the time an isolated packet (a ping) arrives.
import { ptr, type Pointer } from "bun:ffi";
import type { AeadBackend, AeadKey, KeyUse } from "./aead.ts";
import { checkAeadArgs } from "./aead-args.ts";
import { crossCheckAgainstNoble } from "./aead-selftest.ts";
import { libsodium, type Libsodium } from "./libsodium.ts";
import { isLittleEndian } from "./native-library.ts";

const TAG = 16;
const KEY = 32;
const TWO_POW_32 = 4294967296;

class SodiumKey implements AeadKey {
  readonly backend = "libsodium" as const;
  /** key (32 bytes) || nonce (4 zero bytes || counter as 64-bit LE): one buffer, one address. */
  readonly material = new Uint8Array(new ArrayBuffer(KEY + 12));
  readonly nonce32 = new Uint32Array(this.material.buffer, KEY, 3);
  /** Kept next to `material`, which keeps the memory behind these addresses alive. */
  readonly keyPtr: Pointer = ptr(this.material);
  readonly noncePtr = (this.keyPtr + KEY) as Pointer;
  destroyed = false;
}

class LibsodiumBackend implements AeadBackend {
  readonly name = "libsodium" as const;

  constructor(private readonly lib: Libsodium) {}

  createKey(key: Uint8Array, _use?: KeyUse): AeadKey {
    if (key.length !== KEY) throw new RangeError(`ChaCha20-Poly1305 key must be 32 bytes, got ${key.length}`);
    const k = new SodiumKey();
    k.material.set(key);
    return k;
  }

  seal(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): void {
    const k = key as SodiumKey;
    checkAeadArgs(counter, buf, off, len, len + TAG);
    if (k.destroyed) throw new Error("AEAD key used after destroyKey");
    const n = k.nonce32;
    n[1] = counter; // ToUint32: the low word
    n[2] = counter / TWO_POW_32; // ToUint32 truncates: the high word
    const p = (ptr(buf) + off) as Pointer;
    this.lib.crypto_aead_chacha20poly1305_ietf_encrypt_detached(p, (p + len) as Pointer, null, p, len, null, 0, null, k.noncePtr, k.keyPtr);
  }

  open(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): boolean {
    const k = key as SodiumKey;
    checkAeadArgs(counter, buf, off, len, len);
    if (len < TAG) return false;
    if (k.destroyed) throw new Error("AEAD key used after destroyKey");
    const n = k.nonce32;
    n[1] = counter;
    n[2] = counter / TWO_POW_32;
    const p = (ptr(buf) + off) as Pointer;
    const dataLen = len - TAG;
    return this.lib.crypto_aead_chacha20poly1305_ietf_decrypt_detached(p, null, p, dataLen, (p + dataLen) as Pointer, null, 0, k.noncePtr, k.keyPtr) === 0;
  }

  destroyKey(key: AeadKey): void {
    const k = key as SodiumKey;
    if (k.destroyed) return;
    k.destroyed = true;
    this.lib.sodium_memzero(k.keyPtr, KEY + 12);
  }
}

let loaded: AeadBackend | string | undefined;

/** The libsodium backend, or why it is unavailable (library missing, init failed, self-test). */
export function loadLibsodiumBackend(): AeadBackend | string {
  if (loaded !== undefined) return loaded;
  if (!isLittleEndian()) return (loaded = "libsodium AEAD backend assumes a little-endian host");
  const lib = libsodium();
  if (typeof lib === "string") return (loaded = lib);
  let backend: AeadBackend;
  try {
    backend = new LibsodiumBackend(lib);
    const failure = crossCheckAgainstNoble(backend);
    if (failure) return (loaded = `libsodium self-test: ${failure}`);
  } catch (e) {
    return (loaded = `libsodium self-test failed: ${(e as Error).message}`);
  }
  return (loaded = backend);
}
