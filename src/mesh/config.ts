// The [Mesh] section of a WireGuard-mode config (TOML [mesh]): where the etcd store is, which
// network the mesh allocates addresses from, and what this node publishes about itself. The keys
// are read by src/config/validate.ts (MESH_KEYS, the same key table for ini and TOML).
import { type Cidr, formatIp } from "../net/ip.ts";

/** Lease seconds when TTL is absent: a dead node is gone from the others after this long. */
export const DEFAULT_MESH_TTL = 30;
/** etcd refuses shorter leases than about its election timeout; one hour is plenty for a long one. */
export const MIN_MESH_TTL = 2;
export const MAX_MESH_TTL = 3600;
/** PersistentKeepalive towards nodes with endpoints from a node without any (behind NAT). */
export const MESH_KEEPALIVE = 25;

export interface MeshConfig {
  /** etcd endpoints as written (http:// or https:// URLs with a port). */
  store: string[];
  /** TLS files (resolved against the config's directory); absent = system CAs / no client certificate. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** etcd authentication; absent = none. */
  username?: string;
  password?: string;
  /** The mesh's prefix (host bits cleared): addresses are allocated from it. */
  network: Cidr;
  /** How other nodes reach this one (IP literal host:port); empty = dial-out only, behind NAT. */
  endpoints: { host: string; port: number }[];
  /** This node's name in the store; "" = the [Interface] Name, else the host name. */
  name: string;
  /** The key space in etcd; default defaultMeshPrefix(network). */
  prefix: string;
  /** Extra prefixes this node routes for the mesh (others put them in its AllowedIPs). */
  subnets: Cidr[];
  /** Lease seconds. */
  ttl: number;
  /** The on-disk cache of the last peer set; absent = /var/lib/wontun/IFACE.mesh.json. */
  cacheFile?: string;
}

/** "/wontun/10.70.0.0-16": the key space of a network when Prefix is absent. */
export function defaultMeshPrefix(network: Cidr): string {
  return `/wontun/${formatIp(network.address)}-${network.prefix}`;
}

/** Where the last peer set is kept when Cache is absent. */
export const MESH_CACHE_DIR = "/var/lib/wontun";

export function meshCachePath(mesh: MeshConfig, interfaceName: string): string {
  return mesh.cacheFile ?? `${MESH_CACHE_DIR}/${interfaceName}.mesh.json`;
}
