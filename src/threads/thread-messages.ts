// The messages between the main thread and a data-path thread (postMessage, structured clone).
// Rare events only: packets never cross this way except a peer's first ones before its session.
import type { Offloads } from "../device/offloads.ts";
import type { LogLevel } from "../log.ts";
import type { Endpoint } from "../net/endpoint.ts";
import type { Cidr } from "../net/ip.ts";
import type { PeerId } from "../protocol/tunnel.ts";
import type { UdpSocket } from "../sys/udp.ts";
import type { SharedSessionsLayout } from "./shared-sessions.ts";

/** Everything a data-path thread needs to start. */
export interface ThreadSetup {
  thread: number;
  threads: number;
  sessions: SharedSessionsLayout;
  interfaceName: string;
  tunFd: number;
  socket: UdpSocket;
  mark: number;
  offloads: Offloads;
  mtu: number;
  logLevel: LogLevel;
  /** This thread's eventfd: the main thread writes it after posting a message. */
  wakeFd: number;
  /** The main thread's eventfd: this thread writes it after asking for something. */
  mainWakeFd: number;
  /** performance.timeOrigin of the main thread: every thread keeps time on its clock. */
  timeOrigin: number;
  /** The peers so far, in order, with what they have. */
  peers: PeerState[];
}

export interface PeerState {
  id: PeerId;
  label: string;
  peerSlot: number;
  allowedIps: Cidr[];
  endpoint: Endpoint | null;
}

export type ToThread =
  | { kind: "start"; setup: ThreadSetup }
  | { kind: "peer-add"; id: PeerId; label: string; peerSlot: number }
  | { kind: "peer-remove"; id: PeerId }
  | { kind: "allowed-ips"; id: PeerId; cidrs: Cidr[] }
  | { kind: "endpoint"; id: PeerId; endpoint: Endpoint }
  | { kind: "socket"; socket: UdpSocket }
  | { kind: "stop" };

export type FromThread =
  | { kind: "ready"; thread: number }
  | { kind: "failed"; thread: number; message: string }
  | { kind: "held"; id: PeerId; packet: Uint8Array }
  | { kind: "handshake"; datagram: Uint8Array; source: Uint8Array }
  | { kind: "endpoint"; id: PeerId; endpoint: Endpoint }
  | { kind: "stopped"; thread: number };
