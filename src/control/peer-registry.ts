// The one place that hands out peer ids and finds a peer by what names it on the outside: its
// public key (WireGuard) or its handshake name (wontun). Ids count up and are never reused while
// the process lives, so a stale id (a control request racing a removal, a log line) can never
// reach another peer. What the peer carries at run time (endpoint, AllowedIPs, sessions) lives in
// the device and the protocol, keyed by the same id.
import type { PeerId } from "../protocol/tunnel.ts";

/** The settings of a peer that only the control plane keeps. */
export interface PeerEntry {
  readonly id: PeerId;
  /** The outside name: base64 public key (WireGuard) or handshake name (wontun). */
  readonly key: string;
  readonly publicKey: Uint8Array | null;
  /** Handshake name (wontun) or optional label (WireGuard, "" if none). */
  name: string;
  presharedKey: Uint8Array | null;
  persistentKeepalive: number;
}

export class PeerRegistry {
  private nextId: PeerId = 1;
  private readonly byId = new Map<PeerId, PeerEntry>();
  private readonly byKey = new Map<string, PeerId>();

  get size(): number {
    return this.byId.size;
  }

  /** Registers a new peer under a fresh id; the key must not be registered. */
  add(key: string, publicKey: Uint8Array | null, name: string): PeerEntry {
    if (this.byKey.has(key)) throw new Error(`peer ${key} is registered already`);
    const entry: PeerEntry = { id: this.nextId++, key, publicKey, name, presharedKey: null, persistentKeepalive: 0 };
    this.byId.set(entry.id, entry);
    this.byKey.set(key, entry.id);
    return entry;
  }

  remove(id: PeerId): void {
    const entry = this.byId.get(id);
    if (!entry) return;
    this.byId.delete(id);
    this.byKey.delete(entry.key);
  }

  get(id: PeerId): PeerEntry | undefined {
    return this.byId.get(id);
  }

  byOutsideKey(key: string): PeerEntry | undefined {
    const id = this.byKey.get(key);
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** Every peer, in the order they were added. */
  entries(): IterableIterator<PeerEntry> {
    return this.byId.values();
  }
}
