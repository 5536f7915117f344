// The control plane's vocabulary: what a `set` asks to change (DeviceChange) and what a `get`
// reports (DeviceStatus). The UAPI text codec, the control socket, config reload and `wontun show`
// all speak these types; the operations API (device/operations.ts) applies and produces them.
import type { Cidr } from "../net/ip.ts";
import type { Endpoint } from "../net/endpoint.ts";
import type { ConfigMode } from "../config/model.ts";
import type { PeerId } from "../protocol/tunnel.ts";

export type { PeerId } from "../protocol/tunnel.ts";

/** One peer's part of a change. A WireGuard peer is named by publicKey, a wontun peer by name. */
export interface PeerChange {
  /** WireGuard mode: the peer's public key (32 bytes). null in wontun mode. */
  publicKey: Uint8Array | null;
  /** wontun mode: the peer's handshake name. "" in WireGuard mode unless a label is set. */
  name: string;
  /** remove=true: the peer goes (with its sessions and AllowedIPs). */
  remove: boolean;
  /** update_only=true: change the peer only if it exists; never create it. */
  updateOnly: boolean;
  /** undefined = unchanged; null = none (all-zero key on the wire). */
  presharedKey?: Uint8Array | null;
  /** undefined = unchanged. */
  endpoint?: Endpoint;
  /** Seconds, 0 = off; undefined = unchanged. */
  persistentKeepalive?: number;
  /** replace_allowed_ips=true: the peer's AllowedIPs become exactly `allowedIps`. */
  replaceAllowedIps: boolean;
  /** Prefixes to add (after the replace, if any), host bits cleared. */
  allowedIps: Cidr[];
  /** Prefixes to take away (`allowed_ip=-PREFIX`, as the current wireguard-go accepts). */
  removeAllowedIps?: Cidr[];
}

/** One `set` request: applied whole or not at all. */
export interface DeviceChange {
  /** undefined = unchanged; null = remove the key (all-zero on the wire). */
  privateKey?: Uint8Array | null;
  listenPort?: number;
  /** 0 = none. */
  fwmark?: number;
  /** replace_peers=true: every peer not named in `peers` is removed. */
  replacePeers: boolean;
  peers: PeerChange[];
}

/** Wall-clock time of a peer's last completed handshake; both 0 = never (as wg reports it). */
export interface HandshakeTime {
  sec: number;
  nsec: number;
}

export interface PeerStatus {
  id: PeerId;
  /** Name (wontun mode) or optional label (WireGuard mode, "" if none). */
  name: string;
  publicKey: Uint8Array | null;
  presharedKey: Uint8Array | null;
  endpoint: Endpoint | null;
  persistentKeepalive: number;
  allowedIps: Cidr[];
  lastHandshake: HandshakeTime;
  /** Datagram bytes received from / sent to this peer, handshakes included (`wg show transfer`). */
  rxBytes: number;
  txBytes: number;
  /** Session state in words: "up", "handshaking", "no session" (WireGuard), the session state name (wontun). */
  state: string;
}

/** A peer's status with nothing known yet: what a status parser fills in, and tests' base. */
export function blankPeerStatus(id: PeerId): PeerStatus {
  return {
    id,
    name: "",
    publicKey: null,
    presharedKey: null,
    endpoint: null,
    persistentKeepalive: 0,
    allowedIps: [],
    lastHandshake: { sec: 0, nsec: 0 },
    rxBytes: 0,
    txBytes: 0,
    state: "",
  };
}

export interface DeviceStatus {
  mode: ConfigMode;
  interfaceName: string;
  /** WireGuard mode; null when unset or in wontun mode. */
  privateKey: Uint8Array | null;
  publicKey: Uint8Array | null;
  /** wontun mode: this host's handshake name. */
  name: string;
  listenPort: number;
  fwmark: number;
  peers: PeerStatus[];
  /** Datagrams and packets dropped, by reason (protocol and device counters), for `wontun show`. */
  drops: Record<string, number>;
  /** [Mesh]: the store and its members (src/mesh/agent.ts); absent in a static config. */
  mesh?: MeshStatus;
  /** Datagram bytes each data-path thread moved (index = thread, 0 = main); absent with one thread. */
  threads?: number[];
}

/** What the mesh agent reports for `wontun show`. */
export interface MeshStatus {
  /** The etcd endpoints, comma-separated. */
  store: string;
  storeState: "connecting" | "connected" | "unreachable";
  /** The latest store error while not connected, else "". */
  storeError: string;
  /** The store revision last seen. */
  revision: number;
  /** This node's mesh address, "" before it has one. */
  address: string;
  /** This node's record is in the store (under a live lease). */
  published: boolean;
  members: MeshMemberStatus[];
}

export interface MeshMemberStatus {
  name: string;
  /** base64 public key, or the etcd key of an ignored record. */
  key: string;
  address: string;
  endpoint: string;
  /** "peer", "not peered (…)", "ignored: why". */
  state: string;
}

/** Why a `set` failed, with the errno the UAPI answers (wireguard-go's choices). */
export class ControlError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = "ControlError";
  }
}

/** errno values the UAPI answers with (Linux numbering, as wireguard-go uses). */
export const UAPI_EPERM = 1;
export const UAPI_EIO = 5;
export const UAPI_EBADMSG = 74;
export const UAPI_EINVAL = 22;
export const UAPI_EPROTO = 71;
export const UAPI_EADDRINUSE = 98;
export const UAPI_ENOMEM = 12;
