// The kernel's Tun and Bind, chosen together from the offload switches: TSO on the TUN sizes the
// Bind's outgoing batch; UDP GRO needs the protocol's header to leave room for a vnet header.
import type { Logger } from "../log.ts";
import type { UdpSocket } from "../sys/udp.ts";
import { VNET_HDR_LEN } from "../net/offload/virtio-net-hdr.ts";
import { UdpBind } from "./bind-udp.ts";
import { formatOffloads, type Offloads } from "./offloads.ts";
import { KernelTun } from "./tun-kernel.ts";

/** Datagrams per sendmmsg without TSO. */
const TX_BATCH = 32;
/** Datagrams per sendmmsg with TSO: one super-packet of up to 64 KiB is cut into as many as
 *  ceil(65535 / MSS) packets (48 at MTU 1420, 128 down to an MSS of 512). */
const TSO_TX_BATCH = 128;

export interface KernelIoOptions {
  interfaceName: string;
  offloads: Offloads;
  mtu: number;
  /** The protocol's header length (TunnelProtocol.headroom). */
  protocolHeadroom: number;
  /** The protocol authenticates every packet (WireGuard; not the plaintext protocol). */
  authenticated: boolean;
  log: Logger;
  /**
   * One of several data-path threads (src/threads): the TUN is multi-queue and peers get no
   * connected sockets. `queue` and `socket` are the ones another thread opened for this one.
   */
  threaded?: { queue?: { fd: number; name: string }; socket?: UdpSocket };
}

/**
 * The Tun and the Bind for `offloads`, not open yet (Device.start opens them), and the offloads
 * in use in words, for the start-up line.
 */
export function kernelIo(options: KernelIoOptions): { tun: KernelTun; bind: UdpBind; offloads: string; effective: Offloads } {
  const { offloads: wanted, log } = options;
  // Splitting a GRO buffer leaves each packet only its protocol header as headroom.
  const groFits = options.protocolHeadroom >= VNET_HDR_LEN;
  const offloads: Offloads = { ...wanted, "udp-gro": wanted["udp-gro"] && groFits };
  const note = wanted["udp-gro"] && !groFits ? " (udp-gro needs WireGuard mode)" : "";
  const threaded = options.threaded;
  const tun = new KernelTun(options.interfaceName, {
    tso: offloads.tso,
    gro: offloads.gro,
    uso: offloads.uso,
    log,
    authenticated: options.authenticated,
    multiQueue: threaded !== undefined,
    queue: threaded?.queue,
  });
  const bind = new UdpBind({
    log,
    mtu: options.mtu,
    // A UDP super-packet read from the TUN holds up to 128 datagrams (UDP_MAX_SEGMENTS).
    txCapacity: offloads.tso || offloads.uso ? TSO_TX_BATCH : TX_BATCH,
    gso: offloads["udp-gso"],
    gro: offloads["udp-gro"],
    connectPeers: threaded === undefined,
    socket: threaded?.socket,
  });
  return { tun, bind, offloads: `${formatOffloads(offloads)}${note}`, effective: offloads };
}
