// Anti-replay window for WireGuard transport-data counters (sans-IO).
//
// Each transport message carries a 64-bit little-endian nonce counter. The receiver keeps a
// sliding bitmap of the counters it has seen (the RFC 6479 scheme: a ring of blocks, the window
// slides forward a whole block at a time, so advancing costs at most one pass over the ring and
// checking costs O(1)). Only counters that authenticated should be fed to accept(); feeding forged
// counters would let an attacker slide the window.
//
// Size: RING_BITS = 8192 bits (256 x 32-bit words, 1 KiB per window). One block of the ring is
// always being reused for the newest counters, so the usable window is smaller than the ring;
// WINDOW_SIZE = 8128 is the same value the Linux module (COUNTER_WINDOW_SIZE = 8192 - 64) and
// wireguard-go (windowSize = (128 - 1) * 64) use, so a counter is accepted here exactly when it
// would be accepted there: not seen before and highest - counter <= 8128. (Values recalled from
// those implementations, not copied.) With 32-bit blocks our ring could hold 8160, but we stay
// with the reference number.
//
// Counters are JS numbers. Arithmetic on integers up to 2^53 - 1 is exact, and we only use
// division/modulo (never 32-bit bitwise ops on the counter itself), so counters above 2^32 work.

/** Bits in the ring (a multiple of 32 and a power of two). */
export const RING_BITS = 8192;
/** Largest accepted distance below the highest counter seen (same as Linux and wireguard-go). */
export const WINDOW_SIZE = 8128;

const BLOCK_BITS = 32;
const RING_BLOCKS = RING_BITS / BLOCK_BITS; // 256

/**
 * Largest counter this implementation accepts.
 *
 * WireGuard's own limit is REJECT_AFTER_MESSAGES = 2^64 - 2^13 - 1, which a JS number cannot
 * represent. We cap at 2^53 - 1 instead: any counter beyond it is rejected, as is anything that is
 * not a non-negative integer. At one packet per nanosecond, 2^53 counters last ~104 days, and
 * sessions are rekeyed every 2 minutes (REKEY_AFTER_TIME) long before, so a legitimate peer never
 * gets near it; a counter that large is an attack or a bug.
 */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;


export class ReplayWindow {
  private readonly ring = new Uint32Array(RING_BLOCKS);
  /** Highest counter accepted so far; meaningless while `empty`. */
  private last = 0;
  private empty = true;

  /**
   * True if `counter` is new and inside the window; it is then recorded. False if it was seen
   * before, is older than the window (highest - counter > WINDOW_SIZE), or is not an integer in
   * 0..MAX_COUNTER. Allocation-free.
   */
  accept(counter: number): boolean {
    // Rejects NaN, fractions, negatives, > 2^53 - 1 and non-numbers in one test.
    if (!Number.isSafeInteger(counter) || counter < 0) return false;

    const block = Math.floor(counter / BLOCK_BITS);
    if (this.empty) {
      this.empty = false;
      this.last = counter;
    } else if (counter > this.last) {
      // Slide forward: clear every block between the old head block and the new one (at most the
      // whole ring), so the bits of counters that fell out of the window read as unseen.
      const current = Math.floor(this.last / BLOCK_BITS);
      let diff = block - current;
      if (diff > RING_BLOCKS) diff = RING_BLOCKS;
      for (let i = 1; i <= diff; i++) this.ring[(current + i) % RING_BLOCKS] = 0;
      this.last = counter;
    } else if (this.last - counter > WINDOW_SIZE) {
      return false;
    }

    const index = block % RING_BLOCKS;
    const mask = (1 << (counter % BLOCK_BITS)) >>> 0;
    const old = this.ring[index];
    if ((old & mask) !== 0) return false;
    this.ring[index] = old | mask;
    return true;
  }

  /** Forget everything (for a new session/keypair). */
  reset(): void {
    this.ring.fill(0);
    this.last = 0;
    this.empty = true;
  }

  /** Highest counter accepted so far, or -1 if none yet. */
  get highest(): number {
    return this.empty ? -1 : this.last;
  }
}
