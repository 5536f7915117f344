// The parsed, validated configuration that the device runs. Both file formats (wg-style ini
// and TOML) produce exactly this; `wontun conf` prints it back out.
import type { Cidr } from "../net/ip.ts";

export const DEFAULT_LISTEN_PORT = 19988;
/** Seed's scripts set MTU 1400 on the TUN interface in plaintext wontun mode. */
export const DEFAULT_MTU_WONTUN = 1400;
export const MAX_PEER_NAME_BYTES = 100;

export interface InterfaceConfig {
  /** This host's name, sent in HandshakeInit. */
  name: string;
  /** Interface addresses with their prefix, host bits kept (e.g. 10.10.0.3/24). */
  addresses: Cidr[];
  listenPort: number;
  mtu: number;
  /** SO_MARK for the UDP sockets; 0 = none. */
  fwmark: number;
}

export interface PeerConfig {
  name: string;
  /** "host:port" as written (host may be an IP literal or a name); null when the peer dials us. */
  endpoint: { host: string; port: number } | null;
  /** Host bits cleared. */
  allowedIps: Cidr[];
  /** Seconds between keepalives; 0 = off. */
  persistentKeepalive: number;
}

export interface Config {
  interface: InterfaceConfig;
  peers: PeerConfig[];
}

/** A config problem, located: "FILE:LINE: KEY: what is wrong". */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly key: string | null,
    readonly reason: string,
  ) {
    const where = line === null ? file : `${file}:${line}`;
    super(`${where}: ${key ? `${key}: ` : ""}${reason}`);
    this.name = "ConfigError";
  }
}
