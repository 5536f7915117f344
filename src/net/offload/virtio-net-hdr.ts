// The 10-byte `struct virtio_net_hdr` that precedes every packet read from or written to a TUN
// opened with IFF_VNET_HDR. It tells the kernel (or us) that a packet still needs its checksum
// and/or is a GSO "super-packet" to be cut into gso_size pieces. Fields are little-endian.

export const VNET_HDR_LEN = 10;

/** flags: the checksum over [csum_start, end) must still be computed and stored at csum_start+csum_offset. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** flags: the checksum was already verified. */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
/** UDP fragmentation offload (UFO): deprecated, never negotiated by us. */
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** UDP segmentation offload (USO): one UDP datagram per gso_size chunk. */
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
/** Or-ed into gso_type when the TCP stream uses ECN (CWR must only go on the first segment). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/**
 * A decoded virtio_net_hdr. Callers keep one instance and read/write it for every packet, so
 * nothing is allocated per packet.
 */
export class VnetHdr {
  flags = 0;
  /** One of VIRTIO_NET_HDR_GSO_*, possibly or-ed with VIRTIO_NET_HDR_GSO_ECN. */
  gsoType = 0;
  /** Length of the headers that each segment repeats (the kernel may report more than that). */
  hdrLen = 0;
  /** Payload bytes per segment. */
  gsoSize = 0;
  /** Offset of the checksummed range from the start of the packet (the byte after this header). */
  csumStart = 0;
  /** Offset of the checksum field from csumStart. */
  csumOffset = 0;

  /** Decodes the header at buf[at..at+10). Returns false (and leaves this unchanged) if it does not fit. */
  read(buf: Uint8Array, at: number): boolean {
    if (at < 0 || at + VNET_HDR_LEN > buf.length) return false;
    this.flags = buf[at];
    this.gsoType = buf[at + 1];
    this.hdrLen = buf[at + 2] | (buf[at + 3] << 8);
    this.gsoSize = buf[at + 4] | (buf[at + 5] << 8);
    this.csumStart = buf[at + 6] | (buf[at + 7] << 8);
    this.csumOffset = buf[at + 8] | (buf[at + 9] << 8);
    return true;
  }

  /** Encodes this header into buf[at..at+10), which must be in range. */
  write(buf: Uint8Array, at: number): void {
    buf[at] = this.flags;
    buf[at + 1] = this.gsoType;
    buf[at + 2] = this.hdrLen & 0xff;
    buf[at + 3] = this.hdrLen >>> 8;
    buf[at + 4] = this.gsoSize & 0xff;
    buf[at + 5] = this.gsoSize >>> 8;
    buf[at + 6] = this.csumStart & 0xff;
    buf[at + 7] = this.csumStart >>> 8;
    buf[at + 8] = this.csumOffset & 0xff;
    buf[at + 9] = this.csumOffset >>> 8;
  }

  clear(): void {
    this.flags = 0;
    this.gsoType = 0;
    this.hdrLen = 0;
    this.gsoSize = 0;
    this.csumStart = 0;
    this.csumOffset = 0;
  }
}

/** Writes an all-zero header (a plain packet, checksum already complete) at buf[at..at+10). */
export function writeZeroVnetHdr(buf: Uint8Array, at: number): void {
  buf.fill(0, at, at + VNET_HDR_LEN);
}
