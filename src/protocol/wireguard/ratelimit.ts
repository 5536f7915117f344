// Per-source rate limit for handshake initiations under load (sans-IO).
//
// When the responder is under load it demands a valid cookie (mac2) first; that proves the
// sender owns its source address, but one address could still make us do a DH per packet. So,
// as in the Linux module and wireguard-go, each source gets a token bucket: 20 packets/s
// sustained, bursts of 5. IPv4 sources are keyed by the full address, IPv6 sources by their /64
// (a host usually controls a whole /64, so keying by /128 would give it 2^64 buckets).
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket reports for IPv4 peers)
// are keyed as the IPv4 address they carry; keying them by /64 would put every IPv4 peer into one
// bucket.
//
// Bucket arithmetic follows the Linux module (recalled from memory, not copied): tokens are
// measured in time, one packet costs 1/20 s, the bucket holds 5 packets' worth; a new source
// starts full and pays for its first packet; a packet is allowed when tokens >= cost. So from
// cold: 5 back-to-back packets pass, the 6th is denied, and then one more passes every 50 ms.
// Entries idle for more than 1 s are full again, so gc() dropping them changes no decision.
//
// Memory is bounded: at most `maxEntries` sources (default 65536, ~ a few MiB). When the table is
// full, new sources are denied (known sources keep their buckets), as the Linux module does. If
// the table is full when a new source arrives, allow() runs gc() itself, at most once per
// GC_IDLE_MS, so a caller that forgets to call gc() degrades only briefly.

export const PACKETS_PER_SECOND = 20;
export const PACKETS_BURSTABLE = 5;
/** Tokens one packet costs, in milliseconds of refill time. */
export const PACKET_COST_MS = 1000 / PACKETS_PER_SECOND; // 50
/** Bucket capacity, in milliseconds of refill time. */
export const TOKEN_MAX_MS = PACKET_COST_MS * PACKETS_BURSTABLE; // 250
/** Entries idle longer than this are removed by gc() (wireguard-go: garbageCollectTime = 1 s). */
export const GC_IDLE_MS = 1000;
export const DEFAULT_MAX_ENTRIES = 65536;

export interface RateLimiterOptions {
  /** Cap on tracked sources; new sources beyond it are denied. Default 65536. */
  maxEntries?: number;
}

interface Bucket {
  tokens: number;
  last: number;
}

export class RateLimiter {
  private readonly v4 = new Map<number, Bucket>();
  private readonly v6 = new Map<string, Bucket>();
  private readonly maxEntries: number;
  private lastAutoGc = -Infinity;

  constructor(options: RateLimiterOptions = {}) {
    const max = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxEntries must be a non-negative integer, got ${max}`);
    this.maxEntries = max;
  }

  /**
   * Whether a handshake initiation from `ip` (4 or 16 bytes) may be processed at time `now`
   * (milliseconds, any monotonic clock). Consumes one token when it returns true.
   */
  allow(ip: Uint8Array, now: number): boolean {
    let map: Map<number, Bucket> | Map<string, Bucket>;
    let key: number | string;
    if (ip.length === 4) {
      map = this.v4;
      key = u32(ip, 0);
    } else if (ip.length === 16) {
      if (isV4Mapped(ip)) {
        map = this.v4;
        key = u32(ip, 12);
      } else {
        map = this.v6;
        // The /64 prefix as four UTF-16 code units: compact and exact.
        key = String.fromCharCode((ip[0] << 8) | ip[1], (ip[2] << 8) | ip[3], (ip[4] << 8) | ip[5], (ip[6] << 8) | ip[7]);
      }
    } else {
      throw new RangeError(`rate limiter: address must be 4 or 16 bytes, got ${ip.length}`);
    }

    const bucket = (map as Map<number | string, Bucket>).get(key);
    if (bucket !== undefined) {
      let elapsed = now - bucket.last;
      if (!(elapsed > 0)) elapsed = 0; // clock went backwards or NaN: no refill
      else bucket.last = now;
      let tokens = bucket.tokens + elapsed;
      if (tokens > TOKEN_MAX_MS) tokens = TOKEN_MAX_MS;
      if (tokens >= PACKET_COST_MS) {
        bucket.tokens = tokens - PACKET_COST_MS;
        return true;
      }
      bucket.tokens = tokens;
      return false;
    }

    if (this.size >= this.maxEntries) {
      if (now - this.lastAutoGc < GC_IDLE_MS) return false;
      this.lastAutoGc = now;
      this.gc(now);
      if (this.size >= this.maxEntries) return false;
    }
    (map as Map<number | string, Bucket>).set(key, { tokens: TOKEN_MAX_MS - PACKET_COST_MS, last: now });
    return true;
  }

  /** Drop sources idle for more than GC_IDLE_MS. Call about once a second. */
  gc(now: number): void {
    for (const [k, b] of this.v4) if (now - b.last > GC_IDLE_MS) this.v4.delete(k);
    for (const [k, b] of this.v6) if (now - b.last > GC_IDLE_MS) this.v6.delete(k);
  }

  /** Forget all sources. */
  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.lastAutoGc = -Infinity;
  }

  /** Number of tracked sources. */
  get size(): number {
    return this.v4.size + this.v6.size;
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function isV4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}
