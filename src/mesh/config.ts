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
  /** The name the server's certificate must carry (for https endpoints written as IP addresses). */
  serverName?: string;
  /** etcd authentication; absent = none. */
  username?: string;
  password?: string;
  /** The mesh's prefix (host bits cleared): addresses are allocated from it. */
  network: Cidr;
  /** How other nodes reach this one (host:port, the host an IP literal or a name this node resolves
   *  and publishes as its address, see endpoints.ts); empty = dial-out only, behind NAT. */
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

/** [Mesh] as config lines (`wontun conf --to ini|toml`), only what differs from the defaults. */
export function meshLines(mesh: MeshConfig, format: "ini" | "toml", str: (s: string) => string): string[] {
  const ini = format === "ini";
  const out: string[] = [ini ? "[Mesh]" : "[mesh]"];
  const put = (iniKey: string, tomlKey: string, value: string | number) => {
    out.push(ini ? `${iniKey} = ${value}` : `${tomlKey} = ${typeof value === "number" ? value : str(value)}`);
  };
  const list = (iniKey: string, tomlKey: string, values: string[]) => {
    if (values.length === 0) return;
    out.push(ini ? `${iniKey} = ${values.join(", ")}` : `${tomlKey} = [${values.map(str).join(", ")}]`);
  };
  list("Store", "store", mesh.store);
  put("Network", "network", `${formatIp(mesh.network.address)}/${mesh.network.prefix}`);
  const endpoints = mesh.endpoints.map((e) => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`));
  if (ini) for (const e of endpoints) put("Endpoint", "endpoint", e);
  else list("Endpoint", "endpoint", endpoints);
  if (mesh.name !== "") put("Name", "name", mesh.name);
  if (mesh.prefix !== defaultMeshPrefix(mesh.network)) put("Prefix", "prefix", mesh.prefix);
  list("Subnets", "subnets", mesh.subnets.map((c) => `${formatIp(c.address)}/${c.prefix}`));
  if (mesh.ttl !== DEFAULT_MESH_TTL) put("TTL", "ttl", mesh.ttl);
  if (mesh.caFile) put("CAFile", "ca_file", mesh.caFile);
  if (mesh.certFile) put("CertFile", "cert_file", mesh.certFile);
  if (mesh.keyFile) put("KeyFile", "key_file", mesh.keyFile);
  if (mesh.serverName) put("ServerName", "server_name", mesh.serverName);
  if (mesh.username !== undefined) put("Username", "username", mesh.username);
  if (mesh.password !== undefined) put("Password", "password", mesh.password);
  if (mesh.cacheFile) put("Cache", "cache", mesh.cacheFile);
  return out;
}

/** [Mesh] for `wontun conf`'s JSON: the section's keys in snake_case, lists as arrays. */
export function meshJson(mesh: MeshConfig): Record<string, unknown> {
  return {
    store: mesh.store,
    network: `${formatIp(mesh.network.address)}/${mesh.network.prefix}`,
    endpoint: mesh.endpoints.map((e) => (e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`)),
    name: mesh.name === "" ? null : mesh.name,
    prefix: mesh.prefix,
    subnets: mesh.subnets.map((c) => `${formatIp(c.address)}/${c.prefix}`),
    ttl: mesh.ttl,
    ...(mesh.caFile ? { ca_file: mesh.caFile } : {}),
    ...(mesh.certFile ? { cert_file: mesh.certFile, key_file: mesh.keyFile } : {}),
    ...(mesh.serverName ? { server_name: mesh.serverName } : {}),
    ...(mesh.username !== undefined ? { username: mesh.username, password: mesh.password } : {}),
    ...(mesh.cacheFile ? { cache: mesh.cacheFile } : {}),
  };
}
