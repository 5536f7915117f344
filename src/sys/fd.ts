// File descriptor basics shared by the TUN device, sockets and epoll.
import { libc } from "./libc.ts";
import { fail } from "./errno.ts";

const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

export function setNonBlocking(fd: number): void {
  const flags = libc.fcntl(fd, F_GETFL, 0);
  if (flags < 0) fail("fcntl(F_GETFL)");
  if (libc.fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) fail("fcntl(F_SETFL)");
}

export function closeFd(fd: number): void {
  if (fd >= 0) libc.close(fd);
}
