import { describe, expect, test } from "bun:test";
import { formatCidr, parseCidr, type Cidr } from "../../src/net/ip.ts";
import { routesFor } from "../../src/sys/netlink.ts";

function cidrs(texts: string[], keepHostBits: boolean): Cidr[] {
  return texts.map((t) => {
    const c = parseCidr(t, keepHostBits);
    if (typeof c === "string") throw new Error(c);
    return c;
  });
}

function routes(addresses: string[], allowed: string[]): string[] {
  return routesFor(cidrs(addresses, true), cidrs(allowed, false)).map(formatCidr);
}

describe("routesFor", () => {
  test("a prefix inside the interface address's own network needs no route", () => {
    expect(routes(["10.10.0.3/24"], ["10.10.0.0/24"])).toEqual([]);
    expect(routes(["10.10.0.3/24"], ["10.10.0.7/32", "10.10.0.128/25"])).toEqual([]);
  });

  test("a wider or different prefix gets a route", () => {
    expect(routes(["10.10.0.3/24"], ["10.20.0.0/16"])).toEqual(["10.20.0.0/16"]);
    expect(routes(["10.10.0.3/24"], ["10.10.0.0/16"])).toEqual(["10.10.0.0/16"]);
    expect(routes(["10.10.0.3/24"], ["10.10.1.0/24"])).toEqual(["10.10.1.0/24"]);
  });

  test("default routes are returned as they are", () => {
    expect(routes(["10.10.0.3/24", "fd00::3/64"], ["0.0.0.0/0", "::/0"])).toEqual(["0.0.0.0/0", "::/0"]);
  });

  test("families do not cover each other", () => {
    expect(routes(["10.10.0.3/24"], ["fd00::/64"])).toEqual(["fd00::/64"]);
    expect(routes(["fd00::3/64"], ["fd00::9/128", "fd01::/64", "10.0.0.0/8"])).toEqual(["fd01::/64", "10.0.0.0/8"]);
  });

  test("host addresses (/32, /128) have no prefix route, so they cover nothing", () => {
    expect(routes(["10.10.0.3/32"], ["10.10.0.3/32", "10.10.0.0/24"])).toEqual(["10.10.0.3/32", "10.10.0.0/24"]);
    expect(routes(["fd00::3/128"], ["fd00::3/128"])).toEqual(["fd00::3/128"]);
  });

  test("duplicates are removed, host bits cleared, order kept", () => {
    const allowed = [
      { address: new Uint8Array([10, 20, 1, 2]), prefix: 16 }, // host bits set by the caller
      ...cidrs(["10.30.0.0/16", "10.20.0.0/16", "10.30.0.0/16"], false),
    ];
    expect(routesFor([], allowed).map(formatCidr)).toEqual(["10.20.0.0/16", "10.30.0.0/16"]);
  });

  test("no addresses: every prefix is routed; no allowed IPs: nothing", () => {
    expect(routes([], ["10.0.0.0/8", "192.168.1.1/32"])).toEqual(["10.0.0.0/8", "192.168.1.1/32"]);
    expect(routes(["10.0.0.1/24"], [])).toEqual([]);
  });
});
