// The operations API: the one way a running tunnel changes. Start-up config, the control socket
// (`wg set`, `wg setconf`, …) and reload all describe what they want as a DeviceChange and hand it
// to apply(); status() answers `get`. A change is checked whole before anything is touched, so a
// bad request leaves the device exactly as it was; a change to one peer never touches another
// peer's session.
import type { Cidr } from "../net/ip.ts";
import { formatCidr } from "../net/ip.ts";
import { endpointEquals, type Endpoint } from "../net/endpoint.ts";
import { encodeKey } from "../crypto/keys.ts";
import { publicKeyOf } from "../crypto/keys.ts";
import { constantTimeEqual } from "../crypto/primitives.ts";
import type { ConfigMode } from "../config/model.ts";
import { MAX_PEER_NAME_BYTES } from "../config/model.ts";
import type { ControlSink, PeerId, TunnelProtocol } from "../protocol/tunnel.ts";
import { WireGuardProtocol } from "../protocol/wireguard/protocol.ts";
import { WontunProtocol } from "../protocol/wontun/protocol.ts";
import {
  ControlError,
  UAPI_EADDRINUSE,
  UAPI_EINVAL,
  type DeviceChange,
  type DeviceStatus,
  type PeerChange,
  type PeerStatus,
} from "./model.ts";
import { PeerRegistry, type PeerEntry } from "./peer-registry.ts";

/** What the operations need from the device (src/device/device.ts): the IO side of a peer. */
export interface TunnelDevice extends ControlSink {
  readonly listenPort: number;
  addPeer(id: PeerId, label: string): void;
  removePeer(id: PeerId): void;
  setAllowedIps(id: PeerId, cidrs: Cidr[]): void;
  allowedIpsOf(id: PeerId): Cidr[];
  setPeerEndpoint(id: PeerId, endpoint: Endpoint, now: number): void;
  peerEndpoint(id: PeerId): Endpoint | null;
  peerTransfer(id: PeerId): { rxBytes: number; txBytes: number };
  /** Rebinds (the old socket stays if the new port cannot be had; then it throws). */
  setListenPort(port: number): number;
  setFwmark(mark: number): void;
  readonly counters: object;
}

export interface OperationsOptions {
  device: TunnelDevice;
  protocol: WireGuardProtocol | WontunProtocol;
  mode: ConfigMode;
  interfaceName: string;
  /** wontun mode: our handshake name. */
  name?: string;
  /** Monotonic ms (the device's clock). */
  now: () => number;
  /** Told about each peer that comes or goes (logs). */
  onPeer?: (event: "added" | "removed", label: string) => void;
}

/** A change that passed the checks, with each peer resolved to what will happen to it. */
interface PlannedPeer {
  change: PeerChange;
  entry: PeerEntry | undefined;
}

export class Operations {
  readonly registry = new PeerRegistry();
  private readonly device: TunnelDevice;
  private readonly protocol: WireGuardProtocol | WontunProtocol;
  private readonly mode: ConfigMode;
  private fwmark = 0;
  private localName: string;

  constructor(private readonly options: OperationsOptions) {
    this.device = options.device;
    this.protocol = options.protocol;
    this.mode = options.mode;
    this.localName = options.name ?? "";
  }

  get peerCount(): number {
    return this.registry.size;
  }

  /** Applies `change` whole, or throws a ControlError and changes nothing. */
  apply(change: DeviceChange): void {
    const planned = this.plan(change);
    const now = this.options.now();
    // The only step that can fail in the kernel comes first: nothing else has changed yet.
    if (change.listenPort !== undefined && change.listenPort !== this.device.listenPort) {
      try {
        this.device.setListenPort(change.listenPort);
      } catch (err) {
        throw new ControlError(UAPI_EADDRINUSE, `listen port ${change.listenPort}: ${(err as Error).message}`);
      }
    }
    if (change.fwmark !== undefined && change.fwmark !== this.fwmark) {
      this.device.setFwmark(change.fwmark);
      this.fwmark = change.fwmark;
    }
    if (change.privateKey !== undefined && this.protocol instanceof WireGuardProtocol) {
      for (const clash of this.protocol.setPrivateKey(change.privateKey)) this.removePeer(clash);
    }
    if (change.replacePeers) {
      const named = new Set(planned.map((p) => p.entry?.id));
      for (const entry of [...this.registry.entries()]) if (!named.has(entry.id)) this.removePeer(entry.id);
    }
    for (const p of planned) this.applyPeer(p, change.replacePeers, now);
  }

  /** Checks the whole change and finds the peers it names; throws ControlError, touches nothing. */
  private plan(change: DeviceChange): PlannedPeer[] {
    if (change.listenPort !== undefined && !(Number.isInteger(change.listenPort) && change.listenPort >= 0 && change.listenPort <= 65535)) {
      throw new ControlError(UAPI_EINVAL, `listen port ${change.listenPort} is out of range`);
    }
    if (change.fwmark !== undefined && !(Number.isInteger(change.fwmark) && change.fwmark >= 0 && change.fwmark <= 0xffffffff)) {
      throw new ControlError(UAPI_EINVAL, `fwmark ${change.fwmark} is out of range`);
    }
    if (change.privateKey && change.privateKey.length !== 32) throw new ControlError(UAPI_EINVAL, "private key must be 32 bytes");
    if (this.mode === "wontun" && change.privateKey) throw new ControlError(UAPI_EINVAL, "a wontun-mode tunnel has no private key");
    const ourKey = this.ownPublicKeyAfter(change);
    const planned: PlannedPeer[] = [];
    for (const peer of mergeRepeatedPeers(change.peers, (p) => this.outsideKey(p))) {
      const key = this.outsideKey(peer);
      if (peer.presharedKey && peer.presharedKey.length !== 32) throw new ControlError(UAPI_EINVAL, "preshared key must be 32 bytes");
      if (peer.persistentKeepalive !== undefined && !(Number.isInteger(peer.persistentKeepalive) && peer.persistentKeepalive >= 0 && peer.persistentKeepalive <= 65535)) {
        throw new ControlError(UAPI_EINVAL, `persistent keepalive ${peer.persistentKeepalive} is out of range (0-65535)`);
      }
      const entry = this.registry.byOutsideKey(key);
      // wireguard-go ignores a peer that is ourselves, and update_only never creates.
      if (ourKey && peer.publicKey && constantTimeEqual(ourKey, peer.publicKey)) continue;
      if (!entry && (peer.updateOnly || peer.remove)) continue;
      planned.push({ change: peer, entry });
    }
    return planned;
  }

  private applyPeer({ change, entry }: PlannedPeer, replacing: boolean, now: number): void {
    if (change.remove) {
      if (entry) this.removePeer(entry.id);
      return;
    }
    const created = entry === undefined;
    const peer = entry ?? this.addPeer(change);
    // With replace_peers a named peer's settings are replaced, not merged; its session goes on.
    const psk = change.presharedKey !== undefined ? change.presharedKey : replacing ? null : undefined;
    const keepalive = change.persistentKeepalive !== undefined ? change.persistentKeepalive : replacing ? 0 : undefined;
    if (psk !== undefined && !sameKey(psk, peer.presharedKey)) {
      peer.presharedKey = psk;
      if (this.protocol instanceof WireGuardProtocol) this.protocol.updatePeer(peer.id, { presharedKey: psk }, now, this.device);
    }
    if (keepalive !== undefined && (created || keepalive !== peer.persistentKeepalive)) {
      peer.persistentKeepalive = keepalive;
      if (this.protocol instanceof WireGuardProtocol) {
        this.protocol.updatePeer(peer.id, { persistentKeepaliveSeconds: keepalive }, now, this.device);
      } else {
        this.protocol.updatePeer(peer.id, keepalive);
      }
    }
    const removing = change.removeAllowedIps ?? [];
    if (change.replaceAllowedIps || replacing || change.allowedIps.length > 0 || removing.length > 0) {
      const base = change.replaceAllowedIps || replacing ? [] : this.device.allowedIpsOf(peer.id);
      const gone = new Set(removing.map(formatCidr));
      const next = uniqueCidrs([...base, ...change.allowedIps]).filter((c) => !gone.has(formatCidr(c)));
      if (!sameCidrs(next, this.device.allowedIpsOf(peer.id))) this.device.setAllowedIps(peer.id, next);
    }
    if (change.endpoint && !endpointEquals(change.endpoint, this.device.peerEndpoint(peer.id))) {
      this.device.setPeerEndpoint(peer.id, change.endpoint, now);
    }
  }

  private addPeer(change: PeerChange): PeerEntry {
    const entry = this.registry.add(this.outsideKey(change), change.publicKey, change.name);
    const protocol = this.protocol;
    if (protocol instanceof WireGuardProtocol) {
      protocol.addPeer({ id: entry.id, publicKey: change.publicKey!, presharedKey: null, persistentKeepaliveSeconds: 0 });
    } else {
      protocol.addPeer({ id: entry.id, name: change.name, persistentKeepaliveSeconds: 0 });
    }
    this.device.addPeer(entry.id, this.labelOf(change));
    this.options.onPeer?.("added", this.labelOf(change));
    return entry;
  }

  private removePeer(id: PeerId): void {
    const entry = this.registry.get(id);
    if (!entry) return;
    this.device.removePeer(id);
    (this.protocol as TunnelProtocol).removePeer(id);
    this.registry.remove(id);
    this.options.onPeer?.("removed", this.labelOf(entry));
  }

  /** wontun mode: the name we send in HandshakeInit. */
  setLocalName(name: string): void {
    if (this.protocol instanceof WontunProtocol) this.protocol.setLocalName(name);
    this.localName = name;
  }

  /** Everything `get` reports, read fresh from the registry, the protocol and the device. */
  status(): DeviceStatus {
    const protocol = this.protocol;
    const peers: PeerStatus[] = [];
    for (const entry of this.registry.entries()) {
      const session = protocol.peerStatus(entry.id);
      const transfer = this.device.peerTransfer(entry.id);
      const ms = session.lastHandshakeWallMs;
      peers.push({
        id: entry.id,
        name: entry.name,
        publicKey: entry.publicKey,
        presharedKey: entry.presharedKey,
        endpoint: this.device.peerEndpoint(entry.id),
        persistentKeepalive: entry.persistentKeepalive,
        allowedIps: this.device.allowedIpsOf(entry.id),
        lastHandshake: { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 },
        rxBytes: transfer.rxBytes,
        txBytes: transfer.txBytes,
        state: session.state,
      });
    }
    const drops: Record<string, number> = {};
    for (const [reason, count] of Object.entries({ ...protocol.drops(), ...(this.device.counters as Record<string, number>) })) {
      if (typeof count === "number") drops[reason] = count;
    }
    const wg = protocol instanceof WireGuardProtocol ? protocol : null;
    return {
      mode: this.mode,
      interfaceName: this.options.interfaceName,
      privateKey: wg?.privateKey ?? null,
      publicKey: wg?.publicKey ?? null,
      name: this.localName,
      listenPort: this.device.listenPort,
      fwmark: this.fwmark,
      peers,
      drops,
    };
  }

  /** The key a peer is known by outside: base64 public key (WireGuard) or name (wontun). */
  private outsideKey(peer: PeerChange): string {
    if (this.mode === "wireguard") {
      if (!peer.publicKey || peer.publicKey.length !== 32) throw new ControlError(UAPI_EINVAL, "a WireGuard peer needs a 32-byte public key");
      return encodeKey(peer.publicKey);
    }
    const bytes = Buffer.byteLength(peer.name);
    if (bytes === 0 || bytes > MAX_PEER_NAME_BYTES) throw new ControlError(UAPI_EINVAL, `peer name must be 1-${MAX_PEER_NAME_BYTES} bytes`);
    return peer.name;
  }

  private labelOf(peer: { name: string; publicKey: Uint8Array | null }): string {
    if (peer.name) return peer.name;
    return peer.publicKey ? `${encodeKey(peer.publicKey).slice(0, 8)}…` : "(unnamed)";
  }

  private ownPublicKeyAfter(change: DeviceChange): Uint8Array | null {
    if (!(this.protocol instanceof WireGuardProtocol)) return null;
    if (change.privateKey === undefined) return this.protocol.publicKey;
    return change.privateKey ? publicKeyOf(change.privateKey) : null;
  }
}

/**
 * A request may name a peer twice (`wg set wg0 peer K … peer K …`); wireguard-go applies the
 * sections in turn. Folding them into one keeps plan() to one decision per peer: later values
 * win, prefixes add up, and a later replace_allowed_ips or remove drops what came before.
 */
function mergeRepeatedPeers(peers: PeerChange[], keyOf: (p: PeerChange) => string): PeerChange[] {
  const byKey = new Map<string, PeerChange>();
  for (const peer of peers) {
    const key = keyOf(peer);
    const earlier = byKey.get(key);
    if (!earlier || peer.remove || earlier.remove) {
      byKey.delete(key);
      byKey.set(key, { ...peer, allowedIps: [...peer.allowedIps] });
      continue;
    }
    earlier.updateOnly = earlier.updateOnly && peer.updateOnly;
    if (peer.presharedKey !== undefined) earlier.presharedKey = peer.presharedKey;
    if (peer.endpoint !== undefined) earlier.endpoint = peer.endpoint;
    if (peer.persistentKeepalive !== undefined) earlier.persistentKeepalive = peer.persistentKeepalive;
    if (peer.replaceAllowedIps) {
      earlier.replaceAllowedIps = true;
      earlier.allowedIps = [...peer.allowedIps];
      earlier.removeAllowedIps = peer.removeAllowedIps ? [...peer.removeAllowedIps] : undefined;
    } else {
      const gone = new Set((peer.removeAllowedIps ?? []).map(formatCidr));
      const added = new Set(peer.allowedIps.map(formatCidr));
      earlier.allowedIps = [...earlier.allowedIps.filter((c) => !gone.has(formatCidr(c))), ...peer.allowedIps];
      earlier.removeAllowedIps = [...(earlier.removeAllowedIps ?? []).filter((c) => !added.has(formatCidr(c))), ...(peer.removeAllowedIps ?? [])];
    }
  }
  return [...byKey.values()];
}

function sameKey(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (!a || !b) return a === b;
  return constantTimeEqual(a, b);
}

function uniqueCidrs(list: Cidr[]): Cidr[] {
  const seen = new Set<string>();
  return list.filter((c) => {
    const key = formatCidr(c);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function sameCidrs(a: Cidr[], b: Cidr[]): boolean {
  if (a.length !== b.length) return false;
  const keys = new Set(a.map(formatCidr));
  return b.every((c) => keys.has(formatCidr(c)));
}
