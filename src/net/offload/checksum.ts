// The Internet checksum (RFC 1071): ones' complement sum of big-endian 16-bit words. Sums are
// passed around unfolded so partial sums (pseudo-header, header, payload) can simply be added;
// they stay below 2^32 so `>>>` folding is exact. Nothing here allocates.

import { IPV4_SRC_OFFSET, IPV6_SRC_OFFSET } from "../ip-packet.ts";

/** Bytes summed between partial folds: keeps each block's sum well inside int32. */
const BLOCK = 32768;

/**
 * Adds the bytes buf[offset..offset+length) (in bounds) to `initial` as big-endian 16-bit words
 * (word boundaries count from `offset`; an odd last byte is padded with a zero low byte).
 * `initial` must be a non-negative integer below 2^32, e.g. an earlier result. The result is an
 * unfolded sum below 2^32: add more to it, or fold() it.
 */
export function sumBytes(buf: Uint8Array, offset: number, length: number, initial: number): number {
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
