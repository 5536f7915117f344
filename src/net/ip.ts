// IP addresses as bytes (4 for IPv4, 16 for IPv6): the form the kernel, the trie and the
// wire all use. Parsing is strict: anything not a canonical literal is rejected with null.

import { quote } from "../text.ts";

export type IpFamily = 4 | 6;

export interface Cidr {
  /** Network address with host bits cleared (4 or 16 bytes). */
  readonly address: Uint8Array;
  readonly prefix: number;
}

const V4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

export function familyOf(address: Uint8Array): IpFamily {
  return address.length === 4 ? 4 : 6;
}

export function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!V4_PART.test(parts[i])) return null;
    out[i] = Number(parts[i]);
  }
  return out;
}

export function parseIpv6(text: string): Uint8Array | null {
  if (text.includes("%")) return null; // zone ids are not addresses of a tunnel
  const halves = text.split("::");
  if (halves.length > 2) return null;
  // An embedded IPv4 part may only end the whole address (after "::", if there is one).
  const groups = (half: string, last: boolean): number[] | null => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (last && i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (V6_GROUP.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (!head || !tail) return null;
  const count = head.length + tail.length;
  if (halves.length === 2 ? count > 7 : count !== 8) return null;
  const all = [...head, ...new Array(8 - count).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i] >> 8;
    out[2 * i + 1] = all[i] & 0xff;
  }
  return out;
}

/** Parses an IPv4 or IPv6 literal; null if it is neither. */
export function parseIp(text: string): Uint8Array | null {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

export function formatIp(address: Uint8Array): string {
  if (address.length === 4) return address.join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((address[i] << 8) | address[i + 1]);
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Clears the bits after `prefix` (AllowedIPs are truncated to their network, as WireGuard does). */
export function maskAddress(address: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(address);
  for (let bit = prefix; bit < out.length * 8; bit++) out[bit >> 3] &= ~(0x80 >> (bit & 7));
  return out;
}

/**
 * Parses "addr/prefix" (or a bare address, meaning a host route). Returns an error text on
 * failure so config errors can say what was wrong. `keepHostBits` keeps the address as written
 * (interface addresses); otherwise host bits are cleared (AllowedIPs).
 */
export function parseCidr(text: string, keepHostBits = false): Cidr | string {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const address = parseIp(addrText);
  if (!address) return `${quote(addrText)} is not an IPv4 or IPv6 address`;
  const max = address.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
      return `${quote(prefixText)} is not a prefix length (0-${max})`;
    }
    prefix = Number(prefixText);
  }
  return { address: keepHostBits ? address : maskAddress(address, prefix), prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.address)}/${cidr.prefix}`;
}

export function ipEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True if `address` lies inside `cidr` (same family, same leading `prefix` bits). */
export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  if (cidr.address.length !== address.length) return false;
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (cidr.address[i] !== address[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (cidr.address[full] & mask) === (address[full] & mask);
}

/** Addresses with a special meaning, which neither an interface nor a peer's endpoint can have. */
export type SpecialAddress = "unspecified" | "loopback" | "multicast" | "broadcast";

/** What is special about `address`, or null for an ordinary unicast address. */
export function specialAddress(address: Uint8Array): SpecialAddress | null {
  if (address.every((b) => b === 0)) return "unspecified";
  if (address.length === 4) {
    if (address[0] === 127) return "loopback";
    if ((address[0] & 0xf0) === 224) return "multicast";
    if (address.every((b) => b === 255)) return "broadcast";
    return null;
  }
  if (address[0] === 0xff) return "multicast";
  if (address[15] === 1 && address.subarray(0, 15).every((b) => b === 0)) return "loopback";
  return null;
}
