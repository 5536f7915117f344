// The Internet checksum (RFC 1071): ones' complement sum of big-endian 16-bit words. Sums are
// passed around unfolded so partial sums (pseudo-header, header, payload) can simply be added;
// they stay below 2^32 so `>>>` folding is exact. Nothing here allocates per call (a view is
// made once per ArrayBuffer, see wordsOf).
//
// Long ranges are summed as native (little-endian) 16-bit words read through a Uint16Array view
// of the buffer: one load and one int32 add per two bytes instead of two loads and adds. The
// ones' complement sum does not depend on byte order (RFC 1071 §2(B)): the sum of the swapped
// words is the swapped sum, so one swap at the end gives the big-endian result. A range that
// starts at an odd address takes its first byte alone; the words after it then pair bytes exactly
// as big-endian words starting at `offset` do, with no swap. 1420 bytes: ~150 ns instead of
// ~255 ns (bench/checksum.ts). WONTUN_WIDE_CSUM=0 keeps the byte loop (switches.ts).

import { IPV4_SRC_OFFSET, IPV6_SRC_OFFSET } from "../ip-packet.ts";
import { envSwitch, WIDE_CSUM_ENV } from "./switches.ts";

/** Bytes summed between partial folds: keeps each block's sum well inside int32. */
const BLOCK = 32768;
/** 16-bit words summed between folds in the wide loop: 16384 * 0xffff < 2^30. */
const WORD_BLOCK = 16384;
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

// Uint16Array views of the last few ArrayBuffers summed (the data path sums a handful: the TUN
// read buffer, the packet slots, the coalescer's arena), so a view is made once per buffer, not
// per call. A view shorter than needed (a resizable buffer that grew) is made again.
const VIEWS = 4;
const viewBuffers: (ArrayBufferLike | null)[] = [null, null, null, null];
const viewWords: Uint16Array[] = [new Uint16Array(0), new Uint16Array(0), new Uint16Array(0), new Uint16Array(0)];
let viewNext = 0;

function wordsOf(buffer: ArrayBufferLike, words: number): Uint16Array {
  for (let c = 0; c < VIEWS; c++) {
    if (viewBuffers[c] === buffer && viewWords[c].length >= words) return viewWords[c];
  }
  const view = new Uint16Array(buffer, 0, buffer.byteLength >>> 1);
  const c = viewNext;
  viewNext = (c + 1) % VIEWS;
  viewBuffers[c] = buffer;
  viewWords[c] = view;
  return view;
}

/** sumBytes for little-endian hosts through a Uint16Array view (see the top of the file). */
export function sumWords(buf: Uint8Array, offset: number, length: number, initial: number): number {
  let acc = (initial & 0xffff) + (initial >>> 16);
  if (length <= 0) return acc;
  const start = buf.byteOffset + offset;
  const end = start + length;
  let k = start >>> 1;
  // Words are read little-endian: their sum is the byte-swapped big-endian sum when they start
  // at `offset`; when `offset` is odd its byte goes alone (a high byte) and the words that
  // follow pair bytes as big-endian words would, unswapped.
  let swap = true;
  if ((start & 1) !== 0) {
    acc += buf[offset] << 8;
    k++;
    swap = false;
  }
  const kEnd = end >>> 1;
  const words = wordsOf(buf.buffer, kEnd);
  let sum = 0;
  while (k < kEnd) {
    const blockEnd = kEnd - k > WORD_BLOCK ? k + WORD_BLOCK : kEnd;
    let s0 = 0;
    let s1 = 0;
    const end8 = blockEnd - 7;
    for (; k < end8; k += 8) {
      s0 += words[k] + words[k + 1] + words[k + 2] + words[k + 3];
      s1 += words[k + 4] + words[k + 5] + words[k + 6] + words[k + 7];
    }
    for (; k < blockEnd; k++) s0 += words[k];
    sum += s0 + s1;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16); // complete the fold before swapping
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
