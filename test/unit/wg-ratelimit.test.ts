import { describe, expect, test } from "bun:test";
import {
  GC_IDLE_MS,
  PACKETS_BURSTABLE,
  PACKETS_PER_SECOND,
  PACKET_COST_MS,
  RateLimiter,
  TOKEN_MAX_MS,
} from "../../src/protocol/wireguard/ratelimit.ts";

const v4 = (a: number, b: number, c: number, d: number) => new Uint8Array([a, b, c, d]);
function v6(...groups: number[]): Uint8Array {
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

describe("RateLimiter", () => {
  test("constants", () => {
    expect(PACKETS_PER_SECOND).toBe(20);
    expect(PACKETS_BURSTABLE).toBe(5);
    expect(PACKET_COST_MS).toBe(50);
    expect(TOKEN_MAX_MS).toBe(250);
    expect(GC_IDLE_MS).toBe(1000);
  });

  test("burst of 5, then one per 50 ms (the Linux selftest sequence)", () => {
    const rl = new RateLimiter();
    const ip = v4(192, 0, 2, 1);
    let t = 1000;
    for (let i = 0; i < 5; i++) expect(rl.allow(ip, t)).toBe(true);
    expect(rl.allow(ip, t)).toBe(false);
    t += 50;
    expect(rl.allow(ip, t)).toBe(true);
    expect(rl.allow(ip, t)).toBe(false);
    t += 100;
    expect(rl.allow(ip, t)).toBe(true);
    expect(rl.allow(ip, t)).toBe(true);
    expect(rl.allow(ip, t)).toBe(false);
  });

  test("steady rate: over 10 s at 1 packet/ms, ~20/s get through", () => {
    const rl = new RateLimiter();
    const ip = v4(198, 51, 100, 7);
    let allowed = 0;
    for (let t = 0; t < 10_000; t++) if (rl.allow(ip, t)) allowed++;
    // 5 burst + 1 per 50 ms after the bucket empties.
    expect(allowed).toBeGreaterThanOrEqual(200);
    expect(allowed).toBeLessThanOrEqual(205);
  });

  test("a 49 ms gap is not enough, 50 ms is", () => {
    const rl = new RateLimiter();
    const ip = v4(10, 0, 0, 1);
    for (let i = 0; i < 5; i++) rl.allow(ip, 0);
    expect(rl.allow(ip, 49)).toBe(false);
    expect(rl.allow(ip, 50)).toBe(true);
  });

  test("bucket refills to at most 5", () => {
    const rl = new RateLimiter();
    const ip = v4(10, 0, 0, 2);
    expect(rl.allow(ip, 0)).toBe(true);
    let n = 0;
    while (rl.allow(ip, 60_000)) n++;
    expect(n).toBe(5);
  });

  test("separate IPs are independent", () => {
    const rl = new RateLimiter();
    const a = v4(10, 0, 0, 1);
    const b = v4(10, 0, 0, 2);
    for (let i = 0; i < 5; i++) expect(rl.allow(a, 0)).toBe(true);
    expect(rl.allow(a, 0)).toBe(false);
    for (let i = 0; i < 5; i++) expect(rl.allow(b, 0)).toBe(true);
    expect(rl.allow(b, 0)).toBe(false);
    expect(rl.size).toBe(2);
  });

  test("IPv6 in the same /64 share a bucket; another /64 does not", () => {
    const rl = new RateLimiter();
    const a = v6(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1);
    const b = v6(0x2001, 0xdb8, 1, 2, 0xdead, 0xbeef, 0xcafe, 0xf00d);
    const c = v6(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1);
    for (let i = 0; i < 3; i++) expect(rl.allow(a, 0)).toBe(true);
    for (let i = 0; i < 2; i++) expect(rl.allow(b, 0)).toBe(true);
    expect(rl.allow(a, 0)).toBe(false);
    expect(rl.allow(b, 0)).toBe(false);
    expect(rl.allow(c, 0)).toBe(true);
    expect(rl.size).toBe(2);
  });

  test("IPv4-mapped IPv6 is keyed as IPv4, not as ::/64", () => {
    const rl = new RateLimiter();
    const mapped = (d: number) => v6(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0200 | d);
    for (let i = 0; i < 5; i++) expect(rl.allow(mapped(1), 0)).toBe(true);
    expect(rl.allow(mapped(1), 0)).toBe(false);
    expect(rl.allow(v4(192, 0, 2, 1), 0)).toBe(false); // same source as the mapped form
    expect(rl.allow(mapped(2), 0)).toBe(true); // a different IPv4 source
    expect(rl.size).toBe(2);
  });

  test("bad address length throws", () => {
    const rl = new RateLimiter();
    expect(() => rl.allow(new Uint8Array(5), 0)).toThrow();
  });

  test("gc removes entries idle for more than 1 s and keeps the rest", () => {
    const rl = new RateLimiter();
    rl.allow(v4(1, 1, 1, 1), 0);
    rl.allow(v4(2, 2, 2, 2), 500);
    rl.allow(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 0);
    expect(rl.size).toBe(3);
    rl.gc(1000);
    expect(rl.size).toBe(3); // exactly 1 s idle is kept
    rl.gc(1001);
    expect(rl.size).toBe(1);
    rl.gc(1501);
    expect(rl.size).toBe(0);
  });

  test("gc does not change decisions: an idle source gets its full burst again", () => {
    const rl = new RateLimiter();
    const ip = v4(9, 9, 9, 9);
    for (let i = 0; i < 5; i++) rl.allow(ip, 0);
    rl.gc(2000);
    expect(rl.size).toBe(0);
    for (let i = 0; i < 5; i++) expect(rl.allow(ip, 2000)).toBe(true);
    expect(rl.allow(ip, 2000)).toBe(false);
  });

  test("cap: when full, new sources are denied and known ones keep working", () => {
    const rl = new RateLimiter({ maxEntries: 3 });
    expect(rl.allow(v4(10, 0, 0, 1), 0)).toBe(true);
    expect(rl.allow(v4(10, 0, 0, 2), 0)).toBe(true);
    expect(rl.allow(v6(0x2001, 0xdb8, 0, 1), 0)).toBe(true);
    expect(rl.size).toBe(3);
    expect(rl.allow(v4(10, 0, 0, 3), 10)).toBe(false);
    expect(rl.allow(v6(0x2001, 0xdb8, 0, 2), 20)).toBe(false);
    expect(rl.size).toBe(3);
    expect(rl.allow(v4(10, 0, 0, 1), 30)).toBe(true);
    // After the others go idle, gc frees room.
    rl.allow(v4(10, 0, 0, 1), 1500);
    rl.gc(1500);
    expect(rl.size).toBe(1);
    expect(rl.allow(v4(10, 0, 0, 3), 1500)).toBe(true);
  });

  test("cap: a full table collects idle entries itself, at most once per second", () => {
    const rl = new RateLimiter({ maxEntries: 2 });
    expect(rl.allow(v4(10, 0, 0, 1), 0)).toBe(true);
    expect(rl.allow(v4(10, 0, 0, 2), 0)).toBe(true);
    // Full, nothing idle yet: auto-gc runs, frees nothing, denies.
    expect(rl.allow(v4(10, 0, 0, 3), 900)).toBe(false);
    // Now both are idle, but auto-gc ran <1 s ago: still denied.
    expect(rl.allow(v4(10, 0, 0, 3), 1500)).toBe(false);
    // A second later the table is swept and the new source gets in.
    expect(rl.allow(v4(10, 0, 0, 3), 1900)).toBe(true);
    expect(rl.size).toBe(1);
  });

  test("clock going backwards grants nothing", () => {
    const rl = new RateLimiter();
    const ip = v4(10, 1, 1, 1);
    for (let i = 0; i < 5; i++) rl.allow(ip, 1000);
    expect(rl.allow(ip, 0)).toBe(false);
    expect(rl.allow(ip, 1049)).toBe(false);
    expect(rl.allow(ip, 1050)).toBe(true);
  });

  test("maxEntries 0 denies everyone; invalid options throw", () => {
    const rl = new RateLimiter({ maxEntries: 0 });
    expect(rl.allow(v4(1, 2, 3, 4), 0)).toBe(false);
    expect(() => new RateLimiter({ maxEntries: -1 })).toThrow();
    expect(() => new RateLimiter({ maxEntries: 1.5 })).toThrow();
  });

  test("clear forgets everything", () => {
    const rl = new RateLimiter();
    const ip = v4(10, 0, 0, 1);
    for (let i = 0; i < 6; i++) rl.allow(ip, 0);
    rl.clear();
    expect(rl.size).toBe(0);
    expect(rl.allow(ip, 0)).toBe(true);
  });
});
