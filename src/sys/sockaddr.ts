// struct sockaddr_in / sockaddr_in6 <-> Endpoint. Sockets are dual-stack AF_INET6 where the
// host allows it, so IPv4 peers travel as v4-mapped addresses (::ffff:a.b.c.d) and are turned
// back into 4-byte addresses on the way in.
import type { Endpoint } from "../net/endpoint.ts";

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
/** Room for either kind. */
export const SOCKADDR_MAX = 28;

/**
 * Writes `ep` as a sockaddr for a socket of `socketFamily` into `out` at `offset`; returns its
 * length. An IPv4 endpoint on an AF_INET6 socket becomes v4-mapped.
 */
export function encodeSockaddr(ep: Endpoint, socketFamily: number, out: Uint8Array, offset = 0): number {
  const view = new DataView(out.buffer, out.byteOffset + offset, SOCKADDR_MAX);
  out.fill(0, offset, offset + SOCKADDR_MAX);
  if (socketFamily === AF_INET) {
    if (ep.address.length !== 4) throw new Error("an IPv6 endpoint needs an IPv6 socket");
    view.setUint16(0, AF_INET, true);
    view.setUint16(2, ep.port, false);
    out.set(ep.address, offset + 4);
    return SOCKADDR_IN_SIZE;
  }
  view.setUint16(0, AF_INET6, true);
  view.setUint16(2, ep.port, false);
  if (ep.address.length === 4) {
    out[offset + 18] = 0xff;
    out[offset + 19] = 0xff;
    out.set(ep.address, offset + 20);
  } else {
    out.set(ep.address, offset + 8);
  }
  return SOCKADDR_IN6_SIZE;
}

function isV4Mapped(buf: Uint8Array, at: number): boolean {
  for (let i = 0; i < 10; i++) if (buf[at + i] !== 0) return false;
  return buf[at + 10] === 0xff && buf[at + 11] === 0xff;
}

/** Reads a sockaddr written by the kernel; null for families other than IPv4/IPv6. */
export function decodeSockaddr(buf: Uint8Array, offset = 0): Endpoint | null {
  const family = buf[offset] | (buf[offset + 1] << 8);
  const port = (buf[offset + 2] << 8) | buf[offset + 3];
  if (family === AF_INET) return { address: buf.slice(offset + 4, offset + 8), port };
  if (family !== AF_INET6) return null;
  if (isV4Mapped(buf, offset + 8)) return { address: buf.slice(offset + 20, offset + 24), port };
  return { address: buf.slice(offset + 8, offset + 24), port };
}

/**
 * True if the sockaddr at `buf[offset]` is `ep` (same address and port), without allocating:
 * the per-datagram check of whether a peer roamed.
 */
export function sockaddrMatches(buf: Uint8Array, offset: number, ep: Endpoint): boolean {
  const family = buf[offset] | (buf[offset + 1] << 8);
  if (((buf[offset + 2] << 8) | buf[offset + 3]) !== ep.port) return false;
  let at: number;
  if (family === AF_INET) {
    if (ep.address.length !== 4) return false;
    at = offset + 4;
  } else if (family === AF_INET6) {
    if (ep.address.length === 4) {
      if (!isV4Mapped(buf, offset + 8)) return false;
      at = offset + 20;
    } else {
      at = offset + 8;
    }
  } else {
    return false;
  }
  const addr = ep.address;
  for (let i = 0; i < addr.length; i++) if (buf[at + i] !== addr[i]) return false;
  return true;
}
