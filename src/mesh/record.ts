// What a node publishes in the store, and how a record read back is checked. Only public data:
// the public key, a name, the mesh address, endpoints, subnets and the program's version.
//
// Key layout under the mesh's Prefix P:
//   P/nodes/<public key, base64url>   the record (JSON), bound to the node's lease
//   P/addresses/<address>             the public key (base64) of the node holding that address,
//                                     created in the same transaction as the record (never twice)
import { type Cidr, cidrContains, formatCidr, formatIp, parseCidr, parseIp, specialAddress } from "../net/ip.ts";
import { type Endpoint, formatEndpoint, parseEndpoint } from "../net/endpoint.ts";
import { decodeKey, encodeKey, isLowOrderPoint } from "../crypto/keys.ts";
import { MAX_PEER_NAME_BYTES } from "../config/model.ts";

/** A record is a few hundred bytes; anything past this is not one (and is never parsed). */
export const MAX_RECORD_BYTES = 4096;
export const MAX_RECORD_ENDPOINTS = 8;
export const MAX_RECORD_SUBNETS = 64;

/** A record as it is stored (JSON). */
export interface MemberRecord {
  publicKey: string;
  name: string;
  address: string;
  endpoints: string[];
  subnets: string[];
  version: string;
}

/** A record that passed every check. */
export interface Member {
  /** base64 public key (the peer's identity everywhere else). */
  key: string;
  publicKey: Uint8Array;
  name: string;
  address: Uint8Array;
  endpoints: Endpoint[];
  subnets: Cidr[];
  version: string;
}

export function nodesPrefix(prefix: string): string {
  return `${prefix}/nodes/`;
}

export function addressesPrefix(prefix: string): string {
  return `${prefix}/addresses/`;
}

/** base64url without padding: a key that is one path segment. */
export function keySegment(publicKey: Uint8Array): string {
  return encodeKey(publicKey).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function nodeKey(prefix: string, publicKey: Uint8Array): string {
  return nodesPrefix(prefix) + keySegment(publicKey);
}

export function addressKey(prefix: string, address: Uint8Array): string {
  return addressesPrefix(prefix) + formatIp(address);
}

export function encodeRecord(record: MemberRecord): string {
  return JSON.stringify(record);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Checks one value found under P/nodes/: returns the member, or why it is ignored (a warning's
 * text). The key must name the record's own public key; the address must be a host address
 * inside the mesh's network; subnets must not overlap it.
 */
export function decodeMember(prefix: string, etcdKey: string, value: Uint8Array, network: Cidr): Member | string {
  if (value.length > MAX_RECORD_BYTES) return `record of ${value.length} bytes (at most ${MAX_RECORD_BYTES})`;
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(value));
  } catch {
    return "record is not JSON";
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return "record is not a JSON object";
  const r = raw as Record<string, unknown>;
  if (typeof r.publicKey !== "string") return "record has no publicKey";
  const publicKey = decodeKey(r.publicKey);
  if (typeof publicKey === "string") return `bad publicKey: ${publicKey}`;
  if (isLowOrderPoint(publicKey)) return "publicKey is a low-order point";
  if (etcdKey !== nodeKey(prefix, publicKey)) return "record is stored under another node's key";
  if (typeof r.name !== "string" || r.name === "" || new TextEncoder().encode(r.name).length > MAX_PEER_NAME_BYTES || /[\u0000-\u001f\u007f#]/.test(r.name) || r.name !== r.name.trim()) {
    return "bad name";
  }
  if (typeof r.address !== "string") return "record has no address";
  const address = parseIp(r.address);
  if (!address || !cidrContains(network, address) || specialAddress(address)) return `address ${JSON.stringify(r.address).slice(0, 60)} is not a host address in ${formatCidr(network)}`;
  if (!isHostAddress(network, address)) return `address ${r.address} is the network's own or broadcast address`;
  if (!Array.isArray(r.endpoints) || r.endpoints.length > MAX_RECORD_ENDPOINTS) return "bad endpoints";
  const endpoints: Endpoint[] = [];
  for (const text of r.endpoints) {
    const ep = typeof text === "string" ? parseEndpoint(text) : "not a string";
    if (typeof ep === "string") return `bad endpoint: ${ep}`;
    const special = specialAddress(ep.address);
    if (special && special !== "loopback") return `bad endpoint ${formatEndpoint(ep)}`;
    endpoints.push(ep);
  }
  if (!Array.isArray(r.subnets) || r.subnets.length > MAX_RECORD_SUBNETS) return "bad subnets";
  const subnets: Cidr[] = [];
  for (const text of r.subnets) {
    const cidr = typeof text === "string" ? parseCidr(text) : "not a string";
    if (typeof cidr === "string") return `bad subnet: ${cidr}`;
    if (cidr.prefix === 0) return `subnet ${formatCidr(cidr)} is everything`;
    if (cidr.address.length === network.address.length && (cidr.prefix <= network.prefix ? cidrContains(cidr, network.address) : cidrContains(network, cidr.address))) {
      return `subnet ${formatCidr(cidr)} overlaps the mesh network`;
    }
    subnets.push(cidr);
  }
  const version = typeof r.version === "string" ? r.version.slice(0, 40) : "";
  return { key: encodeKey(publicKey), publicKey, name: r.name, address, endpoints, subnets, version };
}

/** Not the network's first address, nor (IPv4) its broadcast address. */
export function isHostAddress(network: Cidr, address: Uint8Array): boolean {
  const bits = address.length * 8;
  let allZero = true;
  let allOne = true;
  for (let bit = network.prefix; bit < bits; bit++) {
    const set = (address[bit >> 3] & (0x80 >> (bit & 7))) !== 0;
    if (set) allZero = false;
    else allOne = false;
  }
  if (allZero) return false;
  return !(allOne && address.length === 4);
}

/** The record this node publishes. */
export function ownRecord(publicKey: Uint8Array, name: string, address: Uint8Array, endpoints: { host: string; port: number }[], subnets: Cidr[], version: string): MemberRecord {
  return {
    publicKey: encodeKey(publicKey),
    name,
    address: formatIp(address),
    endpoints: endpoints.map((e) => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`)),
    subnets: subnets.map(formatCidr),
    version,
  };
}
