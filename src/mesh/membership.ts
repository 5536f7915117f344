// From what the store holds to the peers this node should have, and from the peers it has to one
// DeviceChange. Pure functions, so the rules are tested without etcd:
// - a record is a member only if it passes decodeMember and P/addresses/<its address> names its
//   key (the allocation transaction wrote both); otherwise it is ignored with a warning;
// - topology: a node with endpoints peers with every member; a node without endpoints (behind
//   NAT) peers only with members that have endpoints, with PersistentKeepalive towards them;
// - a member's AllowedIPs are its address (/32 or /128) and its subnets; a prefix another member
//   or a static [Peer] already has, or that overlaps one, makes the later member ignored. A
//   static prefix that covers the whole mesh Network (0.0.0.0/0 to an exit, 10.0.0.0/8 to a
//   hub) is a catch-all: members' more specific prefixes refine it, as routes do.
import { type Cidr, cidrContains, formatCidr, formatIp } from "../net/ip.ts";
import { type Endpoint, endpointEquals, formatEndpoint } from "../net/endpoint.ts";
import type { DeviceChange, PeerChange } from "../control/model.ts";
import { addressesPrefix, decodeMember, type Member, nodesPrefix } from "./record.ts";
import { MESH_KEEPALIVE } from "./config.ts";

/** One key/value under the prefix, as read or watched. */
export interface StoreEntry {
  value: Uint8Array;
  createRevision: number;
}

export interface MembershipContext {
  prefix: string;
  network: Cidr;
  /** This node's base64 public key. */
  ownKey: string;
  /** Keys of static [Peer] sections (they win over mesh records). */
  staticKeys: ReadonlySet<string>;
  /** AllowedIPs of static peers. */
  staticPrefixes: readonly Cidr[];
}

export interface Membership {
  /** Accepted members other than this node, oldest record first. */
  members: Member[];
  /** This node's own record as the store holds it (null if absent or malformed). */
  own: Member | null;
  /** Ignored records: etcd key → why. */
  ignored: Map<string, string>;
}

const text = new TextDecoder();

/** Decoded records by entry (a put replaces the entry object), so a change decodes only what changed. */
export type DecodeCache = WeakMap<StoreEntry, Member | string>;

export function readMembership(view: ReadonlyMap<string, StoreEntry>, ctx: MembershipContext, cache?: DecodeCache): Membership {
  const nodes = nodesPrefix(ctx.prefix);
  const addresses = addressesPrefix(ctx.prefix);
  const holders = new Map<string, string>();
  for (const [key, entry] of view) {
    if (key.startsWith(addresses)) holders.set(key.slice(addresses.length), text.decode(entry.value.subarray(0, 64)));
  }
  const ignored = new Map<string, string>();
  const members: Member[] = [];
  let own: Member | null = null;
  const records = [...view].filter(([key]) => key.startsWith(nodes)).sort((a, b) => a[1].createRevision - b[1].createRevision);
  // Static prefixes members may not overlap (catch-alls left out), and members' subnets so far.
  // Addresses need no overlap check among members: each is a host address in the Network, held
  // by one node (P/addresses), and no subnet may overlap the Network.
  const statics = ctx.staticPrefixes.filter((c) => !(c.address.length === ctx.network.address.length && c.prefix <= ctx.network.prefix && cidrContains(c, ctx.network.address)));
  const subnets: { cidr: Cidr; owner: string }[] = [];
  for (const [key, entry] of records) {
    let member = cache?.get(entry);
    if (member === undefined) {
      member = decodeMember(ctx.prefix, key, entry.value, ctx.network);
      cache?.set(entry, member);
    }
    if (typeof member === "string") {
      ignored.set(key, member);
      continue;
    }
    const address = formatIp(member.address);
    const holder = holders.get(address);
    if (holder !== member.key) {
      ignored.set(key, holder === undefined ? `address ${address} was not allocated to it` : `address ${address} belongs to another node`);
      continue;
    }
    if (member.key === ctx.ownKey) {
      own = member;
      continue;
    }
    if (ctx.staticKeys.has(member.key)) {
      ignored.set(key, "this key is a static [Peer] in the config");
      continue;
    }
    const clash = overlapOf(allowedIpsOf(member), statics, subnets);
    if (clash) {
      ignored.set(key, clash);
      continue;
    }
    for (const cidr of member.subnets) subnets.push({ cidr, owner: member.name });
    members.push(member);
  }
  return { members, own, ignored };
}

/** Why a member's prefixes cannot be routed to it: one overlaps a static peer's or an earlier member's. */
function overlapOf(prefixes: readonly Cidr[], statics: readonly Cidr[], subnets: readonly { cidr: Cidr; owner: string }[]): string | null {
  for (const p of prefixes) {
    const s = statics.find((c) => cidrOverlaps(c, p));
    if (s) return `${formatCidr(p)} overlaps ${formatCidr(s)}, routed to a static [Peer]`;
    const m = subnets.find((c) => cidrOverlaps(c.cidr, p));
    if (m) return `${formatCidr(p)} overlaps ${formatCidr(m.cidr)}, already routed to ${m.owner}`;
  }
  return null;
}

/** Same family, and one contains the other's network address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.address.length !== b.address.length) return false;
  return a.prefix <= b.prefix ? cidrContains(a, b.address) : cidrContains(b, a.address);
}

export function allowedIpsOf(member: Member): Cidr[] {
  return [{ address: member.address, prefix: member.address.length * 8 }, ...member.subnets];
}

/** What this node wants as a peer for one member. */
export interface DesiredPeer {
  key: string;
  publicKey: Uint8Array;
  name: string;
  endpoint: Endpoint | null;
  allowedIps: Cidr[];
  persistentKeepalive: number;
}

/**
 * The default topology (see the file's head). A node without endpoints also routes the members
 * it cannot reach directly (the other nodes without endpoints) through one relay: the oldest
 * member with endpoints, whose AllowedIPs get their addresses and subnets. The relay forwards
 * between its peers only if IP forwarding is on there (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding).
 */
export function desiredPeers(members: readonly Member[], selfHasEndpoints: boolean): Map<string, DesiredPeer> {
  const out = new Map<string, DesiredPeer>();
  if (!selfHasEndpoints) {
    const relay = members.find((m) => m.endpoints.length > 0);
    for (const m of members) {
      if (m.endpoints.length > 0) {
        out.set(m.key, { key: m.key, publicKey: m.publicKey, name: m.name, endpoint: m.endpoints[0], allowedIps: allowedIpsOf(m), persistentKeepalive: MESH_KEEPALIVE });
      }
    }
    if (relay) {
      const via = out.get(relay.key) as DesiredPeer;
      for (const m of members) if (m.endpoints.length === 0) via.allowedIps = [...via.allowedIps, ...allowedIpsOf(m)];
    }
    return out;
  }
  for (const m of members) {
    const reachable = m.endpoints.length > 0;
    if (!selfHasEndpoints && !reachable) continue;
    out.set(m.key, {
      key: m.key,
      publicKey: m.publicKey,
      name: m.name,
      endpoint: m.endpoints[0] ?? null,
      allowedIps: allowedIpsOf(m),
      persistentKeepalive: !selfHasEndpoints && reachable ? MESH_KEEPALIVE : 0,
    });
  }
  return out;
}

function sameCidrs(a: readonly Cidr[], b: readonly Cidr[]): boolean {
  return a.length === b.length && a.map(formatCidr).sort().join() === b.map(formatCidr).sort().join();
}

/**
 * The change from `applied` to `desired`: new peers added, gone ones removed, changed ones
 * updated in place (update_only; only what changed is sent, so their sessions stay). A member
 * whose endpoint is absent keeps the endpoint the peer roamed to.
 */
export function diffPeers(applied: ReadonlyMap<string, DesiredPeer>, desired: ReadonlyMap<string, DesiredPeer>): { change: DeviceChange; lines: string[] } {
  const peers: PeerChange[] = [];
  const lines: string[] = [];
  for (const [key, old] of applied) {
    if (desired.has(key)) continue;
    peers.push({ publicKey: old.publicKey, name: "", remove: true, updateOnly: false, replaceAllowedIps: false, allowedIps: [] });
    lines.push(`mesh: ${old.name} (${key.slice(0, 8)}…) left`);
  }
  for (const [key, next] of desired) {
    const old = applied.get(key);
    const ep = next.endpoint ? formatEndpoint(next.endpoint) : "no endpoint";
    if (!old) {
      peers.push({
        publicKey: next.publicKey, name: next.name, remove: false, updateOnly: false, replaceAllowedIps: true, allowedIps: next.allowedIps,
        persistentKeepalive: next.persistentKeepalive, ...(next.endpoint ? { endpoint: next.endpoint } : {}),
      });
      lines.push(`mesh: ${next.name} (${key.slice(0, 8)}…) joined: ${next.allowedIps.map(formatCidr).join(", ")} at ${ep}`);
      continue;
    }
    const change: PeerChange = { publicKey: next.publicKey, name: next.name, remove: false, updateOnly: true, replaceAllowedIps: false, allowedIps: [] };
    const what: string[] = [];
    if (next.endpoint && !endpointEquals(old.endpoint, next.endpoint)) {
      change.endpoint = next.endpoint;
      what.push(`endpoint ${ep}`);
    }
    if (!sameCidrs(old.allowedIps, next.allowedIps)) {
      change.replaceAllowedIps = true;
      change.allowedIps = next.allowedIps;
      what.push(`allowed IPs ${next.allowedIps.map(formatCidr).join(", ")}`);
    }
    if (old.persistentKeepalive !== next.persistentKeepalive) {
      change.persistentKeepalive = next.persistentKeepalive;
      what.push(`keepalive ${next.persistentKeepalive}`);
    }
    if (old.name !== next.name) what.push(`name ${next.name}`);
    if (what.length === 0) continue;
    peers.push(change);
    lines.push(`mesh: ${next.name} (${key.slice(0, 8)}…) changed: ${what.join("; ")}`);
  }
  return { change: { replacePeers: false, peers }, lines };
}
