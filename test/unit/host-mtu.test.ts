// The tunnel MTU `wontun up` derives when a WireGuard config sets none (src/host/mtu.ts): the
// arithmetic, which routes count, and that SaveConfig never writes the result.
import { describe, expect, test } from "bun:test";
import { parseConfigText } from "../../src/config/load.ts";
import { toIni, toToml } from "../../src/config/dump.ts";
import { formatIp } from "../../src/net/ip.ts";
import { deriveTunnelMtu, tunnelMtuFor, underlayMtu, type RouteLookup } from "../../src/host/mtu.ts";
import { newKeys } from "../helpers/wireguard.ts";

const own = newKeys();
const peerKeys = [newKeys(), newKeys(), newKeys()];

function wgConf(opts: { endpoints?: string[]; mtu?: number; v6?: boolean } = {}) {
  const endpoints = opts.endpoints ?? ["192.0.2.1:51820"];
  return parseConfigText([
    "[Interface]", `PrivateKey = ${own.privateKey}`, `Address = 10.68.0.2/24${opts.v6 ? ", fd68::2/64" : ""}`,
    ...(opts.mtu ? [`MTU = ${opts.mtu}`] : []),
    ...endpoints.flatMap((e, i) => ["", "[Peer]", `PublicKey = ${peerKeys[i].publicKey}`, `Endpoint = ${e}`, `AllowedIPs = 10.68.${i}.0/24`]),
    "",
  ].join("\n"), "wg0.conf", "ini", { wireguard: true });
}

/** Routes as a table: address -> [oif, route mtu]; interfaces: index -> [name, link MTU]. */
function lookup(routes: Record<string, [number, number?]>, links: Record<number, [string, number]>, defaultOif: number | null = null): RouteLookup & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    routeTo: (address) => {
      asked.push(formatIp(address));
      const r = routes[formatIp(address)];
      return r ? { oif: r[0], mtu: r[1] } : null;
    },
    linkMtu: (i) => links[i][1],
    defaultRouteInterface: () => defaultOif,
    interfaceName: (i) => links[i][0],
  };
}

describe("tunnelMtuFor", () => {
  test("wg-quick's underlay - 80, rounded down to whole 64-byte blocks", () => {
    expect(tunnelMtuFor(1500, false)).toBe(1408); // wg-quick 1420
    expect(tunnelMtuFor(1492, false)).toBe(1408); // PPPoE: wg-quick 1412
    expect(tunnelMtuFor(1460, false)).toBe(1344); // wg-quick 1380
    expect(tunnelMtuFor(1450, false)).toBe(1344); // VXLAN overlays: wg-quick 1370
    expect(tunnelMtuFor(1280, false)).toBe(1152); // wg-quick 1200
    expect(tunnelMtuFor(9000, false)).toBe(8896); // jumbo: wg-quick 8920
  });

  test("kept within the MTUs a config accepts, and at 1280 at least with IPv6 addresses", () => {
    expect(tunnelMtuFor(65536, false)).toBe(9000); // loopback
    expect(tunnelMtuFor(600, false)).toBe(576);
    expect(tunnelMtuFor(1280, true)).toBe(1280);
    expect(tunnelMtuFor(1500, true)).toBe(1408);
  });
});

describe("underlayMtu", () => {
  test("the route's own mtu before its interface's; the largest over the peers", () => {
    const conf = wgConf({ endpoints: ["192.0.2.1:51820", "[2001:db8::1]:51820", "198.51.100.1:51820"] });
    const l = lookup({ "192.0.2.1": [2], "2001:db8::1": [3, 1420], "198.51.100.1": [2, 1000] }, { 2: ["eth0", 1400], 3: ["eth1", 1500] });
    expect(underlayMtu(conf, l)).toEqual({ mtu: 1420, from: "the route to 2001:db8::1 via eth1 (its mtu)" });
    expect(l.asked).toEqual(["192.0.2.1", "2001:db8::1", "198.51.100.1"]);
  });

  test("names and endpoints without a route are skipped; then the default route's interface, then 1500", () => {
    const conf = wgConf({ endpoints: ["vpn.example.com:51820", "203.0.113.9:51820"] });
    const l = lookup({}, { 4: ["wlan0", 1472] }, 4);
    expect(underlayMtu(conf, l)).toEqual({ mtu: 1472, from: "the default route's interface wlan0" });
    expect(l.asked).toEqual(["203.0.113.9"]);
    expect(underlayMtu(conf, lookup({}, {})).mtu).toBe(1500);
    // A peer without an endpoint asks nothing.
    expect(underlayMtu(wgConf({ endpoints: [] }), lookup({}, {})).mtu).toBe(1500);
  });
});

describe("deriveTunnelMtu", () => {
  const l = () => lookup({ "192.0.2.1": [2] }, { 2: ["eth0", 1460] });

  test("a WireGuard config without MTU gets the routes' MTU", () => {
    const conf = wgConf();
    expect(conf.interface.mtuSet).toBe(false);
    expect(deriveTunnelMtu(conf, l())).toEqual({ mtu: 1460, from: "the route to 192.0.2.1 via eth0" });
    expect(conf.interface.mtu).toBe(1344);
    const v6 = wgConf({ v6: true });
    deriveTunnelMtu(v6, lookup({ "192.0.2.1": [2] }, { 2: ["eth0", 1280] }));
    expect(v6.interface.mtu).toBe(1280);
  });

  test("an MTU in the config (even the default) and the plaintext protocol are left alone", () => {
    for (const mtu of [1420, 1408]) {
      const conf = wgConf({ mtu });
      expect(conf.interface.mtuSet).toBe(true);
      expect(deriveTunnelMtu(conf, l())).toBeNull();
      expect(conf.interface.mtu).toBe(mtu);
    }
    const plain = parseConfigText("[Interface]\nName = a\nAddress = 10.0.0.1/24\n\n[Peer]\nName = b\nEndpoint = 192.0.2.1:19988\nAllowedIPs = 10.0.0.2/32\n", "p.conf", "ini");
    expect(deriveTunnelMtu(plain, l())).toBeNull();
    expect(plain.interface.mtu).toBe(1400);
  });

  test("SaveConfig and the converters write an MTU the config set, never a derived one", () => {
    const derived = wgConf();
    deriveTunnelMtu(derived, l());
    expect(toIni(derived)).not.toContain("MTU");
    expect(toToml(derived)).not.toContain("mtu");
    expect(toIni(wgConf({ mtu: 1420 }))).toContain("MTU = 1420");
    // Set to the default, it is still written: the config read back is the same.
    expect(toIni(wgConf({ mtu: 1408 }))).toContain("MTU = 1408");
  });
});
