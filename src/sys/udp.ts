// UDP sockets through libc: the device's listening socket and the per-peer connected sockets
// that share its port (SO_REUSEADDR + SO_REUSEPORT, as the seed does).
import { ptr } from "bun:ffi";
import { libc } from "./libc.ts";
import { EADDRINUSE, EAFNOSUPPORT, EACCES, EPERM, NEEDS_NET_ADMIN, fail, errnoName } from "./errno.ts";
import { errno } from "./libc.ts";
import { AF_INET, AF_INET6, SOCKADDR_MAX, encodeSockaddr, decodeSockaddr } from "./sockaddr.ts";
import type { Endpoint } from "../net/endpoint.ts";

const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_UDP = 17;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_REUSEPORT = 15;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SO_MARK = 36;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

/** Socket buffers big enough to absorb bursts between two epoll rounds. */
export const DEFAULT_SOCKET_BUFFER = 4 << 20;

export interface UdpSocketOptions {
  /** Local port; 0 lets the kernel choose. */
  port: number;
  /** SO_MARK (0 = none); lets policy routing keep tunnel traffic out of the tunnel. */
  fwmark?: number;
  /** SO_RCVBUF/SO_SNDBUF in bytes. */
  bufferBytes?: number;
  /** UDP_GRO: the kernel may hand over runs of datagrams as one buffer (see DatagramBatch). */
  gro?: boolean;
}

export interface UdpSocket {
  readonly fd: number;
  /** AF_INET6 (dual-stack) or AF_INET. */
  readonly family: number;
  readonly port: number;
}

const SOL_UDP = 17;
const UDP_GRO = 104;

const intBox = new Int32Array(new ArrayBuffer(4));
const lenBox = new Uint32Array(new ArrayBuffer(4));

function setIntOption(fd: number, level: number, name: number, value: number): boolean {
  intBox[0] = value;
  return libc.setsockopt(fd, level, name, ptr(intBox), 4) === 0;
}

function createSocket(family: number, opts: UdpSocketOptions): number {
  const fd = libc.socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) fail("socket(UDP)");
  if (family === AF_INET6) setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
  setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (opts.fwmark && !setIntOption(fd, SOL_SOCKET, SO_MARK, opts.fwmark)) {
    libc.close(fd);
    fail("setsockopt(SO_MARK)", { [EPERM]: NEEDS_NET_ADMIN });
  }
  // Best effort: a kernel without UDP_GRO just delivers datagrams one by one.
  if (opts.gro) setIntOption(fd, SOL_UDP, UDP_GRO, 1);
  const size = opts.bufferBytes ?? DEFAULT_SOCKET_BUFFER;
  // The FORCE variants pass rmem_max/wmem_max with CAP_NET_ADMIN; fall back to the capped ones.
  if (!setIntOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, size)) setIntOption(fd, SOL_SOCKET, SO_RCVBUF, size);
  if (!setIntOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, size)) setIntOption(fd, SOL_SOCKET, SO_SNDBUF, size);
  return fd;
}

/** Binds to the wildcard address; on failure throws and leaves closing `fd` to the caller. */
function bindAny(fd: number, family: number, port: number): void {
  const sa = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));
  const any = { address: new Uint8Array(family === AF_INET ? 4 : 16), port };
  const len = encodeSockaddr(any, family, sa);
  if (libc.bind(fd, ptr(sa), len) < 0) {
    const code = errno();
    if (code === EADDRINUSE) {
      throw new Error(`bind UDP port ${port}: address already in use (${errnoName(code)}): another program holds this port; set ListenPort to a free one`);
    }
    if (code === EACCES || code === EPERM) throw new Error(`bind UDP port ${port}: permission denied`);
    throw new Error(`bind UDP port ${port}: ${errnoName(code)}`);
  }
}

function boundPort(fd: number): number {
  const sa = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));
  lenBox[0] = SOCKADDR_MAX;
  if (libc.getsockname(fd, ptr(sa), ptr(lenBox)) < 0) fail("getsockname");
  return decodeSockaddr(sa)?.port ?? 0;
}

/**
 * Fails if another program holds `port`. The listening socket sets SO_REUSEPORT (so the per-peer
 * sockets can share the port), which would also let a second daemon silently share it: a
 * plain bind first proves nobody else is there.
 */
function assertPortFree(family: number, port: number): void {
  const fd = libc.socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) fail("socket(UDP)");
  if (family === AF_INET6) setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
  try {
    bindAny(fd, family, port);
  } finally {
    libc.close(fd);
  }
}

/**
 * Opens the listening socket: dual-stack IPv6 when the host has IPv6, otherwise IPv4 only.
 * `family` can force AF_INET.
 */
export function openUdpSocket(opts: UdpSocketOptions, family?: number): UdpSocket {
  let fam = family ?? AF_INET6;
  let fd: number;
  try {
    fd = createSocket(fam, opts);
  } catch (err) {
    if (family === undefined && errno() === EAFNOSUPPORT) {
      fam = AF_INET;
      fd = createSocket(fam, opts);
    } else {
      throw err;
    }
  }
  try {
    if (opts.port !== 0) assertPortFree(fam, opts.port);
    bindAny(fd, fam, opts.port);
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  return { fd, family: fam, port: opts.port === 0 ? boundPort(fd) : opts.port };
}

/**
 * A socket on the listening socket's port, connected to one peer: the kernel then hands us only
 * that peer's datagrams on it, and sends need no address.
 */
export function openConnectedSocket(listen: UdpSocket, peer: Endpoint, opts: UdpSocketOptions): UdpSocket {
  const { fd } = openReusePortSibling(listen, opts);
  const sa = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));
  const len = encodeSockaddr(peer, listen.family, sa);
  if (libc.connect(fd, ptr(sa), len) < 0) {
    const code = errno();
    libc.close(fd);
    throw new Error(`connect UDP socket: ${errnoName(code)}`);
  }
  return { fd, family: listen.family, port: listen.port };
}

/**
 * Another unconnected socket in the listening socket's SO_REUSEPORT group, on its port: the
 * kernel spreads the group's datagrams over its sockets (see reuseport-steering.ts).
 */
export function openReusePortSibling(listen: UdpSocket, opts: UdpSocketOptions): UdpSocket {
  const fd = createSocket(listen.family, opts);
  try {
    bindAny(fd, listen.family, listen.port);
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  return { fd, family: listen.family, port: listen.port };
}

/** SO_MARK on an open socket (0: none); throws if the kernel refuses (it needs CAP_NET_ADMIN). */
export function setSocketMark(fd: number, mark: number): void {
  if (!setIntOption(fd, SOL_SOCKET, SO_MARK, mark)) fail("setsockopt(SO_MARK)", { [EPERM]: NEEDS_NET_ADMIN });
}
