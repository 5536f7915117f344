// ChaCha20-Poly1305 through OpenSSL's EVP interface (libcrypto.so.3) called with bun:ffi.
//
// Each key owns an EVP_CIPHER_CTX per use (encrypting, decrypting, or both) that gets the key
// once, in createKey. A packet then costs four native calls: re-initialise with only the nonce, one
// in-place Update over the payload, Final, and one ctrl to read or set the tag. The nonce lives in
// a per-key 12-byte buffer whose address is cached; the counter goes in as two 32-bit words.
//
// Measured here (shared 2-core box, Bun 1.4.5, OpenSSL 3.0.19, bench/aead.ts): a 1420-byte seal
// is 1.25-2 µs depending on load, of which the Update is ~0.9 µs and the nonce-only Init
// (~170 ns), Final (~150 ns) and tag ctrl (~90 ns) are OpenSSL 3 provider overhead, not FFI (a
// bun:ffi call costs ~5-20 ns). `ptr(buf) + off` beat
// `ptr(buf, off)` by ~5-10 ns; caching buffer addresses across calls would save ~25 ns more but
// is unsafe for callers' small Uint8Arrays, whose storage JavaScriptCore may move. EVP_Cipher()
// instead of Update/Final saved ~40 ns, inside the noise, and OpenSSL advises against it.
import { dlopen, FFIType, ptr, type Pointer } from "bun:ffi";
import type { AeadBackend, AeadKey, KeyUse } from "./aead.ts";
import { checkAeadArgs } from "./aead-args.ts";
import { crossCheckAgainstNoble } from "./aead-selftest.ts";
import { isLittleEndian, openFirst } from "./native-library.ts";

const TAG = 16;
const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const TWO_POW_32 = 4294967296;

function open(name: string) {
  return dlopen(name, {
    EVP_chacha20_poly1305: { args: [], returns: FFIType.ptr },
    EVP_CIPHER_CTX_new: { args: [], returns: FFIType.ptr },
    EVP_CIPHER_CTX_free: { args: [FFIType.ptr], returns: FFIType.void },
    EVP_EncryptInit_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    EVP_DecryptInit_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    EVP_EncryptUpdate: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    EVP_DecryptUpdate: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    EVP_EncryptFinal_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    EVP_DecryptFinal_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    EVP_CIPHER_CTX_ctrl: { args: [FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  }).symbols;
}
type Lib = ReturnType<typeof open>;

class LibcryptoKey implements AeadKey {
  readonly backend = "libcrypto" as const;
  /** EVP_CIPHER_CTX* for sealing and opening; 0 when not created for that use, or destroyed. */
  enc: number;
  dec: number;
  destroyed = false;
  /** 4 zero bytes || counter (64-bit LE); nonce32[1] and nonce32[2] are the counter words. */
  readonly nonce = new Uint8Array(new ArrayBuffer(12));
  readonly nonce32 = new Uint32Array(this.nonce.buffer);
  readonly noncePtr: Pointer = ptr(this.nonce);

  constructor(enc: number, dec: number) {
    this.enc = enc;
    this.dec = dec;
  }
}

class LibcryptoBackend implements AeadBackend {
  readonly name = "libcrypto" as const;
  // The out-length box for Update/Final and a scratch copy of the key for init. Their addresses
  // are cached, so these fields are what keeps the buffers alive: a buffer reachable only through
  // a cached address is garbage-collected and OpenSSL would then write into freed memory.
  private readonly outLen = new Int32Array(new ArrayBuffer(4));
  private readonly outLenPtr: Pointer = ptr(this.outLen);
  private readonly keyScratch = new Uint8Array(new ArrayBuffer(32));
  private readonly keyScratchPtr: Pointer = ptr(this.keyScratch);
  /** A key dropped without destroyKey still gets its native contexts freed, eventually. */
  private readonly finalizer: FinalizationRegistry<{ enc: number; dec: number }>;

  constructor(
    private readonly lib: Lib,
    private readonly cipher: Pointer,
  ) {
    this.finalizer = new FinalizationRegistry((held) => {
      lib.EVP_CIPHER_CTX_free(held.enc as Pointer);
      lib.EVP_CIPHER_CTX_free(held.dec as Pointer);
    });
  }

  createKey(key: Uint8Array, use: KeyUse = "both"): AeadKey {
    if (key.length !== 32) throw new RangeError(`ChaCha20-Poly1305 key must be 32 bytes, got ${key.length}`);
    // ~1.2 KiB of native memory per context: with 1000 peers, skipping the unused direction of
    // each session key saves a few MiB.
    const enc = use === "open" ? 0 : this.newContext(key, true);
    let dec = 0;
    try {
      dec = use === "seal" ? 0 : this.newContext(key, false);
    } catch (err) {
      if (enc) this.lib.EVP_CIPHER_CTX_free(enc as Pointer);
      throw err;
    }
    const k = new LibcryptoKey(enc, dec);
    this.finalizer.register(k, { enc, dec }, k);
    return k;
  }

  /** An EVP_CIPHER_CTX set up with `key` for encrypting or decrypting. */
  private newContext(key: Uint8Array, encrypt: boolean): number {
    const lib = this.lib;
    const ctx = lib.EVP_CIPHER_CTX_new() as Pointer | null; // pointers come back as numbers on x86-64
    if (!ctx) throw new Error("EVP_CIPHER_CTX_new failed");
    this.keyScratch.set(key);
    const ok = encrypt
      ? lib.EVP_EncryptInit_ex(ctx, this.cipher, null, this.keyScratchPtr, null) === 1
      : lib.EVP_DecryptInit_ex(ctx, this.cipher, null, this.keyScratchPtr, null) === 1;
    this.keyScratch.fill(0);
    if (!ok) {
      lib.EVP_CIPHER_CTX_free(ctx);
      throw new Error(`EVP_${encrypt ? "Encrypt" : "Decrypt"}Init_ex failed for chacha20-poly1305`);
    }
    return ctx as number;
  }

  seal(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): void {
    const k = key as LibcryptoKey;
    checkAeadArgs(counter, buf, off, len, len + TAG);
    const ctx = k.enc as Pointer;
    if (ctx === 0) throw new Error(k.destroyed ? "AEAD key used after destroyKey" : "AEAD key was created for opening only");
    const n = k.nonce32;
    n[1] = counter; // ToUint32: the low word
    n[2] = counter / TWO_POW_32; // ToUint32 truncates: the high word
    const lib = this.lib;
    lib.EVP_EncryptInit_ex(ctx, null, null, null, k.noncePtr);
    const p = (ptr(buf) + off) as Pointer;
    const tag = (p + len) as Pointer;
    lib.EVP_EncryptUpdate(ctx, p, this.outLenPtr, p, len);
    lib.EVP_EncryptFinal_ex(ctx, tag, this.outLenPtr);
    lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, tag);
  }

  open(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): boolean {
    const k = key as LibcryptoKey;
    checkAeadArgs(counter, buf, off, len, len);
    if (len < TAG) return false;
    const ctx = k.dec as Pointer;
    if (ctx === 0) throw new Error(k.destroyed ? "AEAD key used after destroyKey" : "AEAD key was created for sealing only");
    const n = k.nonce32;
    n[1] = counter;
    n[2] = counter / TWO_POW_32;
    const lib = this.lib;
    lib.EVP_DecryptInit_ex(ctx, null, null, null, k.noncePtr);
    const p = (ptr(buf) + off) as Pointer;
    const dataLen = len - TAG;
    const tag = (p + dataLen) as Pointer;
    // The tag is copied into the context here, before Update overwrites anything in place.
    lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, tag);
    lib.EVP_DecryptUpdate(ctx, p, this.outLenPtr, p, dataLen);
    return lib.EVP_DecryptFinal_ex(ctx, tag, this.outLenPtr) > 0;
  }

  destroyKey(key: AeadKey): void {
    const k = key as LibcryptoKey;
    if (k.destroyed) return;
    k.destroyed = true;
    this.finalizer.unregister(k);
    // EVP_CIPHER_CTX_free cleanses the key schedule before freeing it (and accepts NULL).
    this.lib.EVP_CIPHER_CTX_free(k.enc as Pointer);
    this.lib.EVP_CIPHER_CTX_free(k.dec as Pointer);
    k.enc = 0;
    k.dec = 0;
    k.nonce.fill(0);
  }
}

let loaded: AeadBackend | string | undefined;

/** The libcrypto backend, or why it is unavailable (library missing, symbol missing, self-test). */
export function loadLibcryptoBackend(): AeadBackend | string {
  if (loaded !== undefined) return loaded;
  if (!isLittleEndian()) return (loaded = "libcrypto AEAD backend assumes a little-endian host");
  const lib = openFirst(["libcrypto.so.3", "libcrypto.so"], open, "libcrypto");
  if (typeof lib === "string") return (loaded = lib);
  const cipher = lib.EVP_chacha20_poly1305() as Pointer | null;
  if (!cipher) return (loaded = "libcrypto has no chacha20-poly1305");
  let backend: AeadBackend;
  try {
    backend = new LibcryptoBackend(lib, cipher);
    const failure = crossCheckAgainstNoble(backend);
    if (failure) return (loaded = `libcrypto self-test: ${failure}`);
  } catch (e) {
    return (loaded = `libcrypto self-test failed: ${(e as Error).message}`);
  }
  return (loaded = backend);
}
