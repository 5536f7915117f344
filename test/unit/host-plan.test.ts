// The pure parts of src/host: routing plans as wg-quick makes them, Table names, the nft script,
// and the file SaveConfig writes.
import { describe, expect, test } from "bun:test";
import { parseConfigText } from "../../src/config/load.ts";
import { formatCidr } from "../../src/net/ip.ts";
import { planRouting } from "../../src/host/routing-policy.ts";
import { resolveTable } from "../../src/host/rt-tables.ts";
import { firewallScript } from "../../src/host/firewall.ts";
import { configFileText } from "../../src/host/save-config.ts";
import { newKeys } from "../helpers/wireguard.ts";
import type { RouteEntry } from "../../src/sys/netlink.ts";

const server = newKeys();
const client = newKeys();
const conf = (allowed: string, extra: string[] = []) => parseConfigText([
  "[Interface]", `PrivateKey = ${client.privateKey}`, "Address = 10.66.0.2/24, fd66::2/64", ...extra,
  "", "[Peer]", `PublicKey = ${server.publicKey}`, `AllowedIPs = ${allowed}`, "",
].join("\n"), "h4wg0.conf", "ini", { wireguard: true });
const none = (): RouteEntry[] => [];
const routes = (p: ReturnType<typeof planRouting>) => p.routes.map((r) => `${formatCidr(r.cidr)}@${r.table}`);

describe("planRouting", () => {
  test("a default route: own table 51820, the two rules, fwmark 51820; other prefixes in main, longest first", () => {
    const p = planRouting(conf("0.0.0.0/0, 10.99.0.0/16, 10.99.1.0/24"), resolveTable(null), none);
    expect(p.fwmark).toBe(51820);
    expect(routes(p)).toEqual(["10.99.1.0/24@254", "10.99.0.0/16@254", "0.0.0.0/0@51820"]);
    expect(p.rules).toEqual([
      { family: 4, table: 51820, fwmark: 51820, invert: true },
      { family: 4, table: 254, suppressPrefixLength: 0 },
    ]);
    expect(p.fullTunnel).toEqual([4]);
  });

  test("the table is FwMark when set, else the first from 51820 without routes", () => {
    expect(planRouting(conf("::/0", ["FwMark = 0x1234"]), resolveTable(null), none).fwmark).toBe(0x1234);
    const used = [51820, 51821].map((table) => ({ table }) as RouteEntry);
    expect(planRouting(conf("::/0"), resolveTable("auto"), () => used).fwmark).toBe(51822);
  });

  test("Table = N: every prefix in N, no rules, no fwmark; Table = off: nothing", () => {
    const p = planRouting(conf("0.0.0.0/0, 10.66.0.0/24"), resolveTable("1234"), none);
    expect(routes(p)).toEqual(["10.66.0.0/24@1234", "0.0.0.0/0@1234"]);
    expect(p.rules).toEqual([]);
    expect(p.fwmark).toBeNull();
    expect(planRouting(conf("0.0.0.0/0"), resolveTable("off"), none).routes).toEqual([]);
  });
});

describe("resolveTable", () => {
  test("numbers, names from rt_tables, and unknown names", () => {
    expect(resolveTable("main")).toEqual({ kind: "table", id: 254, text: "main" });
    expect(resolveTable("vpn", () => new Map([["vpn", 200]]))).toEqual({ kind: "table", id: 200, text: "vpn" });
    expect(() => resolveTable("h4-no-such-table")).toThrow("no routing table has that name");
  });
});

test("firewallScript: the drop rule per address of the family, the connmark rules", () => {
  const script = firewallScript("ip", "h4wg0", conf("0.0.0.0/0").interface.addresses, 51820);
  expect(script).toContain('add rule ip wontun-h4wg0 preraw iifname != "h4wg0" ip daddr 10.66.0.2 fib saddr type != local drop');
  expect(script).not.toContain("fd66::2");
  expect(script).toContain("add rule ip wontun-h4wg0 postmangle meta l4proto udp mark 51820 ct mark set mark");
});

test("configFileText keeps wg-quick's lines in [Interface] and parses back to the same config (ini and toml)", () => {
  const original = conf("10.99.0.0/16", ["DNS = 10.66.0.1, corp.example", "Table = 1234", "SaveConfig = true", "PostUp = echo %i", "PreDown = echo a, b"]);
  const ini = configFileText(original, "h4wg0.conf");
  expect(parseConfigText(ini, "h4wg0.conf", "ini", { wireguard: true })).toEqual(original);
  const toml = configFileText(original, "h4wg0.toml");
  expect(parseConfigText(toml, "h4wg0.toml", "toml", { wireguard: true })).toEqual(original);
});
