// The tunnel's MTU when a WireGuard config sets none, found as wg-quick finds it: the largest MTU
// of the routes to the peers' endpoints (a route's own `mtu`, else its interface's), or of the
// default route's interface when no endpoint has a route, or 1500; less 80 bytes for WireGuard
// over IPv6 (40 IPv6 + 8 UDP + 16 header + 16 tag). wontun then rounds down to a multiple of 64
// (why: DEFAULT_MTU_WIREGUARD in config/model.ts), so a 1500-byte underlay still gives 1408.
import { MAX_MTU, MIN_MTU, MIN_MTU_IPV6 } from "../config/validate.ts";
import type { Config } from "../config/model.ts";
import { formatIp, parseIp } from "../net/ip.ts";
import { interfaceName, RtNetlink } from "../sys/netlink.ts";
import { RT_TABLE_MAIN } from "./routing-policy.ts";

/** What WireGuard adds to a packet over an IPv6 underlay, as wg-quick counts it. */
export const WIREGUARD_OVERHEAD = 80;
/** wg-quick's underlay MTU when no route tells one. */
const FALLBACK_UNDERLAY_MTU = 1500;
const CHACHA_BLOCK = 64;
const RTN_UNICAST = 1;

/** The underlay MTU the tunnel is sized for, and what it was read from (for the log). */
export interface UnderlayMtu {
  mtu: number;
  from: string;
}

/**
 * The tunnel MTU for an underlay of `underlay` bytes: wg-quick's (underlay - 80) rounded down to
 * whole ChaCha20 blocks, within the MTUs a config accepts; at least 1280 when the interface has
 * an IPv6 address (below that the kernel takes IPv6 off the interface, so the outer packets are
 * fragmented instead).
 */
export function tunnelMtuFor(underlay: number, hasIpv6: boolean): number {
  const rounded = Math.floor((underlay - WIREGUARD_OVERHEAD) / CHACHA_BLOCK) * CHACHA_BLOCK;
  const mtu = Math.min(MAX_MTU, Math.max(MIN_MTU, rounded));
  return hasIpv6 ? Math.max(MIN_MTU_IPV6, mtu) : mtu;
}

/** The routing lookups tunnelMtuFor needs: `ip route get`, `ip link show`, the default route's interface. */
export interface RouteLookup {
  routeTo(address: Uint8Array): { oif: number; mtu: number | undefined } | null;
  linkMtu(ifindex: number): number;
  defaultRouteInterface(): number | null;
  interfaceName(ifindex: number): string;
}

/**
 * The largest underlay MTU toward the peers' endpoints given as addresses (a name is resolved
 * only later, by the device; the default route stands in for it), else the default route's
 * interface's, else 1500.
 */
export function underlayMtu(config: Config, lookup: RouteLookup): UnderlayMtu {
  let best: UnderlayMtu | null = null;
  for (const peer of config.peers) {
    const address = peer.endpoint ? parseIp(peer.endpoint.host) : null;
    if (address === null) continue;
    const route = lookup.routeTo(address);
    if (route === null || route.oif === 0) continue;
    const mtu = route.mtu ?? lookup.linkMtu(route.oif);
    if (best === null || mtu > best.mtu) {
      best = { mtu, from: `the route to ${formatIp(address)} via ${lookup.interfaceName(route.oif)}${route.mtu ? " (its mtu)" : ""}` };
    }
  }
  if (best) return best;
  const oif = lookup.defaultRouteInterface();
  if (oif !== null) return { mtu: lookup.linkMtu(oif), from: `the default route's interface ${lookup.interfaceName(oif)}` };
  return { mtu: FALLBACK_UNDERLAY_MTU, from: "no route to a peer and no default route: 1500 assumed" };
}

/** RouteLookup over an rtnetlink socket, in the calling process's network namespace. */
export function kernelRouteLookup(nl: RtNetlink): RouteLookup {
  return {
    routeTo: (address) => nl.routeTo(address),
    linkMtu: (ifindex) => nl.linkMtu(ifindex),
    defaultRouteInterface: () => {
      for (const family of [4, 6] as const) {
        const route = nl.listRoutes(family).find((r) => r.dst.prefix === 0 && r.table === RT_TABLE_MAIN && r.type === RTN_UNICAST && r.oif !== 0);
        if (route) return route.oif;
      }
      return null;
    },
    interfaceName,
  };
}

/**
 * For `wontun up`: a WireGuard config without MTU gets the MTU of its routes (config.interface.mtu
 * is set); returns what it was derived from, or null when the config sets one or is not WireGuard.
 */
export function deriveTunnelMtu(config: Config, lookup?: RouteLookup): UnderlayMtu | null {
  if (config.mode !== "wireguard" || config.interface.mtuSet !== false) return null;
  let underlay: UnderlayMtu;
  if (lookup) underlay = underlayMtu(config, lookup);
  else {
    const nl = RtNetlink.open();
    try {
      underlay = underlayMtu(config, kernelRouteLookup(nl));
    } finally {
      nl.close();
    }
  }
  config.interface.mtu = tunnelMtuFor(underlay.mtu, config.interface.addresses.some((a) => a.address.length === 16));
  return underlay;
}
