// Non-blocking AF_UNIX stream sockets through libc, for the control socket: served from the
// device's epoll loop, so no Bun sockets and no threads. Reads and writes return a count or a
// negated errno instead of throwing: a client that goes away is routine, not an exception.
import { ptr } from "bun:ffi";
import { libc, errno } from "./libc.ts";
import { EAGAIN, ECONNREFUSED, EINTR, ENOENT, fail } from "./errno.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
/** send() flag: a write to a client that hung up returns EPIPE instead of raising SIGPIPE. */
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): u16 family + 108 bytes of path. */
const SOCKADDR_UN_SIZE = 110;
const SUN_PATH_MAX = 108;

export const EPIPE = 32;
export const ECONNRESET = 104;
export const EINPROGRESS = 115;

/** struct sockaddr_un for `path` (long-lived: its address is handed to libc). */
function sockaddrUn(path: string): Uint8Array {
  const bytes = Buffer.from(path, "utf8");
  // One byte stays for the NUL terminator.
  if (bytes.length >= SUN_PATH_MAX) {
    throw new Error(`socket path is ${bytes.length} bytes long, at most ${SUN_PATH_MAX - 1} allowed: ${path}`);
  }
  if (bytes.includes(0)) throw new Error("socket path contains a NUL byte");
  const addr = new Uint8Array(new ArrayBuffer(SOCKADDR_UN_SIZE));
  addr[0] = AF_UNIX & 0xff;
  addr[1] = AF_UNIX >> 8;
  addr.set(bytes, 2);
  return addr;
}

function newSocket(): number {
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket(AF_UNIX)");
  return fd;
}

/**
 * A listening socket bound at `path`, or the negated errno of bind() (-EADDRINUSE when the file
 * exists) so the caller can decide about a stale file. Other failures throw SysError.
 */
export function listenUnix(path: string, backlog: number): number {
  const addr = sockaddrUn(path);
  const fd = newSocket();
  if (libc.bind(fd, ptr(addr), SOCKADDR_UN_SIZE) < 0) {
    const code = errno();
    libc.close(fd);
    return -code;
  }
  if (libc.listen(fd, backlog) < 0) {
    try {
      fail("listen");
    } finally {
      libc.close(fd);
    }
  }
  return fd;
}

/** A new non-blocking, close-on-exec client fd, or -1 when none is waiting (or it vanished). */
export function acceptUnix(listenFd: number): number {
  for (;;) {
    const fd = libc.accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    const code = errno();
    if (code === EINTR) continue;
    if (code === EAGAIN) return -1;
    // ECONNABORTED, EMFILE, ENFILE, ENOBUFS…: nothing to hand out this round.
    return -1;
  }
}

/**
 * Whether something accepts connections at `path`: "live" (connect succeeded, or its backlog is
 * full), "stale" (a socket file nobody listens on), or "none" (no such file).
 */
export function probeUnix(path: string): "live" | "stale" | "none" {
  const addr = sockaddrUn(path);
  const fd = newSocket();
  try {
    if (libc.connect(fd, ptr(addr), SOCKADDR_UN_SIZE) === 0) return "live";
    const code = errno();
    if (code === EAGAIN || code === EINPROGRESS) return "live";
    if (code === ECONNREFUSED) return "stale";
    if (code === ENOENT) return "none";
    return "stale";
  } finally {
    libc.close(fd);
  }
}

/** Reads into buf[0..len): bytes read (> 0), 0 at end of stream, or a negated errno (-EAGAIN). */
export function readSome(fd: number, bufPtr: number, len: number): number {
  for (;;) {
    const n = libc.read(fd, bufPtr, len);
    if (n >= 0) return n;
    const code = errno();
    if (code !== EINTR) return -code;
  }
}

/** Writes from buf: bytes written (>= 0) or a negated errno (-EAGAIN, -EPIPE, …). Never SIGPIPE. */
export function writeSome(fd: number, bufPtr: number, len: number): number {
  for (;;) {
    const n = libc.sendto(fd, bufPtr, len, MSG_NOSIGNAL, null, 0);
    if (n >= 0) return n;
    const code = errno();
    if (code !== EINTR) return -code;
  }
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/**
 * The pid of the process that serves the unix socket at `path` (SO_PEERCRED of a connection to
 * it), or null when nothing accepts there. `wontun down` and `reload` signal that process.
 */
export function serverPid(path: string): number | null {
  const addr = sockaddrUn(path);
  const fd = newSocket();
  try {
    if (libc.connect(fd, ptr(addr), SOCKADDR_UN_SIZE) !== 0) return null;
    // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
    const cred = new Uint8Array(new ArrayBuffer(12));
    const length = new Uint32Array(new ArrayBuffer(4));
    length[0] = cred.length;
    if (libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ptr(cred), ptr(length)) !== 0) return null;
    const pid = new DataView(cred.buffer).getInt32(0, true);
    return pid > 0 ? pid : null;
  } finally {
    libc.close(fd);
  }
}
