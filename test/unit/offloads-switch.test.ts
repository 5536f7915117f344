// The offload switch list of `wontun up --offload` and WONTUN_OFFLOAD.
import { describe, expect, test } from "bun:test";
import { ALL_OFFLOADS, NO_OFFLOADS, formatOffloads, parseOffloads } from "../../src/device/offloads.ts";

describe("offload switches", () => {
  test("all, none, and lists in any case and spacing", () => {
    expect(parseOffloads("all")).toEqual(ALL_OFFLOADS);
    expect(parseOffloads(" ALL ")).toEqual(ALL_OFFLOADS);
    expect(parseOffloads("none")).toEqual(NO_OFFLOADS);
    expect(parseOffloads("")).toEqual(NO_OFFLOADS);
    expect(parseOffloads("tso")).toEqual({ tso: true, gro: false, "udp-gso": false, "udp-gro": false, uso: false });
    expect(parseOffloads("gro, udp-gso")).toEqual({ tso: false, gro: true, "udp-gso": true, "udp-gro": false, uso: false });
    expect(parseOffloads("uso")).toEqual({ ...NO_OFFLOADS, uso: true });
    expect(parseOffloads("tso,gro,udp-gso,udp-gro,uso")).toEqual(ALL_OFFLOADS);
  });

  test("unknown names are refused with the list of valid ones", () => {
    expect(() => parseOffloads("tso,gso")).toThrow(/unknown offload "gso".*tso, gro, udp-gso, udp-gro/);
    expect(() => parseOffloads("tso,,gro")).toThrow(/unknown offload ""/);
  });

  test("formatting names what is on", () => {
    expect(formatOffloads(ALL_OFFLOADS)).toBe("tso,gro,udp-gso,udp-gro,uso");
    expect(formatOffloads(NO_OFFLOADS)).toBe("none");
    expect(formatOffloads(parseOffloads("gro"))).toBe("gro");
  });
});
