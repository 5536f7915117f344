// Printing a Config: JSON in the original wontun-conf shape, and both file formats (each of which
// parses back to an equal Config, apart from warnings: wg-quick-only keys are not kept, as in
// `wg showconf`).
import { type Cidr, formatCidr, formatIp } from "../net/ip.ts";
import { encodeKey, publicKeyOf } from "../crypto/keys.ts";
import { type Config, DEFAULT_LISTEN_PORT_WIREGUARD, defaultMtu, type PeerConfig } from "./model.ts";
import { meshJson, meshLines } from "../mesh/config.ts";

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
 *
 * A WireGuard config has the same shape, a null name where none is set, and its keys in base64
 * after the original keys: the interface's "private_key" (in full, as `wg showconf` prints it) and
 * "public_key" (derived from it), each peer's "public_key" and, when set, "preshared_key".
 */
export function toJson(config: Config, pretty: boolean): string {
  const iface = config.interface;
  const wireguard = config.mode === "wireguard";
  const label = (name: string): Json => (wireguard && name === "" ? null : name);
  const ifaceJson: { [key: string]: Json } = {
    name: label(iface.name),
    address: iface.addresses.length === 1 ? pair(iface.addresses[0]) : iface.addresses.map(pair),
    listen_port: iface.listenPort,
  };
  if (iface.privateKey) {
    ifaceJson.private_key = encodeKey(iface.privateKey);
    ifaceJson.public_key = encodeKey(publicKeyOf(iface.privateKey));
  }
  if (writesMtu(config)) ifaceJson.mtu = iface.mtu;
  if (iface.fwmark !== 0) ifaceJson.fwmark = iface.fwmark;
  const peers = config.peers.map((peer: PeerConfig) => {
    const out: { [key: string]: Json } = {
      name: label(peer.name),
      endpoint: peer.endpoint ? formatHostPort(peer.endpoint) : null,
      allowed_ips: peer.allowedIps.map(pair),
    };
    if (peer.publicKey) out.public_key = encodeKey(peer.publicKey);
    if (peer.presharedKey) out.preshared_key = encodeKey(peer.presharedKey);
    if (peer.persistentKeepalive !== 0) out.persistent_keepalive = peer.persistentKeepalive;
    return out;
  });
  const doc: Json = { interface: ifaceJson, peers };
  if (config.mesh) (doc as { [key: string]: unknown }).mesh = meshJson(config.mesh);
  return pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * A TOML basic string. JSON's escapes are all valid TOML escapes, but TOML also forbids a raw DEL
 * (U+007F), which JSON leaves as it is (a hook command with one made SaveConfig write a .toml file
 * that did not load again).
 */
export function tomlString(s: string): string {
  return JSON.stringify(s).replaceAll("\x7f", "\\u007f");
}

/**
 * The config as a .toml file. Optional values are written only when they differ from the
 * defaults; a WireGuard config's keys are written in base64, the private key in full.
 */
export function toToml(config: Config): string {
  const iface = config.interface;
  const wireguard = config.mode === "wireguard";
  const out: string[] = ["[interface]"];
  if (!wireguard || iface.name !== "") out.push(`name = ${tomlString(iface.name)}`);
  if (iface.privateKey) out.push(`private_key = ${tomlString(encodeKey(iface.privateKey))}`);
  const addresses = iface.addresses.map((a) => tomlString(formatCidr(a)));
  if (addresses.length > 0) out.push(`address = ${addresses.length === 1 ? addresses[0] : `[${addresses.join(", ")}]`}`);
  if (!wireguard || iface.listenPort !== DEFAULT_LISTEN_PORT_WIREGUARD) out.push(`listen_port = ${iface.listenPort}`);
  if (writesMtu(config)) out.push(`mtu = ${iface.mtu}`);
  if (iface.fwmark !== 0) out.push(`fwmark = ${hex(iface.fwmark)}`);
  // [mesh] before the peers: a TOML table after [[peers]] would still read as one.
  if (config.mesh) out.push("", ...meshLines(config.mesh, "toml", tomlString));
  for (const peer of config.peers) {
    out.push("", "[[peers]]");
    if (!wireguard || peer.name !== "") out.push(`name = ${tomlString(peer.name)}`);
    if (peer.publicKey) out.push(`public_key = ${tomlString(encodeKey(peer.publicKey))}`);
    if (peer.presharedKey) out.push(`preshared_key = ${tomlString(encodeKey(peer.presharedKey))}`);
    if (peer.endpoint) out.push(`endpoint = ${tomlString(formatHostPort(peer.endpoint))}`);
    if (peer.allowedIps.length > 0) {
      out.push(`allowed_ips = [${peer.allowedIps.map((c) => tomlString(formatCidr(c))).join(", ")}]`);
    }
    if (peer.persistentKeepalive !== 0) out.push(`persistent_keepalive = ${peer.persistentKeepalive}`);
  }
  return `${out.join("\n")}\n`;
}

/**
 * The config as a wg-style .conf file. A WireGuard config is written as wg-quick reads it, keys
 * in base64 like `wg showconf` (the private key in full); Name lines appear only where a name is
 * set (Name is wontun's, wg-quick does not know it).
 */
export function toIni(config: Config): string {
  const iface = config.interface;
  const wireguard = config.mode === "wireguard";
  const out: string[] = ["[Interface]"];
  if (!wireguard || iface.name !== "") out.push(`Name = ${iface.name}`);
  if (iface.privateKey) out.push(`PrivateKey = ${encodeKey(iface.privateKey)}`);
  if (iface.addresses.length > 0) out.push(`Address = ${iface.addresses.map(formatCidr).join(", ")}`);
  if (!wireguard || iface.listenPort !== DEFAULT_LISTEN_PORT_WIREGUARD) out.push(`ListenPort = ${iface.listenPort}`);
  if (writesMtu(config)) out.push(`MTU = ${iface.mtu}`);
  if (iface.fwmark !== 0) out.push(`FwMark = ${hex(iface.fwmark)}`);
  for (const peer of config.peers) {
    out.push("", "[Peer]");
    if (!wireguard || peer.name !== "") out.push(`Name = ${peer.name}`);
    if (peer.publicKey) out.push(`PublicKey = ${encodeKey(peer.publicKey)}`);
    if (peer.presharedKey) out.push(`PresharedKey = ${encodeKey(peer.presharedKey)}`);
    if (peer.endpoint) out.push(`Endpoint = ${formatHostPort(peer.endpoint)}`);
    if (peer.allowedIps.length > 0) out.push(`AllowedIPs = ${peer.allowedIps.map(formatCidr).join(", ")}`);
    if (peer.persistentKeepalive !== 0) out.push(`PersistentKeepalive = ${peer.persistentKeepalive}`);
  }
  if (config.mesh) out.push("", ...meshLines(config.mesh, "ini", (s) => s));
  return `${out.join("\n")}\n`;
}

/**
 * MTU is written when the config file set it (so a re-read config is the same), never when
 * `wontun up` derived it from the routes; a config built in code writes one other than the default.
 */
function writesMtu(config: Config): boolean {
  const set = config.interface.mtuSet;
  return set ?? config.interface.mtu !== defaultMtu(config.mode);
}
