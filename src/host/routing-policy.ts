// Which routes and rules `wontun up` adds, decided the way wg-quick decides them:
// - Table = off: no routes at all.
// - Table = N (or a name): every AllowedIPs prefix as a route in table N, nothing else.
// - Table = auto or absent: prefixes as routes in the main table, except default routes (/0):
//   those go into their own table T, with the rules `not fwmark T lookup T` and
//   `lookup main suppress_prefixlength 0`, and the tunnel's own UDP packets carry fwmark T, so
//   they take the main table's routes to the endpoint while everything else takes the tunnel.
//   T is FwMark when set, else the first table from 51820 on that has no routes.
import { formatCidr, maskAddress, type Cidr } from "../net/ip.ts";
import { routesFor, type RouteEntry, type RoutingRule } from "../sys/netlink.ts";
import type { Config } from "../config/model.ts";
import type { TableSetting } from "./rt-tables.ts";

export const RT_TABLE_MAIN = 254;
/** wg-quick's first choice of table and fwmark for a full tunnel. */
export const DEFAULT_FULL_TUNNEL_TABLE = 51820;

export interface PlannedRoute {
  cidr: Cidr;
  table: number;
}

export interface RoutingPlan {
  routes: PlannedRoute[];
  rules: RoutingRule[];
  /** The fwmark the tunnel's sockets need (set before the device starts), or null for no change. */
  fwmark: number | null;
  /** The families whose default route goes through the tunnel (policy routing, firewall). */
  fullTunnel: (4 | 6)[];
}

const familyOf = (c: Cidr): 4 | 6 => (c.address.length === 16 ? 6 : 4);

/** The first table from 51820 on without routes in either family (wg-quick's search). */
export function firstFreeTable(routes: RouteEntry[]): number {
  const used = new Set(routes.map((r) => r.table));
  let table = DEFAULT_FULL_TUNNEL_TABLE;
  while (used.has(table)) table++;
  return table;
}

/**
 * The routing plan for `config`. `existingRoutes` (all tables, both families) is only consulted
 * when a full tunnel needs a table and FwMark does not name one.
 */
export function planRouting(config: Config, table: TableSetting, existingRoutes: () => RouteEntry[]): RoutingPlan {
  const plan: RoutingPlan = { routes: [], rules: [], fwmark: null, fullTunnel: [] };
  if (table.kind === "off") return plan;
  const allowed = config.peers.flatMap((p) => p.allowedIps);
  // wg-quick adds routes longest prefix first (`sort -nr -k 2 -t /`).
  const byLength = (a: Cidr, b: Cidr) => b.prefix - a.prefix;
  if (table.kind === "table") {
    // An explicit table gets every prefix: the interface's own prefix route is in main, not there.
    const seen = new Set<string>();
    for (const c of [...allowed].sort(byLength)) {
      const cidr = { address: maskAddress(c.address, c.prefix), prefix: c.prefix };
      if (seen.has(formatCidr(cidr))) continue;
      seen.add(formatCidr(cidr));
      plan.routes.push({ cidr, table: table.id });
    }
    return plan;
  }
  const routes = routesFor(config.interface.addresses, allowed).sort(byLength);
  const defaults = routes.filter((r) => r.prefix === 0);
  let fullTable = 0;
  if (defaults.length > 0) {
    fullTable = config.interface.fwmark !== 0 ? config.interface.fwmark : firstFreeTable(existingRoutes());
    plan.fwmark = fullTable;
  }
  for (const cidr of routes) {
    if (cidr.prefix !== 0) {
      plan.routes.push({ cidr, table: RT_TABLE_MAIN });
      continue;
    }
    const family = familyOf(cidr);
    plan.routes.push({ cidr, table: fullTable });
    plan.rules.push({ family, table: fullTable, fwmark: fullTable, invert: true });
    plan.rules.push({ family, table: RT_TABLE_MAIN, suppressPrefixLength: 0 });
    plan.fullTunnel.push(family);
  }
  return plan;
}
