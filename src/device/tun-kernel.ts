// The Tun over a kernel TUN device (src/sys/tun.ts). With offloads it opens the device with
// IFF_VNET_HDR: reads may then be TCP super-packets of up to 64 KiB, cut here into packets that
// go straight into the caller's slots (segment() also finishes partial checksums), and writes of
// one batch's TCP segments are glued into super-packets (Coalescer), written with writev(2) from
// where they were decrypted. With USO, reads may also be UDP super-packets, and a batch's UDP
// datagrams of one flow are glued the same way.
import { ptr } from "bun:ffi";
import { libc, errno } from "../sys/libc.ts";
import { EAGAIN, EINTR, errnoName } from "../sys/errno.ts";

/** "File descriptor in bad state": what a TUN fd answers once its interface is deleted. */
const EBADFD = 77;
import { addTunQueue, openTun, type TunDevice } from "../sys/tun.ts";
import { COALESCE_MAX_SEGMENTS, Coalescer } from "../net/offload/coalesce.ts";
import { SEGMENT_NO_ROOM, segment } from "../net/offload/segment.ts";
import { envSwitch, TUN_WRITEV_ENV } from "../switches.ts";
import { VNET_HDR_LEN, VnetHdr, writeZeroVnetHdr } from "../net/offload/virtio-net-hdr.ts";
import type { Logger } from "../log.ts";
import { DeviceCounters } from "./counters.ts";
import { TUN_EMPTY, TUN_NEEDS_ROOM, type Tun } from "./tun.ts";

/** Largest read from a TUN with IFF_VNET_HDR: a 64 KiB super-packet and its header. */
const TUN_READ_MAX = VNET_HDR_LEN + 65535;
/**
 * Buffers at least this large have their own ArrayBuffer and never move, so their address can
 * be cached (the receive batch, the coalescer's output); ptr() is taken afresh for others.
 */
const STABLE_BUFFER_BYTES = 16384;
/** Super-packets are written from their pieces with writev (WONTUN_TUN_WRITEV, default on). */
const TUN_WRITEV = envSwitch(TUN_WRITEV_ENV, true);
/** Most pieces of one output: its headers and each segment's payload. */
const MAX_IOVECS = 1 + COALESCE_MAX_SEGMENTS;

export interface KernelTunOptions {
  /** The kernel hands over TCP super-packets (IFF_VNET_HDR + TUNSETOFFLOAD). */
  tso: boolean;
  /** Glue received TCP segments into super-packets on write. */
  gro: boolean;
  /** UDP segmentation offload both ways, if the kernel has it (6.2+): reads may be UDP
   *  super-packets, and received datagrams of a flow are glued into one on write. */
  uso: boolean;
  log: Logger;
  /**
   * Packets written were authenticated by the protocol (WireGuard's Poly1305): the coalescer may
   * glue them without verifying their checksums (WONTUN_TRUST_INNER_CSUM). Not so in plaintext mode.
   */
  authenticated: boolean;
  /** One queue of a multi-queue interface, for a tunnel with several data-path threads. */
  multiQueue?: boolean;
  /**
   * A queue another thread opened (with the same offloads): open() takes it as it is. The
   * extra data-path threads use this; the main thread opens the interface.
   */
  queue?: { fd: number; name: string };
}

export class KernelTun implements Tun {
  fd = -1;
  name: string;
  tso = false;
  /** The kernel took USO (see KernelTunOptions.uso). */
  uso = false;
  /** Every read and write starts with a virtio-net header. */
  vnetHdr = false;
  packetsWritten = 0;
  gone = false;
  counters = new DeviceCounters();
  /**
   * An existing persistent TUN interface of this name: refused (`wontun up`, which leaves it as it
   * was), or attached to as wireguard-go does (`wontun IFACE`; set before open()).
   */
  existing: "refuse" | "attach" = "refuse";

  private readonly options: KernelTunOptions;
  private readonly log: Logger;
  private readonly coalescer: Coalescer | null;
  private readonly hdr = new VnetHdr();
  private superPacket: Uint8Array | null = null;
  private superPacketAddress = 0;
  /** Length of a super-packet read but not yet cut (it needed more slots than were free). */
  private keptLength = 0;
  // Two cached buffer addresses (see STABLE_BUFFER_BYTES): the receive batch and the
  // coalescer's arena, whose pieces alternate in a writev.
  private cachedBuffer: Uint8Array | null = null;
  private cachedAddress = 0;
  private otherBuffer: Uint8Array | null = null;
  private otherAddress = 0;
  /** struct iovec[MAX_IOVECS] for writev: base and length, each as two 32-bit halves. */
  private readonly iovecs = new Uint32Array(new ArrayBuffer(MAX_IOVECS * 16));
  private readonly iovecsAddress = ptr(this.iovecs);

  constructor(name: string, options: KernelTunOptions) {
    this.name = name;
    this.options = options;
    this.log = options.log;
    this.coalescer = options.gro || options.uso ? new Coalescer(64, options.authenticated ? undefined : false) : null;
    if (this.coalescer !== null) {
      this.coalescer.gather = TUN_WRITEV;
      this.coalescer.reset();
    }
  }

  open(): void {
    const { tso, gro, uso, multiQueue, queue } = this.options;
    const vnetHdr = tso || gro || uso;
    // Another thread's queue: the interface's offloads are already set, USO as the options say.
    const device: TunDevice = queue
      ? { fd: queue.fd, name: queue.name, vnetHdr, tso, uso }
      : openTun(this.name, { vnetHdr, tso, uso, existing: this.existing, multiQueue });
    this.fd = device.fd;
    this.name = device.name;
    this.tso = device.tso;
    this.uso = device.uso;
    this.vnetHdr = device.vnetHdr;
    if (this.coalescer !== null) {
      this.coalescer.tcp = gro;
      this.coalescer.udp = device.uso;
    }
    if (this.vnetHdr) {
      this.superPacket = new Uint8Array(new ArrayBuffer(TUN_READ_MAX));
      this.superPacketAddress = ptr(this.superPacket);
    }
  }

  /** Another queue of this (multi-queue) interface, with the same offloads: its fd. */
  addQueue(): number {
    const { tso, gro } = this.options;
    const device = { fd: this.fd, name: this.name, vnetHdr: this.vnetHdr, tso: this.tso, uso: this.uso };
    return addTunQueue(device, { vnetHdr: tso || gro || this.uso, tso, uso: this.uso });
  }

  read(bytes: Uint8Array, starts: Int32Array, lengths: Int32Array, first: number, room: number, packetRoom: number): number {
    if (!this.vnetHdr) {
      const n = this.readFd(this.addressOf(bytes, starts[first]), packetRoom);
      if (n < 0) return TUN_EMPTY;
      lengths[first] = n;
      return 1;
    }
    let n = this.keptLength;
    this.keptLength = 0;
    if (n === 0) {
      n = this.readFd(this.superPacketAddress, TUN_READ_MAX);
      if (n < 0) return TUN_EMPTY;
      if (n <= VNET_HDR_LEN || !this.hdr.read(this.superPacket!, 0)) {
        this.counters.notIp++;
        return 0;
      }
    }
    const made = segment(this.superPacket!, VNET_HDR_LEN, n - VNET_HDR_LEN, this.hdr, bytes, starts, lengths, first, room, packetRoom);
    if (made === SEGMENT_NO_ROOM && first > 0) {
      this.keptLength = n;
      return TUN_NEEDS_ROOM;
    }
    if (made < 0) {
      this.counters.offloadErrors++;
      return 0;
    }
    return made;
  }

  /** read(2), retried on EINTR; -1 once the TUN is drained (EAGAIN) or failing (logged). */
  private readFd(address: number, size: number): number {
    for (;;) {
      const n = libc.read(this.fd, address, size);
      if (n >= 0) return n;
      const code = errno();
      if (code === EINTR) continue;
      // A deleted interface leaves the fd detached: reads fail with EBADFD from then on.
      if (code === EBADFD) this.gone = true;
      else if (code !== EAGAIN) this.log.error(`read from TUN: ${errnoName(code)}`);
      return -1;
    }
  }

  write(buf: Uint8Array, offset: number, length: number, coalesce: boolean): void {
    const coalescer = this.coalescer;
    if (coalesce && coalescer !== null) {
      if (!coalescer.add(buf, offset, length)) {
        this.flush();
        coalescer.add(buf, offset, length);
      }
      return;
    }
    if (this.vnetHdr) {
      // A zero header: no offload asked, the checksums are complete.
      offset -= VNET_HDR_LEN;
      length += VNET_HDR_LEN;
      writeZeroVnetHdr(buf, offset);
    }
    this.writeFd(buf, offset, length);
  }

  /** Writes the coalescer's outputs (each a vnet header and a packet) and starts a new batch. */
  flush(): void {
    const coalescer = this.coalescer;
    if (coalescer === null) return;
    const outputs = coalescer.finish();
    for (let i = 0; i < outputs; i++) {
      const first = coalescer.outFirstPiece(i);
      const pieces = coalescer.outPieces(i);
      if (pieces === 1) this.writeFd(coalescer.pieceBuffer(first), coalescer.pieceOffset(first), coalescer.pieceLength(first));
      else this.writePieces(coalescer, first, pieces);
    }
    coalescer.reset();
  }

  /** One writev of pieces first .. first+count-1 of the coalescer's outputs. */
  private writePieces(coalescer: Coalescer, first: number, count: number): void {
    const iov = this.iovecs;
    for (let k = 0; k < count; k++) {
      const j = first + k;
      const address = this.addressOf(coalescer.pieceBuffer(j), coalescer.pieceOffset(j));
      iov[4 * k] = address >>> 0;
      iov[4 * k + 1] = Math.floor(address / 0x100000000);
      iov[4 * k + 2] = coalescer.pieceLength(j);
      iov[4 * k + 3] = 0;
    }
    this.packetsWritten++;
    if (libc.writev(this.fd, this.iovecsAddress, count) < 0) this.writeFailed();
  }

  private writeFd(buf: Uint8Array, offset: number, length: number): void {
    this.packetsWritten++;
    if (libc.write(this.fd, this.addressOf(buf, offset), length) < 0) this.writeFailed();
  }

  /** Counts a failed write; only the first one is logged. */
  private writeFailed(): void {
    const code = errno();
    if (this.counters.tunWriteErrors++ === 0) this.log.warn(`write to TUN failed (${errnoName(code)}); counting further failures quietly`);
  }

  private addressOf(buf: Uint8Array, offset: number): number {
    if (buf === this.cachedBuffer) return this.cachedAddress + offset;
    if (buf === this.otherBuffer) return this.otherAddress + offset;
    if (buf.byteLength < STABLE_BUFFER_BYTES) return ptr(buf, offset);
    // The newer address goes first; the one it replaces becomes the other.
    this.otherBuffer = this.cachedBuffer;
    this.otherAddress = this.cachedAddress;
    this.cachedBuffer = buf;
    this.cachedAddress = ptr(buf);
    return this.cachedAddress + offset;
  }

  /** Closing the fd removes the interface with its addresses and routes. */
  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }
}
