// The Internet checksum (RFC 1071): ones' complement sum of big-endian 16-bit words. Sums are
// passed around unfolded so partial sums (pseudo-header, header, payload) can simply be added;
// they stay below 2^32 so `>>>` folding is exact. Nothing here allocates per call (a view is
// made once per ArrayBuffer, see viewsOf).
//
// Long ranges are summed as native (little-endian) words read through typed-array views of the
// buffer: one load per four bytes instead of four loads and adds. The ones' complement sum does
// not depend on byte order (RFC 1071 §2(B)): the sum of the swapped words is the swapped sum, so
// one swap at the end gives the big-endian result. A range that
// starts at an odd address takes its first byte alone; the words after it then pair bytes exactly
// as big-endian words starting at `offset` do, with no swap. 1420 bytes: ~128 ns instead of
// ~255 ns (bench/checksum.ts). WONTUN_WIDE_CSUM=0 keeps the byte loop (src/switches.ts).

import { IPV4_SRC_OFFSET, IPV6_SRC_OFFSET } from "../ip-packet.ts";
import { envSwitch, WIDE_CSUM_ENV } from "../../switches.ts";

/** Bytes summed between partial folds: keeps each block's sum well inside int32. */
const BLOCK = 32768;
/** Shorter ranges (headers) take the byte loop: not worth finding a view for. */
const WIDE_MIN = 64;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Whether sumBytes reads long ranges as 16-bit words (little-endian hosts, WONTUN_WIDE_CSUM unset or 1). */
export const WIDE_CSUM = LITTLE_ENDIAN && envSwitch(WIDE_CSUM_ENV, true);

/**
 * Adds the bytes buf[offset..offset+length) (in bounds) to `initial` as big-endian 16-bit words
 * (word boundaries count from `offset`; an odd last byte is padded with a zero low byte).
 * `initial` must be a non-negative integer below 2^32, e.g. an earlier result. The result is an
 * unfolded sum below 2^32: add more to it, or fold() it.
 */
export function sumBytes(buf: Uint8Array, offset: number, length: number, initial: number): number {
  if (WIDE_CSUM && length >= WIDE_MIN) return sumWords(buf, offset, length, initial);
  return sumBytesNarrow(buf, offset, length, initial);
}

/** sumBytes one byte at a time (any host, any length); the reference for sumWords. */
export function sumBytesNarrow(buf: Uint8Array, offset: number, length: number, initial: number): number {
  let acc = (initial & 0xffff) + (initial >>> 16);
  let i = offset;
  const end = offset + length;
  while (i < end) {
    const blockEnd = end - i > BLOCK ? i + BLOCK : end;
    // High and low bytes of the words summed separately: fewer shifts in the hot loop.
    let high = 0;
    let low = 0;
    const end8 = blockEnd - 7;
    for (; i < end8; i += 8) {
      high += buf[i] + buf[i + 2] + buf[i + 4] + buf[i + 6];
      low += buf[i + 1] + buf[i + 3] + buf[i + 5] + buf[i + 7];
    }
    for (; i + 1 < blockEnd; i += 2) {
      high += buf[i];
      low += buf[i + 1];
    }
    if (i < blockEnd) {
      high += buf[i]; // only possible in the last block, since BLOCK is even
      i++;
    }
    acc += high * 256 + low;
    acc = (acc & 0xffff) + (acc >>> 16);
  }
  return acc;
}

// Word views of the last few ArrayBuffers summed (the data path sums a handful: the TUN read
// buffer, the packet slots, the coalescer's arena), so views are made once per buffer, not per
// call. A view shorter than needed (a resizable buffer that grew) is made again.
const VIEWS = 4;
const viewBuffers: (ArrayBufferLike | null)[] = [null, null, null, null];
const viewHalves: Uint16Array[] = [new Uint16Array(0), new Uint16Array(0), new Uint16Array(0), new Uint16Array(0)];
const viewQuads: Uint32Array[] = [new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0)];
let viewNext = 0;

/** The cache slot holding views of `buffer` long enough for `bytes` bytes. */
function viewsOf(buffer: ArrayBufferLike, bytes: number): number {
  for (let c = 0; c < VIEWS; c++) {
    if (viewBuffers[c] === buffer && viewHalves[c].length >= bytes >>> 1) return c;
  }
  const c = viewNext;
  viewNext = (c + 1) % VIEWS;
  viewBuffers[c] = buffer;
  viewHalves[c] = new Uint16Array(buffer, 0, buffer.byteLength >>> 1);
  viewQuads[c] = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  return c;
}

/** 32-bit words summed between folds: 2^20 * (2^32 - 1) stays an exact double. */
const QUAD_BLOCK = 1 << 20;

/**
 * sumBytes for little-endian hosts through word views (see the top of the file). The bulk is
 * read as 32-bit words: a little-endian 32-bit word is its two 16-bit words, the high one times
 * 2^16, and 2^16 ≡ 1 modulo 0xffff, so the sum of the 32-bit words (kept exact as a double)
 * folds to the sum of the 16-bit words. Half the loads of a 16-bit loop: 1420 bytes ~128 ns
 * instead of ~143 ns (bench/checksum.ts, which starts ranges at every alignment).
 */
export function sumWords(buf: Uint8Array, offset: number, length: number, initial: number): number {
  let acc = (initial & 0xffff) + (initial >>> 16);
  if (length <= 0) return acc;
  let at = buf.byteOffset + offset; // byte address within the ArrayBuffer
  const end = at + length;
  // Words are read little-endian: their sum is the byte-swapped big-endian sum when they start
  // at `offset`; when `offset` is odd its byte goes alone (a high byte) and the words that
  // follow pair bytes as big-endian words would, unswapped.
  let swap = true;
  if ((at & 1) !== 0) {
    acc += buf[offset] << 8;
    at++;
    swap = false;
  }
  const wordEnd = end - (end & 1);
  let sum = 0;
  if (at < wordEnd) {
    const c = viewsOf(buf.buffer, wordEnd);
    const halves = viewHalves[c];
    if ((at & 2) !== 0) {
      sum += halves[at >>> 1];
      at += 2;
    }
    const quads = viewQuads[c];
    let q = at >>> 2;
    const qEnd = wordEnd >>> 2;
    while (q < qEnd) {
      const blockEnd = qEnd - q > QUAD_BLOCK ? q + QUAD_BLOCK : qEnd;
      let s0 = 0;
      let s1 = 0;
      const end8 = blockEnd - 7;
      for (; q < end8; q += 8) {
        s0 += quads[q] + quads[q + 1] + quads[q + 2] + quads[q + 3];
        s1 += quads[q + 4] + quads[q + 5] + quads[q + 6] + quads[q + 7];
      }
      for (; q < blockEnd; q++) s0 += quads[q];
      sum = fold(sum + s0 + s1);
    }
    // A last 16-bit word after the 32-bit ones (`at` is 4-aligned here, so it is not yet summed).
    if ((wordEnd & 2) !== 0) sum += halves[(wordEnd - 2) >>> 1];
  }
  sum = fold(sum); // complete the fold before swapping
  if (swap) sum = ((sum & 0xff) << 8) | (sum >>> 8);
  acc += sum;
  if ((end & 1) !== 0) {
    // The last byte, not covered by a word: high or low byte by its distance from `offset`.
    const j = length - 1;
    acc += (j & 1) === 0 ? buf[offset + j] << 8 : buf[offset + j];
  }
  return acc;
}

/** Folds an unfolded sum (any non-negative safe integer) to its 16-bit ones' complement sum. */
export function fold(sum: number): number {
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * The value to store in a checksum field for data whose unfolded sum (including the field's
 * current contents, normally zero or the pseudo-header sum) is `sum`. Never 0: a computed 0 is
 * sent as 0xffff, its ones' complement equal, because 0 means "no checksum" in UDP over IPv4.
 */
export function finishChecksum(sum: number): number {
  const value = ~fold(sum) & 0xffff;
  return value === 0 ? 0xffff : value;
}

/**
 * Unfolded sum of the TCP/UDP pseudo-header of the IP packet at buf[ipOffset..]: source and
 * destination addresses, `protocol` and `upperLength` (the length of the TCP/UDP header plus payload).
 */
export function pseudoHeaderSum(
  buf: Uint8Array,
  ipOffset: number,
  version: 4 | 6,
  protocol: number,
  upperLength: number,
): number {
  let sum = protocol + (upperLength >>> 16) + (upperLength & 0xffff);
  if (version === 4) {
    const a = ipOffset + IPV4_SRC_OFFSET; // source and destination are adjacent: 8 bytes
    for (let i = a; i < a + 8; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  } else {
    const a = ipOffset + IPV6_SRC_OFFSET; // 32 bytes
    for (let i = a; i < a + 32; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  }
  return sum;
}

/** Computes the checksum of the IPv4 header at buf[ipOffset..] (IHL words), stores it, and returns it. */
export function ipv4HeaderChecksum(buf: Uint8Array, ipOffset: number): number {
  const headerLength = (buf[ipOffset] & 0x0f) * 4;
  buf[ipOffset + 10] = 0;
  buf[ipOffset + 11] = 0;
  let sum = 0;
  for (let i = ipOffset; i < ipOffset + headerLength; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  const value = ~fold(sum) & 0xffff;
  buf[ipOffset + 10] = value >>> 8;
  buf[ipOffset + 11] = value & 0xff;
  return value;
}
