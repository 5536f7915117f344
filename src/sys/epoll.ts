// Edge-triggered epoll: one wait for the TUN device and every UDP socket. Each fd is registered
// with a 32-bit token that the device decodes (which fd kind, which peer).
import { ptr } from "bun:ffi";
import { libc } from "./libc.ts";
import { EINTR, fail } from "./errno.ts";
import { errno } from "./libc.ts";

const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLET = 1 << 31;

// struct epoll_event is packed on x86-64 (u32 events; u64 data = 12 bytes), naturally aligned
// elsewhere (16 bytes, data at 8).
const PACKED = process.arch === "x64";
const EVENT_SIZE = PACKED ? 12 : 16;
const DATA_OFFSET = PACKED ? 4 : 8;

export class Epoll {
  readonly fd: number;
  private readonly events: Uint8Array;
  private readonly view: DataView;
  private readonly eventsPtr: number;
  private readonly ctlEvent = new Uint8Array(new ArrayBuffer(16));
  private readonly ctlView = new DataView(this.ctlEvent.buffer);

  constructor(readonly maxEvents = 64) {
    this.fd = libc.epoll_create1(EPOLL_CLOEXEC);
    if (this.fd < 0) fail("epoll_create1");
    this.events = new Uint8Array(new ArrayBuffer(maxEvents * EVENT_SIZE));
    this.view = new DataView(this.events.buffer);
    this.eventsPtr = ptr(this.events);
  }

  /**
   * Watches `fd` for input, edge-triggered (the caller must drain it until EAGAIN) unless
   * `edgeTriggered` is false (then reported at every wait while readable).
   */
  addReadable(fd: number, token: number, edgeTriggered = true): void {
    this.ctlView.setUint32(0, edgeTriggered ? EPOLLIN | EPOLLET : EPOLLIN, true);
    this.ctlView.setUint32(DATA_OFFSET, token >>> 0, true);
    this.ctlView.setUint32(DATA_OFFSET + 4, 0, true);
    if (libc.epoll_ctl(this.fd, EPOLL_CTL_ADD, fd, ptr(this.ctlEvent)) < 0) fail("epoll_ctl(ADD)");
  }

  /**
   * Watches `fd` for input and for room to write, edge-triggered: the caller drains input until
   * EAGAIN and, after a short write, waits for the next event before writing again.
   */
  addReadWritable(fd: number, token: number): void {
    this.ctlView.setUint32(0, EPOLLIN | EPOLLOUT | EPOLLET, true);
    this.ctlView.setUint32(DATA_OFFSET, token >>> 0, true);
    this.ctlView.setUint32(DATA_OFFSET + 4, 0, true);
    if (libc.epoll_ctl(this.fd, EPOLL_CTL_ADD, fd, ptr(this.ctlEvent)) < 0) fail("epoll_ctl(ADD)");
  }

  remove(fd: number): void {
    libc.epoll_ctl(this.fd, EPOLL_CTL_DEL, fd, ptr(this.ctlEvent));
  }

  /** Waits up to `timeoutMs` (-1 = forever); returns how many events are ready (0 on EINTR). */
  wait(timeoutMs: number): number {
    const n = libc.epoll_wait(this.fd, this.eventsPtr, this.maxEvents, timeoutMs);
    if (n < 0) {
      if (errno() === EINTR) return 0;
      fail("epoll_wait");
    }
    return n;
  }

  token(i: number): number {
    return this.view.getUint32(i * EVENT_SIZE + DATA_OFFSET, true);
  }

  flags(i: number): number {
    return this.view.getUint32(i * EVENT_SIZE, true);
  }

  close(): void {
    libc.close(this.fd);
  }
}
