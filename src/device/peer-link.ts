// The device's side of a peer: its route out (owned by the Bind), its AllowedIPs and the packets
// held while its session is not up. Protocol state lives in the protocol; this is only what the
// IO loop needs. The AllowedIPs trie maps prefixes to PeerLink objects, so routing a packet
// looks up no id.
import type { Cidr } from "../net/ip.ts";
import type { PeerId } from "../protocol/tunnel.ts";
import type { PeerRoute } from "./bind.ts";
import type { HeldPackets } from "./held-packets.ts";

export class PeerLink {
  held: HeldPackets | null = null;
  /** The prefixes this peer holds in the trie, in the order they were given. */
  allowedIps: Cidr[] = [];

  constructor(
    readonly id: PeerId,
    readonly name: string,
    readonly route: PeerRoute,
  ) {}
}
