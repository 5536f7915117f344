// A config file as a DeviceChange: at start-up the whole file, on reload only what differs from
// the config that was running. Both go through Operations.apply, so a reload keeps the sessions
// of peers it does not change, as `wg syncconf` does.
import type { Endpoint } from "../net/endpoint.ts";
import type { Cidr } from "../net/ip.ts";
import { encodeKey } from "../crypto/keys.ts";
import type { Config, PeerConfig } from "../config/model.ts";
import type { DeviceChange, PeerChange } from "./model.ts";

/** A config endpoint ("host:port" as written) turned into an address; null if it cannot be resolved. */
export type EndpointResolver = (endpoint: { host: string; port: number }) => Endpoint | null;

/** The whole config as one change: exactly its peers, each with every setting. */
export function changeFromConfig(config: Config, resolve: EndpointResolver): DeviceChange {
  return {
    privateKey: config.mode === "wireguard" ? config.interface.privateKey : undefined,
    // No listenPort: the device bound the config's port when it opened (0 = the kernel's pick,
    // which a listen_port of 0 here would replace with another pick).
    fwmark: config.interface.fwmark,
    replacePeers: true,
    peers: config.peers.map((peer) => peerChange(peer, resolve, true)),
  };
}

/**
 * What turns the running config `old` into `next`: changed interface settings, and every peer of
 * `next` with its settings replaced (replace_peers), so removed peers go and the others keep their
 * sessions. An endpoint is only set when the file's endpoint changed: a peer that roamed keeps
 * the address it roamed to.
 */
export function reloadChange(old: Config, next: Config, resolve: EndpointResolver): DeviceChange {
  const before = new Map(old.peers.map((p) => [peerKey(p), p]));
  const change: DeviceChange = { replacePeers: true, peers: [] };
  if (next.mode === "wireguard" && !sameBytes(old.interface.privateKey, next.interface.privateKey)) {
    change.privateKey = next.interface.privateKey;
  }
  if (next.interface.listenPort !== old.interface.listenPort) change.listenPort = next.interface.listenPort;
  if (next.interface.fwmark !== old.interface.fwmark) change.fwmark = next.interface.fwmark;
  for (const peer of next.peers) {
    const previous = before.get(peerKey(peer));
    const endpointChanged = !previous || !sameEndpointText(previous.endpoint, peer.endpoint);
    change.peers.push(peerChange(peer, resolve, endpointChanged));
  }
  return change;
}

function peerChange(peer: PeerConfig, resolve: EndpointResolver, withEndpoint: boolean): PeerChange {
  const change: PeerChange = {
    publicKey: peer.publicKey,
    name: peer.name,
    remove: false,
    updateOnly: false,
    presharedKey: peer.presharedKey,
    persistentKeepalive: peer.persistentKeepalive,
    replaceAllowedIps: true,
    allowedIps: peer.allowedIps.map((c: Cidr) => c),
  };
  if (withEndpoint && peer.endpoint) {
    const endpoint = resolve(peer.endpoint);
    if (endpoint) change.endpoint = endpoint;
  }
  return change;
}

function peerKey(peer: PeerConfig): string {
  return peer.publicKey ? encodeKey(peer.publicKey) : peer.name;
}

function sameEndpointText(a: PeerConfig["endpoint"], b: PeerConfig["endpoint"]): boolean {
  if (!a || !b) return a === b;
  return a.host === b.host && a.port === b.port;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (!a || !b) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
