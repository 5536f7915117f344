// An eventfd: one thread's epoll wakes when another thread writes to it. The data-path threads
// sleep in epoll_wait, where neither postMessage nor a shared-memory write reaches them.
import { ptr } from "bun:ffi";
import { libc } from "./libc.ts";
import { fail } from "./errno.ts";

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

export class EventFd {
  readonly fd: number;
  private readonly box = new BigUint64Array(1);

  constructor(fd?: number) {
    if (fd !== undefined) {
      this.fd = fd;
      return;
    }
    this.fd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.fd < 0) fail("eventfd");
  }

  /** Wakes whoever waits on the fd (the counter saturating is not a concern at our rates). */
  signal(): void {
    this.box[0] = 1n;
    libc.write(this.fd, ptr(this.box), 8);
  }

  /** Resets the counter (after a wake-up). */
  drain(): void {
    libc.read(this.fd, ptr(this.box), 8);
  }

  close(): void {
    libc.close(this.fd);
  }
}
