// Two native backends used together, chosen per packet by its size: libsodium for short
// payloads (one call per packet: the least fixed cost, and the least code to bring back into
// cache when an isolated packet such as a ping wakes the loop), OpenSSL's EVP for long ones
// (its AVX2 Poly1305 wins once the payload is long enough to pay for EVP's four calls).
// Measured with bench/aead.ts on the 2-core VM: 84 B 0.75 vs 1.1 µs, 1420 B 2.0 vs 1.3 µs; the
// cross-over lies between 512 and 1024 bytes.
import type { AeadBackend, AeadKey, KeyUse } from "./aead.ts";

/** Payloads of at least this many bytes go to the per-byte-faster backend. */
export const LONG_PAYLOAD = 768;

class PairKey implements AeadKey {
  readonly backend = "libsodium+libcrypto" as const;
  constructor(
    readonly short: AeadKey,
    readonly long: AeadKey,
  ) {}
}

export class BySizeBackend implements AeadBackend {
  readonly name = "libsodium+libcrypto" as const;

  constructor(
    private readonly short: AeadBackend,
    private readonly long: AeadBackend,
  ) {}

  createKey(key: Uint8Array, use?: KeyUse): AeadKey {
    const short = this.short.createKey(key, use);
    try {
      return new PairKey(short, this.long.createKey(key, use));
    } catch (err) {
      this.short.destroyKey(short);
      throw err;
    }
  }

  seal(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): void {
    const k = key as PairKey;
    if (len < LONG_PAYLOAD) this.short.seal(k.short, counter, buf, off, len);
    else this.long.seal(k.long, counter, buf, off, len);
  }

  open(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): boolean {
    const k = key as PairKey;
    return len - 16 < LONG_PAYLOAD
      ? this.short.open(k.short, counter, buf, off, len)
      : this.long.open(k.long, counter, buf, off, len);
  }

  destroyKey(key: AeadKey): void {
    const k = key as PairKey;
    this.short.destroyKey(k.short);
    this.long.destroyKey(k.long);
  }
}
