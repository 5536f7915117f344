// systemd's readiness protocol (sd_notify(3)): one datagram "READY=1" etc. to the unix socket
// named by $NOTIFY_SOCKET. Bun has no unix datagram client, so this goes through libc.
import { ptr } from "bun:ffi";
import { errno, libc } from "../sys/libc.ts";
import { SysError } from "../sys/errno.ts";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const CLOCK_MONOTONIC = 1;
const SUN_PATH_MAX = 108; // struct sockaddr_un { u16 sun_family; char sun_path[108]; }

/**
 * Sends `state` (e.g. "READY=1") to the service manager. Returns false when not run under one
 * (no NOTIFY_SOCKET); throws when the socket is named but cannot be reached.
 */
export function sdNotify(state: string, socketPath = process.env.NOTIFY_SOCKET): boolean {
  if (!socketPath) return false;
  // "@name" is a socket in the abstract namespace: a leading NUL byte instead of "@".
  const abstract = socketPath.startsWith("@");
  const path = Buffer.from(abstract ? socketPath.slice(1) : socketPath, "utf8");
  if (path.length + 1 > SUN_PATH_MAX) throw new Error(`NOTIFY_SOCKET ${socketPath} is too long`);
  const addr = new Uint8Array(new ArrayBuffer(2 + SUN_PATH_MAX));
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(path, abstract ? 3 : 2);
  const addrLen = 2 + (abstract ? 1 + path.length : path.length + 1);
  const message = Buffer.from(state, "utf8");
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("notify systemd: socket", errno());
  try {
    const sent = libc.sendto(fd, ptr(message), message.length, MSG_NOSIGNAL, ptr(addr), addrLen);
    if (sent < 0) throw new SysError(`notify systemd at ${socketPath}`, errno());
  } finally {
    libc.close(fd);
  }
  return true;
}

/** The interface is up and configured. */
export const notifyReady = (status?: string) => sdNotify(status ? `READY=1\nSTATUS=${status}` : "READY=1");
/** A reload starts (RELOADING=1 needs MONOTONIC_USEC since systemd 253; older ones ignore it). */
export const notifyReloading = () => sdNotify(`RELOADING=1\nMONOTONIC_USEC=${monotonicMicros()}`);
/** Shutting down. */
export const notifyStopping = () => sdNotify("STOPPING=1");

/** CLOCK_MONOTONIC in microseconds, the clock systemd's MONOTONIC_USEC is read against. */
function monotonicMicros(): bigint {
  const ts = new BigInt64Array(2); // struct timespec { i64 tv_sec; i64 tv_nsec; }
  if (libc.clock_gettime(CLOCK_MONOTONIC, ptr(ts)) < 0) throw new SysError("clock_gettime", errno());
  return ts[0] * 1_000_000n + ts[1] / 1000n;
}
