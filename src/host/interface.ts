// What `wontun up` does to the host around a running tunnel: the interface's MTU, addresses,
// link state and routes. The device only runs the tunnel (as wireguard-go does); whoever starts
// it decides how the host is set up: `wontun up` here, wg-quick in the wireguard-go-compatible
// invocation.
import { configureInterface, routesFor } from "../sys/netlink.ts";
import type { Cidr } from "../net/ip.ts";
import type { Config } from "../config/model.ts";

export interface InterfacePlan {
  mtu: number;
  addresses: Cidr[];
  routes: Cidr[];
}

/** What the config asks of the interface: its addresses, MTU and one route per uncovered AllowedIPs prefix. */
export function planInterface(config: Config): InterfacePlan {
  const iface = config.interface;
  const allowed = config.peers.flatMap((p) => p.allowedIps);
  return { mtu: iface.mtu, addresses: iface.addresses, routes: routesFor(iface.addresses, allowed) };
}

/** Applies the plan to interface `name` (closing the TUN removes all of it again). */
export function applyInterface(name: string, plan: InterfacePlan): void {
  configureInterface(name, plan);
}
