// What a Device tells the copies of itself on other data-path threads (src/threads): every change
// to its peers, endpoints and sockets, so that each thread routes and sends exactly as it does.
import type { Endpoint } from "../net/endpoint.ts";
import type { Cidr } from "../net/ip.ts";
import type { PeerId } from "../protocol/tunnel.ts";

export interface DeviceMirror {
  peerAdded(id: PeerId, label: string): void;
  peerRemoved(id: PeerId): void;
  allowedIpsSet(id: PeerId, cidrs: Cidr[]): void;
  endpointSet(id: PeerId, endpoint: Endpoint): void;
  listenPortChanged(port: number): void;
  markChanged(mark: number): void;
  /** Datagram bytes the other threads moved for the peer. */
  transferOf(id: PeerId): { rxBytes: number; txBytes: number };
}
