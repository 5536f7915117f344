// Printing a Config: JSON in the original wontun-conf shape, and both file formats (each of which
// parses back to an equal Config).
import { type Cidr, formatCidr, formatIp } from "../net/ip.ts";
import { type Config, DEFAULT_MTU_WONTUN, type PeerConfig } from "./model.ts";

type Json = string | number | null | Json[] | { [key: string]: Json };

function pair(cidr: Cidr): Json {
  return [formatIp(cidr.address), cidr.prefix];
}

/** "host:port", with IPv6 literals in brackets. */
export function formatHostPort(endpoint: { host: string; port: number }): string {
  return endpoint.host.includes(":") ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/**
 * The config as the original `wontun-conf` prints it:
 * {"interface":{"name","address":[ip,prefix],"listen_port"},"peers":[{"name","endpoint","allowed_ips"}]}.
 * Several interface addresses print as an array of pairs; mtu, fwmark and persistent_keepalive
 * are added after the original keys only when they differ from the defaults.
 */
export function toJson(config: Config, pretty: boolean): string {
  const iface = config.interface;
  const ifaceJson: { [key: string]: Json } = {
    name: iface.name,
    address: iface.addresses.length === 1 ? pair(iface.addresses[0]) : iface.addresses.map(pair),
    listen_port: iface.listenPort,
  };
  if (iface.mtu !== DEFAULT_MTU_WONTUN) ifaceJson.mtu = iface.mtu;
  if (iface.fwmark !== 0) ifaceJson.fwmark = iface.fwmark;
  const peers = config.peers.map((peer: PeerConfig) => {
    const out: { [key: string]: Json } = {
      name: peer.name,
      endpoint: peer.endpoint ? formatHostPort(peer.endpoint) : null,
      allowed_ips: peer.allowedIps.map(pair),
    };
    if (peer.persistentKeepalive !== 0) out.persistent_keepalive = peer.persistentKeepalive;
    return out;
  });
  const doc: Json = { interface: ifaceJson, peers };
  return pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A TOML basic string (JSON string escapes are all valid TOML escapes). */
function tomlString(s: string): string {
  return JSON.stringify(s);
}

/** The config as a .toml file. */
export function toToml(config: Config): string {
  const iface = config.interface;
  const out: string[] = ["[interface]", `name = ${tomlString(iface.name)}`];
  const addresses = iface.addresses.map((a) => tomlString(formatCidr(a)));
  out.push(`address = ${addresses.length === 1 ? addresses[0] : `[${addresses.join(", ")}]`}`);
  out.push(`listen_port = ${iface.listenPort}`);
  if (iface.mtu !== DEFAULT_MTU_WONTUN) out.push(`mtu = ${iface.mtu}`);
  if (iface.fwmark !== 0) out.push(`fwmark = ${hex(iface.fwmark)}`);
  for (const peer of config.peers) {
    out.push("", "[[peers]]", `name = ${tomlString(peer.name)}`);
    if (peer.endpoint) out.push(`endpoint = ${tomlString(formatHostPort(peer.endpoint))}`);
    if (peer.allowedIps.length > 0) {
      out.push(`allowed_ips = [${peer.allowedIps.map((c) => tomlString(formatCidr(c))).join(", ")}]`);
    }
    if (peer.persistentKeepalive !== 0) out.push(`persistent_keepalive = ${peer.persistentKeepalive}`);
  }
  return `${out.join("\n")}\n`;
}

/** The config as a wg-style .conf file. */
export function toIni(config: Config): string {
  const iface = config.interface;
  const out: string[] = [
    "[Interface]",
    `Name = ${iface.name}`,
    `Address = ${iface.addresses.map(formatCidr).join(", ")}`,
    `ListenPort = ${iface.listenPort}`,
  ];
  if (iface.mtu !== DEFAULT_MTU_WONTUN) out.push(`MTU = ${iface.mtu}`);
  if (iface.fwmark !== 0) out.push(`FwMark = ${hex(iface.fwmark)}`);
  for (const peer of config.peers) {
    out.push("", "[Peer]", `Name = ${peer.name}`);
    if (peer.endpoint) out.push(`Endpoint = ${formatHostPort(peer.endpoint)}`);
    if (peer.allowedIps.length > 0) out.push(`AllowedIPs = ${peer.allowedIps.map(formatCidr).join(", ")}`);
    if (peer.persistentKeepalive !== 0) out.push(`PersistentKeepalive = ${peer.persistentKeepalive}`);
  }
  return `${out.join("\n")}\n`;
}
