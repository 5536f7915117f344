// The parsed, validated configuration that the device runs. Both file formats (wg-style ini
// and TOML) produce exactly this; `wontun conf` prints it back out.
//
// Two modes, chosen by the config itself: a PrivateKey in [Interface] makes it a WireGuard config
// (peers are identified by PublicKey, names are optional labels); without one it is a wontun config
// (the unencrypted wontun protocol, peers identified by Name).
import type { Cidr } from "../net/ip.ts";
import { encodeKey } from "../crypto/keys.ts";
import { escapeControls, truncate } from "../text.ts";
import type { MeshConfig } from "../mesh/config.ts";

export type ConfigMode = "wontun" | "wireguard";

/** wontun mode's port when ListenPort is absent. */
export const DEFAULT_LISTEN_PORT = 19988;
/** WireGuard mode's port when ListenPort is absent: 0, the kernel picks a free port (as wg does). */
export const DEFAULT_LISTEN_PORT_WIREGUARD = 0;
/** Seed's scripts set MTU 1400 on the TUN interface in plaintext wontun mode. */
export const DEFAULT_MTU_WONTUN = 1400;
/**
 * wg-quick's MTU on a 1500-byte link: 1500 minus 80 bytes of IPv6 + UDP + WireGuard overhead. The
 * interface of `wontun IFACE` starts with it, as wireguard-go's does (wg-quick then sets its own).
 */
export const WG_QUICK_MTU = 1420;
/**
 * WireGuard mode's MTU when the config sets none, until `wontun up` sizes the tunnel from its
 * routes (src/host/mtu.ts, which gives this on a 1500-byte link): the largest multiple of 64
 * bytes below WG_QUICK_MTU. A full-sized packet is then whole ChaCha20 blocks: libgcrypt and
 * OpenSSL run a trailing partial block through a slow one-block path (bench/aead.ts: a libgcrypt
 * seal of 1420 bytes 0.98 µs, of 1408 bytes 0.87; an open 0.89 and 0.78), so 12 bytes less per
 * packet cost ~4 % less CPU per Gbit/s end to end, ~7 % less at the receiving end (README, "MTU").
 */
export const DEFAULT_MTU_WIREGUARD = 1408;
export const MAX_PEER_NAME_BYTES = 100;
/** Length of a WireGuard key (private, public, preshared). */
export const KEY_BYTES = 32;

export function defaultListenPort(mode: ConfigMode): number {
  return mode === "wireguard" ? DEFAULT_LISTEN_PORT_WIREGUARD : DEFAULT_LISTEN_PORT;
}

export function defaultMtu(mode: ConfigMode): number {
  return mode === "wireguard" ? DEFAULT_MTU_WIREGUARD : DEFAULT_MTU_WONTUN;
}

export interface InterfaceConfig {
  /**
   * This host's name, sent in HandshakeInit (wontun mode, required). In WireGuard mode an optional
   * label, "" when absent.
   */
  name: string;
  /** Interface addresses with their prefix, host bits kept (e.g. 10.10.0.3/24). */
  addresses: Cidr[];
  /** UDP port; 0 (WireGuard mode only) = the kernel picks a free port. */
  listenPort: number;
  mtu: number;
  /**
   * Whether the config file sets MTU. When it does not (false), `wontun up` sizes a WireGuard
   * tunnel from the routes to its peers as wg-quick does (src/host/mtu.ts), and SaveConfig does
   * not write the result. Absent in configs not read from a file.
   */
  mtuSet?: boolean;
  /** SO_MARK for the UDP sockets; 0 = none. */
  fwmark: number;
  /** Curve25519 private key as written (not clamped), 32 bytes; non-null exactly in WireGuard mode. */
  privateKey: Uint8Array | null;
  /** Where privateKey was read from (PrivateKeyFile, resolved against the config's directory); absent when inline. */
  privateKeyFile?: string;
  /** wg-quick's additions (DNS, Table, SaveConfig, hooks); absent when the config has none. */
  host?: HostSettings;
}

/** wg-quick's [Interface] additions, which `wontun up` acts on (src/host/setup.ts). */
export interface HostSettings {
  /** DNS = items that are IP addresses: the name servers. */
  dns: string[];
  /** DNS = items that are not IP addresses: search domains (as wg-quick splits them). */
  dnsSearch: string[];
  /** Table = as written ("off", "auto", a number or a name from rt_tables); null when absent. */
  table: string | null;
  saveConfig: boolean;
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
}

/** The host settings of `iface`, created empty on first use. */
export function hostSettingsOf(iface: InterfaceConfig): HostSettings {
  iface.host ??= { dns: [], dnsSearch: [], table: null, saveConfig: false, preUp: [], postUp: [], preDown: [], postDown: [] };
  return iface.host;
}

export interface PeerConfig {
  /** wontun mode: the peer's handshake name (required). WireGuard mode: optional label, "" when absent. */
  name: string;
  /** "host:port" as written (host may be an IP literal or a name); null when the peer dials us. */
  endpoint: { host: string; port: number } | null;
  /** Host bits cleared. */
  allowedIps: Cidr[];
  /** Seconds between keepalives; 0 = off. */
  persistentKeepalive: number;
  /** The peer's Curve25519 public key, 32 bytes; non-null exactly in WireGuard mode. */
  publicKey: Uint8Array | null;
  /** Optional 32-byte preshared key (WireGuard mode only). null means none, i.e. 32 zero bytes in Noise. */
  presharedKey: Uint8Array | null;
}

export interface Config {
  /** "wireguard" iff [Interface] has a PrivateKey (or PrivateKeyFile). */
  mode: ConfigMode;
  interface: InterfaceConfig;
  peers: PeerConfig[];
  /**
   * Accepted but ignored settings (wg-quick's DNS, Table, SaveConfig, Pre/PostUp/Down), one line
   * each: "FILE:LINE: KEY is accepted but not acted on yet (wg-quick feature)".
   */
  warnings: string[];
  /** [Mesh]: peers come from an etcd store (src/mesh); absent in a static config. */
  mesh?: MeshConfig;
}

/** A public key as a short label: its first 8 base64 characters and an ellipsis ("xTIBA5rb…"). */
export function shortKey(key: Uint8Array): string {
  return `${encodeKey(key).slice(0, 8)}…`;
}

/** How to call a peer in logs and messages: its Name if set, else its shortened public key. */
export function peerLabel(peer: Pick<PeerConfig, "name" | "publicKey">): string {
  if (peer.name !== "") return peer.name;
  if (peer.publicKey) return shortKey(peer.publicKey);
  return "(unnamed)";
}

/**
 * A config problem, located: "FILE:LINE: KEY: what is wrong", always one line of printable text:
 * control characters are escaped here and a key (which comes from the file) is cut short; values a
 * reason echoes are quoted and cut by its author (quote() in src/text.ts).
 */
export class ConfigError extends Error {
  readonly file: string;
  readonly key: string | null;
  readonly reason: string;

  constructor(file: string, readonly line: number | null, key: string | null, reason: string) {
    const safeFile = escapeControls(file);
    const safeKey = key === null ? null : escapeControls(truncate(key));
    const safeReason = escapeControls(reason);
    const where = line === null ? safeFile : `${safeFile}:${line}`;
    super(`${where}: ${safeKey ? `${safeKey}: ` : ""}${safeReason}`);
    this.file = safeFile;
    this.key = safeKey;
    this.reason = safeReason;
    this.name = "ConfigError";
  }
}

/**
 * The config of a tunnel started without a file (the wireguard-go-compatible invocation): WireGuard
 * mode with no key, no peers and no addresses yet; `wg setconf` and wg-quick provide them.
 */
export function emptyWireGuardConfig(): Config {
  return {
    mode: "wireguard",
    interface: {
      name: "",
      addresses: [],
      listenPort: DEFAULT_LISTEN_PORT_WIREGUARD,
      mtu: WG_QUICK_MTU,
      fwmark: 0,
      privateKey: null,
    },
    peers: [],
    warnings: [],
  };
}
