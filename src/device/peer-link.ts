// The device's side of a peer: where it is (endpoint, connected socket) and what went through.
// Protocol state lives in the protocol; this is only what the IO loop needs.
import type { Endpoint } from "../net/endpoint.ts";
import type { UdpSocket } from "../sys/udp.ts";
import { SOCKADDR_MAX } from "../sys/sockaddr.ts";
import type { HeldPackets } from "./held-packets.ts";

export class PeerLink {
  endpoint: Endpoint | null = null;
  /** The endpoint as a sockaddr for the listening socket's sendto/sendmmsg. */
  readonly sockaddr = new Uint8Array(new ArrayBuffer(SOCKADDR_MAX));
  sockaddrLength = 0;
  /** Socket on our port connected to the endpoint (the seed's per-peer socket), if open. */
  socket: UdpSocket | null = null;
  held: HeldPackets | null = null;
  /** When the connected socket was last re-created after a send error (ms, monotonic). */
  reconnectedAt = Number.NEGATIVE_INFINITY;

  rxBytes = 0;
  txBytes = 0;
  rxPackets = 0;
  txPackets = 0;

  constructor(
    readonly index: number,
    readonly name: string,
  ) {}
}
