// Two native backends used together, chosen per packet by its size: libsodium for short
// payloads (one call per packet: the least fixed cost, and the least code to bring back into
// cache when an isolated packet such as a ping wakes the loop), OpenSSL's EVP for long ones
// (its AVX2 Poly1305 wins once the payload is long enough to pay for EVP's four calls).
// Measured with bench/aead.ts on the 2-core VM: 84 B 0.75 vs 1.1 µs, 1420 B 2.0 vs 1.3 µs; the
// cross-over lies between 512 and 1024 bytes.
import type { AeadBackend, AeadKey, KeyUse } from "./aead.ts";

/** Payloads of at least this many bytes go to the per-byte-faster backend. */
export const LONG_PAYLOAD = 768;

/**
 * The long backend's key is made on the first long payload: a session that only ever carries
 * short packets (pings, keepalives, DNS, most of a thousand mostly idle peers) then costs no
 * native context. Until then the key bytes wait in `pending`.
 */
class PairKey implements AeadKey {
  long: AeadKey | null = null;
  pending: Uint8Array | null;
  constructor(
    readonly backend: PairName,
    readonly short: AeadKey,
    key: Uint8Array,
    readonly use: KeyUse | undefined,
  ) {
    this.pending = new Uint8Array(key);
  }
}

export type PairName = "libsodium+libcrypto" | "libsodium+libgcrypt";

export class BySizeBackend implements AeadBackend {
  /** Told once if the long backend cannot be loaded; long payloads then stay on the short one. */
  onLongUnavailable: ((why: string) => void) | null = null;
  private long: AeadBackend | null = null;
  private longFailed = false;

  /**
   * `loadLong` runs on the first long payload, not before: loading and initialising OpenSSL
   * costs ~4 MiB of RSS that a host whose peers only exchange short packets never needs.
   */
  constructor(
    readonly name: PairName,
    private readonly short: AeadBackend,
    private readonly loadLong: () => AeadBackend | string,
  ) {}

  createKey(key: Uint8Array, use?: KeyUse): AeadKey {
    return new PairKey(this.name, this.short.createKey(key, use), key, use);
  }

  seal(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): void {
    const k = key as PairKey;
    if (len >= LONG_PAYLOAD && (k.long !== null || this.makeLong(k))) this.long!.seal(k.long!, counter, buf, off, len);
    else this.short.seal(k.short, counter, buf, off, len);
  }

  open(key: AeadKey, counter: number, buf: Uint8Array, off: number, len: number): boolean {
    const k = key as PairKey;
    if (len - 16 >= LONG_PAYLOAD && (k.long !== null || this.makeLong(k))) return this.long!.open(k.long!, counter, buf, off, len);
    return this.short.open(k.short, counter, buf, off, len);
  }

  destroyKey(key: AeadKey): void {
    const k = key as PairKey;
    this.short.destroyKey(k.short);
    if (k.long !== null) this.long!.destroyKey(k.long);
    k.pending?.fill(0);
    k.pending = null;
  }

  /** Makes k's long key; false (the short backend carries on alone) if it cannot be made. */
  private makeLong(k: PairKey): boolean {
    const pending = k.pending;
    if (pending === null) return false; // destroyed, or an earlier attempt failed
    const long = this.long ?? this.loadLongOnce();
    if (long === null) return false;
    k.pending = null;
    try {
      k.long = long.createKey(pending, k.use);
    } catch {
      return false;
    } finally {
      pending.fill(0);
    }
    return true;
  }

  private loadLongOnce(): AeadBackend | null {
    if (this.longFailed) return null;
    const long = this.loadLong();
    if (typeof long === "string") {
      this.longFailed = true;
      this.onLongUnavailable?.(long);
      return null;
    }
    return (this.long = long);
  }
}
