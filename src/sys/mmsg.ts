// Batched UDP IO: recvmmsg/sendmmsg over a fixed set of slots. Every buffer, iovec, address and
// header is allocated once; per datagram only numbers are written.
//
// struct mmsghdr (64-bit Linux): struct msghdr (56 bytes) + unsigned msg_len + padding = 64.
//   msghdr: msg_name@0 (ptr), msg_namelen@8 (u32), msg_iov@16 (ptr), msg_iovlen@24 (size_t),
//           msg_control@32, msg_controllen@40, msg_flags@48.
// struct iovec: iov_base@0 (ptr), iov_len@8 (size_t) = 16 bytes.
import { ptr } from "bun:ffi";
import { libc, errno } from "./libc.ts";
import { EAGAIN, EINTR } from "./errno.ts";
import { SOCKADDR_MAX } from "./sockaddr.ts";

const MMSGHDR_SIZE = 64;
const IOVEC_SIZE = 16;
const NAME_STRIDE = 32; // SOCKADDR_MAX rounded up
const MSG_DONTWAIT = 0x40;
// UDP GSO: a cmsg (SOL_UDP, UDP_SEGMENT, u16 segment size) on one message whose iovecs hold
// several equal-sized datagrams (the last may be shorter) makes the kernel send them as one
// buffer through its stack and split it as late as possible.
const SOL_UDP = 17;
const UDP_SEGMENT = 103;
/** cmsghdr (len u64, level i32, type i32) + u16 data: CMSG_LEN(2) = 18, CMSG_SPACE(2) = 24. */
const SEGMENT_CMSG_LEN = 18;
const SEGMENT_CMSG_SPACE = 24;
const UDP_GRO = 104;
/** cmsghdr + int, CMSG_SPACE(4): room for the UDP_GRO segment size on receive. */
const GRO_CONTROL_SPACE = 24;
/** The kernel's limit on segments per GSO send (UDP_MAX_SEGMENTS). */
export const UDP_GSO_MAX_SEGMENTS = 64;
/** Largest UDP payload in one send. */
export const UDP_GSO_MAX_BYTES = 65507;

/**
 * Stores a 64-bit pointer little-endian at `at`. setBigUint64 would allocate a BigInt per call;
 * two 32-bit halves do not.
 */
function putPointer(view: DataView, at: number, address: number): void {
  view.setUint32(at, address >>> 0, true);
  view.setUint32(at + 4, Math.floor(address / 0x100000000), true);
}

export class DatagramBatch {
  /** All slots' bytes; slot i starts at i * slotSize. */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Source (recv) or destination (send) sockaddr of slot i at i * NAME_STRIDE. */
  readonly names: Uint8Array;
  /** Per-slot payload start and length, as set for sending or filled by recv. */
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  /**
   * With `gro`: per received slot, the size of the datagrams the kernel glued together in it
   * (UDP_GRO), or 0 when the slot holds one datagram. lengths[i] is then the total.
   */
  readonly segmentSizes: Int32Array;

  private readonly headers: Uint8Array;
  private readonly headerView: DataView;
  private readonly iovecs: DataView;
  private readonly bytesPtr: number;
  private readonly namesPtr: number;
  private readonly headersPtr: number;

  /**
   * `recvHeadroom` bytes at the start of each slot stay free when receiving, so a packet found
   * inside a datagram can be given a header in place (e.g. the TUN's virtio_net_hdr).
   */
  constructor(
    readonly capacity: number,
    readonly slotSize: number,
    readonly recvHeadroom = 0,
    readonly gro = false,
  ) {
    this.bytes = new Uint8Array(new ArrayBuffer(capacity * slotSize));
    this.view = new DataView(this.bytes.buffer);
    this.names = new Uint8Array(new ArrayBuffer(capacity * NAME_STRIDE));
    this.offsets = new Int32Array(capacity);
    this.lengths = new Int32Array(capacity);
    this.segmentSizes = new Int32Array(capacity);
    if (gro) {
      this.control = new Uint8Array(new ArrayBuffer(capacity * GRO_CONTROL_SPACE));
      this.controlView = new DataView(this.control.buffer);
      this.controlPtr = ptr(this.control);
    }
    this.headers = new Uint8Array(new ArrayBuffer(capacity * MMSGHDR_SIZE));
    this.headerView = new DataView(this.headers.buffer);
    const iov = new Uint8Array(new ArrayBuffer(capacity * IOVEC_SIZE));
    this.iovecs = new DataView(iov.buffer);
    this.bytesPtr = ptr(this.bytes);
    this.namesPtr = ptr(this.names);
    this.headersPtr = ptr(this.headers);
    const iovPtr = ptr(iov);
    this.iovPtr = iovPtr;
    this.keepAlive = iov;
    const gsoHeader = new Uint8Array(new ArrayBuffer(MMSGHDR_SIZE));
    const gsoControl = new Uint8Array(new ArrayBuffer(SEGMENT_CMSG_SPACE));
    this.gsoHeaderView = new DataView(gsoHeader.buffer);
    this.gsoHeaderPtr = ptr(gsoHeader);
    this.gsoControlView = new DataView(gsoControl.buffer);
    this.gsoControlView.setUint32(0, SEGMENT_CMSG_LEN, true); // cmsg_len (u64; high half stays 0)
    this.gsoControlView.setInt32(8, SOL_UDP, true);
    this.gsoControlView.setInt32(12, UDP_SEGMENT, true);
    putPointer(this.gsoHeaderView, 32, ptr(gsoControl));
    this.gsoHeaderView.setUint32(40, SEGMENT_CMSG_SPACE, true);
    for (let i = 0; i < capacity; i++) {
      const h = i * MMSGHDR_SIZE;
      this.headerView.setBigUint64(h + 16, BigInt(iovPtr + i * IOVEC_SIZE), true);
      this.headerView.setBigUint64(h + 24, 1n, true);
      this.iovecs.setBigUint64(i * IOVEC_SIZE, BigInt(this.bytesPtr + i * slotSize), true);
    }
  }

  /** errno of the last datagram send() could not send (0 if none failed). */
  lastErrno = 0;

  // Holds the iovec array: the kernel reads it through a pointer only.
  private readonly keepAlive: Uint8Array;
  // One extra mmsghdr and its UDP_SEGMENT cmsg for GSO sends (kept alive here: the kernel
  // reaches the cmsg only through the header's pointer).
  private readonly gsoHeaderView: DataView;
  private readonly gsoHeaderPtr: number;
  private readonly gsoControlView: DataView;
  // Receive-side control messages (UDP_GRO), one GRO_CONTROL_SPACE area per slot.
  private control: Uint8Array | null = null;
  private controlView: DataView | null = null;
  private controlPtr = 0;
  private readonly iovPtr: number;

  slotStart(i: number): number {
    return i * this.slotSize;
  }

  nameOffset(i: number): number {
    return i * NAME_STRIDE;
  }

  /** Address of a byte in `bytes`, for direct read()/write() calls. */
  addressOf(byteOffset: number): number {
    return this.bytesPtr + byteOffset;
  }

  /**
   * Receives up to `capacity` datagrams without blocking. Returns the count (0 when nothing
   * was waiting); slot i then holds lengths[i] bytes at offsets[i] and its source in names.
   */
  recv(fd: number): number {
    const hv = this.headerView;
    for (let i = 0; i < this.capacity; i++) {
      const h = i * MMSGHDR_SIZE;
      // The iovec may have been pointed elsewhere by prepareSend: aim it at the slot again.
      const base = this.bytesPtr + i * this.slotSize + this.recvHeadroom;
      putPointer(this.iovecs, i * IOVEC_SIZE, base);
      this.iovecs.setUint32(i * IOVEC_SIZE + 8, this.slotSize - this.recvHeadroom, true);
      const name = this.namesPtr + i * NAME_STRIDE;
      putPointer(hv, h, name);
      hv.setUint32(h + 8, SOCKADDR_MAX, true);
      hv.setUint32(h + 48, 0, true);
      if (this.control !== null) {
        const control = this.controlPtr + i * GRO_CONTROL_SPACE;
        putPointer(hv, h + 32, control);
        hv.setUint32(h + 40, GRO_CONTROL_SPACE, true);
      }
    }
    const n = libc.recvmmsg(fd, this.headersPtr, this.capacity, MSG_DONTWAIT, 0);
    if (n < 0) {
      const code = errno();
      if (code === EAGAIN || code === EINTR) return 0;
      // ECONNREFUSED and friends on a connected socket report an earlier ICMP error: not fatal.
      return -code;
    }
    for (let i = 0; i < n; i++) {
      this.offsets[i] = i * this.slotSize + this.recvHeadroom;
      this.lengths[i] = hv.getUint32(i * MMSGHDR_SIZE + 56, true);
      this.segmentSizes[i] = this.control === null ? 0 : this.groSegmentSize(i);
    }
    return n;
  }

  /** The UDP_GRO segment size in slot i's control data after recv, or 0 if there is none. */
  private groSegmentSize(i: number): number {
    const cv = this.controlView!;
    const controlLength = this.headerView.getUint32(i * MMSGHDR_SIZE + 40, true);
    const at = i * GRO_CONTROL_SPACE;
    // One cmsg at most fits: cmsg_len (u64), level, type, then the int.
    if (controlLength < 20 || cv.getUint32(at, true) < 20) return 0;
    if (cv.getInt32(at + 8, true) !== SOL_UDP || cv.getInt32(at + 12, true) !== UDP_GRO) return 0;
    const size = cv.getInt32(at + 16, true);
    return size > 0 && size < this.lengths[i] ? size : 0;
  }

  /**
   * Marks slot i for sending `length` bytes from `offset` (absolute, inside slot i) to the
   * sockaddr at names[nameOffset(i)] of `nameLength` bytes (0 on a connected socket).
   */
  prepareSend(i: number, offset: number, length: number, nameLength: number): void {
    const h = i * MMSGHDR_SIZE;
    const hv = this.headerView;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    const base = this.bytesPtr + offset;
    putPointer(this.iovecs, i * IOVEC_SIZE, base);
    this.iovecs.setUint32(i * IOVEC_SIZE + 8, length, true);
    if (nameLength === 0) {
      hv.setUint32(h, 0, true);
      hv.setUint32(h + 4, 0, true);
    } else {
      const name = this.namesPtr + i * NAME_STRIDE;
      putPointer(hv, h, name);
    }
    hv.setUint32(h + 8, nameLength, true);
    hv.setUint32(h + 48, 0, true);
  }

  /**
   * Sends slots [start, start+count) on `fd`. A datagram the kernel refuses (e.g. ICMP error
   * pending, no route) is dropped and the rest still go. Returns how many were sent.
   */
  send(fd: number, start: number, count: number): number {
    let sent = 0;
    let at = start;
    this.lastErrno = 0;
    const end = start + count;
    while (at < end) {
      const n = libc.sendmmsg(fd, this.headersPtr + at * MMSGHDR_SIZE, end - at, MSG_DONTWAIT);
      if (n > 0) {
        sent += n;
        at += n;
      } else if (n === 0) {
        break;
      } else {
        const code = errno();
        if (code === EINTR) continue;
        this.lastErrno = code;
        if (code === EAGAIN) break; // socket buffer full: drop the rest of this burst
        at++; // this datagram failed; skip it
      }
    }
    return sent;
  }

  /**
   * Sends slots [start, start+count), prepared by prepareSend (all to the address of the
   * first, or all without one on a connected socket), as ONE UDP GSO message of `segmentSize`-byte datagrams: every slot but
   * the last must hold exactly segmentSize bytes, the last at most that, count at most
   * UDP_GSO_MAX_SEGMENTS, the total at most UDP_GSO_MAX_BYTES. Returns 0 on success or the
   * errno (EAGAIN: socket buffer full; EIO/EINVAL: the route or device cannot do GSO).
   */
  sendSegmented(fd: number, start: number, count: number, segmentSize: number): number {
    this.gsoControlView.setUint16(16, segmentSize, true);
    const hv = this.gsoHeaderView;
    // The first slot's address (none on a connected socket) is the message's.
    const h = start * MMSGHDR_SIZE;
    hv.setUint32(0, this.headerView.getUint32(h, true), true);
    hv.setUint32(4, this.headerView.getUint32(h + 4, true), true);
    hv.setUint32(8, this.headerView.getUint32(h + 8, true), true);
    putPointer(hv, 16, this.iovPtr + start * IOVEC_SIZE);
    hv.setUint32(24, count, true);
    hv.setUint32(48, 0, true);
    for (;;) {
      const n = libc.sendmmsg(fd, this.gsoHeaderPtr, 1, MSG_DONTWAIT);
      if (n === 1) return 0;
      const code = n < 0 ? errno() : EAGAIN;
      if (code !== EINTR) return code;
    }
  }
}
