// Turning what a TUN with IFF_VNET_HDR hands us into ordinary packets: finishing checksums the
// kernel left partial (NEEDS_CSUM), and cutting TSO/USO super-packets into gso_size segments,
// each with its own, complete IP and TCP/UDP headers. Pure byte work: no IO, no allocation.

import { finishChecksum, ipv4HeaderChecksum, pseudoHeaderSum, sumBytes } from "./checksum.ts";
import { copyBytes } from "./copy-bytes.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  type VnetHdr,
} from "./virtio-net-hdr.ts";

/** segment(): the packet is malformed or of an unsupported kind; drop it. */
export const SEGMENT_MALFORMED = -1;
/** segment(): the packet needs more than maxSlots segments; nothing was written. */
export const SEGMENT_NO_ROOM = -2;

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const IPV4_MIN_HEADER = 20;
const IPV6_HEADER = 40;
const TCP_MIN_HEADER = 20;
const UDP_HEADER = 8;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * Finishes a checksum the kernel left partial: if hdr has NEEDS_CSUM, sums
 * buf[packetOffset+csumStart .. packetOffset+packetLength) (which includes the checksum field,
 * holding the pseudo-header sum as seed), and stores the complemented fold at
 * csumStart+csumOffset. Offsets are relative to the packet, i.e. the byte after the vnet header.
 * Works in place for any packet; a GSO packet is instead completed per segment by segment().
 * Returns true if the checksum is complete (or was not needed), false if csum_start/csum_offset
 * point outside the packet.
 */
export function completeChecksum(
  buf: Uint8Array,
  packetOffset: number,
  packetLength: number,
  hdr: VnetHdr,
): boolean {
  if ((hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0) return true;
  if (packetOffset < 0 || packetOffset + packetLength > buf.length) return false;
  const field = hdr.csumStart + hdr.csumOffset;
  if (field + 2 > packetLength) return false;
  const start = packetOffset + hdr.csumStart;
  const value = finishChecksum(sumBytes(buf, start, packetOffset + packetLength - start, 0));
  buf[packetOffset + field] = value >>> 8;
  buf[packetOffset + field + 1] = value & 0xff;
  return true;
}

/**
 * Cuts the packet src[srcOffset..srcOffset+srcLength) (as read from the TUN, after the vnet
 * header `hdr`) into ordinary packets. Segment k is written at dst[dstStarts[firstSlot+k]..] and
 * its length stored in dstLengths[firstSlot+k]; every slot must have room for `slotSize` bytes.
 * Slots firstSlot..firstSlot+maxSlots-1 must exist in both arrays (else RangeError: a caller bug).
 *
 * - GSO_NONE: the packet is copied as one segment and its checksum completed if NEEDS_CSUM.
 *   (A caller that can use the packet where it lies should rather call completeChecksum in place.)
 * - GSO_TCPV4 / GSO_TCPV6 (with or without the ECN bit): headers are taken from the packet itself
 *   (IP header length, TCP data offset), not from hdr_len. Each segment gets gso_size payload bytes
 *   (the last one the rest), IPv4 total length / ID+k / header checksum or IPv6 payload length,
 *   TCP sequence number + k*gso_size, FIN and PSH only on the last segment, CWR only on the first,
 *   and a complete TCP checksum. IPv4 options are copied into every segment.
 * - GSO_UDP_L4: each segment is a UDP datagram of gso_size payload bytes with its own length and
 *   complete checksum, IP fields updated as for TCP.
 *
 * Bytes after the IP header's own length are ignored. Returns the number of segments (≥ 1),
 * SEGMENT_MALFORMED (UFO, unknown gso type, gso_size 0, truncated or inconsistent headers,
 * protocol not matching the gso type, IPv4 fragment, IPv6 extension headers, a segment larger
 * than slotSize or beyond dst), or SEGMENT_NO_ROOM when more than maxSlots segments are needed
 * (nothing written; ceil(65535 / gso_size) slots are always enough).
 */
export function segment(
  src: Uint8Array,
  srcOffset: number,
  srcLength: number,
  hdr: VnetHdr,
  dst: Uint8Array,
  dstStarts: Int32Array,
  dstLengths: Int32Array,
  firstSlot: number,
  maxSlots: number,
  slotSize: number,
): number {
  if (firstSlot < 0 || firstSlot + maxSlots > dstStarts.length || firstSlot + maxSlots > dstLengths.length) {
    throw new RangeError(`slots [${firstSlot}, ${firstSlot + maxSlots}) outside dstStarts/dstLengths`);
  }
  if (srcOffset < 0 || srcLength <= 0 || srcOffset + srcLength > src.length) return SEGMENT_MALFORMED;
  const type = hdr.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
  if (type === VIRTIO_NET_HDR_GSO_NONE) {
    return copyThrough(src, srcOffset, srcLength, hdr, dst, dstStarts, dstLengths, firstSlot, maxSlots, slotSize);
  }
  let protocol: number;
  if (type === VIRTIO_NET_HDR_GSO_TCPV4 || type === VIRTIO_NET_HDR_GSO_TCPV6) protocol = PROTO_TCP;
  else if (type === VIRTIO_NET_HDR_GSO_UDP_L4) protocol = PROTO_UDP;
  else return SEGMENT_MALFORMED; // includes UFO, which we never negotiate
  const gsoSize = hdr.gsoSize;
  if (gsoSize === 0) return SEGMENT_MALFORMED;

  const version = src[srcOffset] >> 4;
  if (type === VIRTIO_NET_HDR_GSO_TCPV4 && version !== 4) return SEGMENT_MALFORMED;
  if (type === VIRTIO_NET_HDR_GSO_TCPV6 && version !== 6) return SEGMENT_MALFORMED;
  let ipHeaderLength: number;
  let packetLength: number;
  if (version === 4) {
    if (srcLength < IPV4_MIN_HEADER) return SEGMENT_MALFORMED;
    ipHeaderLength = (src[srcOffset] & 0x0f) * 4;
    packetLength = (src[srcOffset + 2] << 8) | src[srcOffset + 3];
    // MF or a fragment offset: already a fragment, its payload is not a whole TCP/UDP packet.
    if ((src[srcOffset + 6] & 0x3f) !== 0 || src[srcOffset + 7] !== 0) return SEGMENT_MALFORMED;
    if (src[srcOffset + 9] !== protocol) return SEGMENT_MALFORMED;
  } else if (version === 6) {
    if (srcLength < IPV6_HEADER) return SEGMENT_MALFORMED;
    ipHeaderLength = IPV6_HEADER;
    packetLength = IPV6_HEADER + ((src[srcOffset + 4] << 8) | src[srcOffset + 5]);
    // Extension headers (or a jumbogram) would have to be walked and repeated: not supported.
    if (src[srcOffset + 6] !== protocol) return SEGMENT_MALFORMED;
  } else {
    return SEGMENT_MALFORMED;
  }
  if (ipHeaderLength < IPV4_MIN_HEADER || packetLength > srcLength) return SEGMENT_MALFORMED;

  let l4HeaderLength = UDP_HEADER;
  if (protocol === PROTO_TCP) {
    if (ipHeaderLength + TCP_MIN_HEADER > packetLength) return SEGMENT_MALFORMED;
    l4HeaderLength = (src[srcOffset + ipHeaderLength + 12] >> 4) * 4;
    if (l4HeaderLength < TCP_MIN_HEADER) return SEGMENT_MALFORMED;
  }
  const headerLength = ipHeaderLength + l4HeaderLength;
  // hdr_len may legitimately exceed the real headers (the kernel reports its linear part), but
  // never the packet.
  if (headerLength > packetLength || hdr.hdrLen > packetLength) return SEGMENT_MALFORMED;

  const payloadLength = packetLength - headerLength;
  const count = payloadLength === 0 ? 1 : Math.ceil(payloadLength / gsoSize);
  if (headerLength + Math.min(gsoSize, payloadLength) > slotSize) return SEGMENT_MALFORMED;
  if (count > maxSlots) return SEGMENT_NO_ROOM;

  // Constant over the segments: the pseudo-header's addresses + protocol, the first ID and seq.
  const addressSum = pseudoHeaderSum(src, srcOffset, version, protocol, 0);
  const l4 = srcOffset + ipHeaderLength;
  const firstId = version === 4 ? (src[srcOffset + 4] << 8) | src[srcOffset + 5] : 0;
  const firstSeq =
    protocol === PROTO_TCP
      ? ((src[l4 + 4] << 24) | (src[l4 + 5] << 16) | (src[l4 + 6] << 8) | src[l4 + 7]) >>> 0
      : 0;
  const tcpFlags = protocol === PROTO_TCP ? src[l4 + 13] : 0;

  for (let k = 0; k < count; k++) {
    const payloadAt = k * gsoSize;
    const chunk = Math.min(gsoSize, payloadLength - payloadAt);
    const segmentLength = headerLength + chunk;
    const at = dstStarts[firstSlot + k];
    if (at < 0 || at + segmentLength > dst.length) return SEGMENT_MALFORMED;
    copyBytes(src, srcOffset, dst, at, headerLength);
    copyBytes(src, srcOffset + headerLength + payloadAt, dst, at + headerLength, chunk);
    dstLengths[firstSlot + k] = segmentLength;

    if (version === 4) {
      dst[at + 2] = segmentLength >>> 8;
      dst[at + 3] = segmentLength & 0xff;
      const id = (firstId + k) & 0xffff;
      dst[at + 4] = id >>> 8;
      dst[at + 5] = id & 0xff;
      ipv4HeaderChecksum(dst, at);
    } else {
      const ipPayload = segmentLength - IPV6_HEADER;
      dst[at + 4] = ipPayload >>> 8;
      dst[at + 5] = ipPayload & 0xff;
    }

    const segL4 = at + ipHeaderLength;
    const l4Length = segmentLength - ipHeaderLength;
    let checksumField: number;
    if (protocol === PROTO_TCP) {
      const seq = (firstSeq + payloadAt) >>> 0;
      dst[segL4 + 4] = seq >>> 24;
      dst[segL4 + 5] = (seq >>> 16) & 0xff;
      dst[segL4 + 6] = (seq >>> 8) & 0xff;
      dst[segL4 + 7] = seq & 0xff;
      let flags = tcpFlags;
      if (k < count - 1) flags &= ~(TCP_FIN | TCP_PSH);
      if (k > 0) flags &= ~TCP_CWR;
      dst[segL4 + 13] = flags;
      checksumField = segL4 + 16;
    } else {
      dst[segL4 + 4] = l4Length >>> 8;
      dst[segL4 + 5] = l4Length & 0xff;
      checksumField = segL4 + 6;
    }
    dst[checksumField] = 0;
    dst[checksumField + 1] = 0;
    const value = finishChecksum(sumBytes(dst, segL4, l4Length, addressSum + l4Length));
    dst[checksumField] = value >>> 8;
    dst[checksumField + 1] = value & 0xff;
  }
  return count;
}

/** GSO_NONE: one segment, a copy of the packet with its checksum completed. */
function copyThrough(
  src: Uint8Array,
  srcOffset: number,
  srcLength: number,
  hdr: VnetHdr,
  dst: Uint8Array,
  dstStarts: Int32Array,
  dstLengths: Int32Array,
  firstSlot: number,
  maxSlots: number,
  slotSize: number,
): number {
  if (srcLength > slotSize) return SEGMENT_MALFORMED;
  if (maxSlots < 1) return SEGMENT_NO_ROOM;
  const at = dstStarts[firstSlot];
  if (at < 0 || at + srcLength > dst.length) return SEGMENT_MALFORMED;
  copyBytes(src, srcOffset, dst, at, srcLength);
  if (!completeChecksum(dst, at, srcLength, hdr)) return SEGMENT_MALFORMED;
  dstLengths[firstSlot] = srcLength;
  return 1;
}
