// TAI64N timestamps as WireGuard puts them (encrypted) in a handshake initiation (sans-IO).
//
// 12 bytes: 8-byte big-endian label seconds, then 4-byte big-endian nanoseconds.
// Seconds = 0x400000000000000a + unix seconds: 2^62 is the TAI64 label of 1970-01-01 TAI, and the
// extra 10 is the TAI-UTC offset of 1970 as used by libtai and both WireGuard implementations
// (the Linux module and wireguard-go write exactly this base; current leap seconds are ignored).
// Nanoseconds are "whitened": the low 24 bits are cleared (wireguard-go's whitenerMask =
// 0x1000000 - 1; the kernel aligns down to rounddown_pow_of_two(1e9 / 50) = 2^24 ns, the same),
// so the timestamp only moves in steps of 2^24 ns ~ 16.8 ms and does not reveal the sender's
// precise clock. (Constants recalled from those implementations, not copied.)
//
// The responder keeps the greatest timestamp it has accepted from each peer and drops an
// initiation whose timestamp is not strictly greater (replay protection for message 1). Because
// of whitening, two initiations within the same ~16.8 ms step carry equal timestamps and the
// second is dropped; that is intended (it also rate-limits initiations per peer).

export const TAI64N_SIZE = 12;
/** High 32 bits of the label base 0x400000000000000a. */
const BASE_HI = 0x40000000;
/** Low part of the label base: the 10 s TAI-UTC offset. */
const BASE_LO = 10;
/** Nanosecond bits cleared before sending (wireguard-go whitenerMask). */
export const WHITENER_MASK = 0x1000000 - 1;

const TWO_POW_32 = 4294967296;

/**
 * The WireGuard TAI64N timestamp for `unixMillis` (milliseconds since 1970, e.g. Date.now()),
 * written to `out` (12 bytes, allocated if absent). Fractional milliseconds are allowed.
 */
export function tai64n(unixMillis: number, out?: Uint8Array): Uint8Array {
  if (!Number.isFinite(unixMillis)) throw new RangeError(`tai64n: time must be finite, got ${unixMillis}`);
  const buf = out ?? new Uint8Array(TAI64N_SIZE);
  if (buf.length < TAI64N_SIZE) throw new RangeError(`tai64n: output needs ${TAI64N_SIZE} bytes, has ${buf.length}`);

  const unixSeconds = Math.floor(unixMillis / 1000);
  let nanos = Math.floor((unixMillis - unixSeconds * 1000) * 1e6);
  if (nanos > 999_999_999) nanos = 999_999_999; // float rounding guard
  nanos = (nanos & ~WHITENER_MASK) >>> 0;

  // label = 2^62 + 10 + unixSeconds, split into two 32-bit halves without leaving exact range.
  const s = unixSeconds + BASE_LO;
  const carry = Math.floor(s / TWO_POW_32);
  const hi = BASE_HI + carry;
  const lo = s - carry * TWO_POW_32;

  writeU32BE(buf, 0, hi);
  writeU32BE(buf, 4, lo);
  writeU32BE(buf, 8, nanos);
  return buf;
}

/**
 * Unix milliseconds of a 12-byte TAI64N timestamp (inverse of tai64n up to whitening).
 * Throws if the label is too far from 2^62 to be a number-exact time.
 */
export function tai64nToUnixMillis(ts: Uint8Array): number {
  checkSize(ts);
  const hi = readU32BE(ts, 0);
  const lo = readU32BE(ts, 4);
  const nanos = readU32BE(ts, 8);
  const carry = hi - BASE_HI;
  if (Math.abs(carry) >= 0x200000) throw new RangeError("tai64n: seconds label out of range");
  const unixSeconds = carry * TWO_POW_32 + lo - BASE_LO;
  return unixSeconds * 1000 + Math.floor(nanos / 1e6);
}

/**
 * Byte-wise (lexicographic, i.e. numeric since both fields are big-endian) comparison of two
 * 12-byte timestamps: negative if a < b, 0 if equal, positive if a > b.
 * Accept an initiation only if compareTai64n(received, lastAccepted) > 0.
 */
export function compareTai64n(a: Uint8Array, b: Uint8Array): number {
  checkSize(a);
  checkSize(b);
  for (let i = 0; i < TAI64N_SIZE; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

function checkSize(ts: Uint8Array): void {
  if (ts.length !== TAI64N_SIZE) throw new RangeError(`tai64n: timestamp must be ${TAI64N_SIZE} bytes, got ${ts.length}`);
}

function writeU32BE(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 24) & 0xff;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

function readU32BE(buf: Uint8Array, at: number): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}
