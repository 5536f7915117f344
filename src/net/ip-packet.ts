// Reading the few fields of a raw IP packet the tunnel needs (version, addresses, length),
// straight from the buffer it arrived in. Everything except formatPacketSummary allocates nothing.

import { formatIp } from "./ip.ts";

export const IPV4_HEADER_MIN = 20;
export const IPV6_HEADER_LENGTH = 40;

/** Byte offsets of the address fields from the start of the header. */
export const IPV4_SRC_OFFSET = 12;
export const IPV4_DST_OFFSET = 16;
export const IPV6_SRC_OFFSET = 8;
export const IPV6_DST_OFFSET = 24;

/**
 * The IP version of the packet at `buf[offset..offset+length]`: 4 or 6, or 0 when it is too short
 * for its header (IPv4: 20 bytes and a header length field of at least 5 words that fits in
 * `length`; IPv6: 40 bytes) or is neither version.
 */
export function ipVersion(buf: Uint8Array, offset: number, length: number): 0 | 4 | 6 {
  if (length < 1 || offset < 0 || offset + length > buf.length) return 0;
  const first = buf[offset];
  const version = first >> 4;
  if (version === 4) {
    const ihl = first & 0x0f;
    return length >= IPV4_HEADER_MIN && ihl >= 5 && ihl * 4 <= length ? 4 : 0;
  }
  if (version === 6) return length >= IPV6_HEADER_LENGTH ? 6 : 0;
  return 0;
}

/**
 * The packet's length according to its header: the IPv4 total length field, or the IPv6
 * payload length plus the 40-byte fixed header. Bytes after it in a buffer are padding.
 * Returns 0 for another version. The header must be in the buffer (check ipVersion first).
 */
export function ipTotalLength(buf: Uint8Array, offset: number, version: number): number {
  if (version === 4) return (buf[offset + 2] << 8) | buf[offset + 3];
  if (version === 6) return ((buf[offset + 4] << 8) | buf[offset + 5]) + IPV6_HEADER_LENGTH;
  return 0;
}

/** One line for trace logs, e.g. "IPv4 10.0.0.1 → 10.0.0.2 proto 1 len 84". */
export function formatPacketSummary(buf: Uint8Array, offset: number, length: number): string {
  const version = ipVersion(buf, offset, length);
  if (version === 0) {
    const first = length > 0 && offset >= 0 && offset < buf.length ? buf[offset] : -1;
    const what = first < 0 ? "empty" : `version ${first >> 4}`;
    return `not an IP packet (${what}, ${length} bytes)`;
  }
  const total = ipTotalLength(buf, offset, version);
  let src: string;
  let dst: string;
  let proto: number;
  if (version === 4) {
    src = formatIp(buf.subarray(offset + IPV4_SRC_OFFSET, offset + IPV4_SRC_OFFSET + 4));
    dst = formatIp(buf.subarray(offset + IPV4_DST_OFFSET, offset + IPV4_DST_OFFSET + 4));
    proto = buf[offset + 9];
  } else {
    src = formatIp(buf.subarray(offset + IPV6_SRC_OFFSET, offset + IPV6_SRC_OFFSET + 16));
    dst = formatIp(buf.subarray(offset + IPV6_DST_OFFSET, offset + IPV6_DST_OFFSET + 16));
    proto = buf[offset + 6]; // next header
  }
  const extra = total === length ? "" : ` (${length} in buffer)`;
  return `IPv${version} ${src} → ${dst} proto ${proto} len ${total}${extra}`;
}
