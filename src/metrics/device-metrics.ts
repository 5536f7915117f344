// A running tunnel as Prometheus metrics: the DeviceStatus that `wontun show --json` prints (the
// same Operations.status() call, so both report the same numbers) plus the protocol's handshake
// message count. Names follow the WireGuard exporters where they have one (`wireguard_*`); the
// rest are wontun's own (`wontun_*`).
//
// Every per-peer series has the labels interface, public_key, allowed_ips and name. In WireGuard
// mode public_key (base64) names the peer and name is its optional label ("" if none); in wontun
// (plaintext) mode there are no keys: public_key is "" and name, which is unique there, names the
// peer. Keeping the same label set in both modes lets one dashboard serve both.
import { encodeKey } from "../crypto/keys.ts";
import { formatCidr } from "../net/ip.ts";
import type { DeviceStatus, PeerStatus } from "../control/model.ts";
import type { MetricsWriter } from "./text-format.ts";

export interface DeviceMetricsInput {
  status: DeviceStatus;
  /** The protocol's handshakeMessages: handshake datagrams received, and WireGuard initiations sent. */
  handshakeMessages: number;
  /** wontun's version, for wontun_info. */
  version: string;
}

/** States in which a peer has a working session: WireGuard's "up", the wontun protocol's "connected". */
const UP_STATES = new Set(["up", "connected"]);

/**
 * Reasons as `wontun show --json` names them: the control socket's `drop_<reason>` keys, lowercase
 * letters, digits and "_" (so "noRoute" is "noroute"). Counters that meet under one name add up.
 */
function dropsByReason(drops: Record<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [reason, count] of Object.entries(drops)) {
    const key = reason.toLowerCase().replace(/[^a-z0-9_]/g, "_");
    out.set(key, (out.get(key) ?? 0) + count);
  }
  return out;
}

function peerLabels(iface: string, peer: PeerStatus): Record<string, string> {
  return {
    interface: iface,
    public_key: peer.publicKey ? encodeKey(peer.publicKey) : "",
    allowed_ips: peer.allowedIps.map(formatCidr).join(","),
    name: peer.name,
  };
}

/** Writes one tunnel's metrics. Several tunnels may write into one writer (labels tell them apart). */
export function writeDeviceMetrics(out: MetricsWriter, input: DeviceMetricsInput): void {
  const { status } = input;
  const iface = status.interfaceName;
  out.gauge("wontun_info", "wontun's version and each tunnel's mode (wireguard or wontun); always 1.")
    .sample({ interface: iface, mode: status.mode, version: input.version }, 1);
  out.gauge("wontun_peers", "Peers configured on the interface.").sample({ interface: iface }, status.peers.length);
  const received = out.counter("wireguard_received_bytes_total", "Bytes received from the peer: its datagrams, handshakes included (wg show transfer).");
  const sent = out.counter("wireguard_sent_bytes_total", "Bytes sent to the peer: datagrams, handshakes included (wg show transfer).");
  const handshake = out.gauge("wireguard_latest_handshake_seconds", "Unix time of the peer's latest completed handshake, in seconds; 0 = never.");
  const up = out.gauge("wontun_peer_up", "1 if the peer has a working session (WireGuard: state up; wontun: connected), else 0.");
  for (const peer of status.peers) {
    const labels = peerLabels(iface, peer);
    received.sample(labels, peer.rxBytes);
    sent.sample(labels, peer.txBytes);
    handshake.sample(labels, peer.lastHandshake.sec);
    up.sample(labels, UP_STATES.has(peer.state) ? 1 : 0);
  }
  const dropped = out.counter("wontun_dropped_total", "Datagrams and packets dropped, by reason (the drops of wontun show --json: protocol and device counters).");
  const drops = dropsByReason(status.drops);
  for (const reason of [...drops.keys()].sort()) dropped.sample({ interface: iface, reason }, drops.get(reason)!);
  if (status.threads) {
    const moved = out.counter("wontun_thread_bytes_total", "Datagram bytes each data-path thread moved (--threads; thread 0 is the main thread).");
    status.threads.forEach((bytes, thread) => moved.sample({ interface: iface, thread: String(thread) }, bytes));
  }
  out.counter("wontun_handshake_messages_total", "Handshake messages received (every datagram that is not data, valid or not) and, in WireGuard mode, initiations sent.")
    .sample({ interface: iface }, input.handshakeMessages);
}
