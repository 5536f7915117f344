import { describe, expect, test } from "bun:test";
import { TAI64N_SIZE, WHITENER_MASK, compareTai64n, tai64n, tai64nToUnixMillis } from "../../src/protocol/wireguard/tai64n.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("tai64n", () => {
  test("constants", () => {
    expect(TAI64N_SIZE).toBe(12);
    expect(WHITENER_MASK).toBe(0xffffff);
  });

  test("unix epoch is label 0x400000000000000a, nanos 0", () => {
    expect(hex(tai64n(0))).toBe("400000000000000a" + "00000000");
  });

  test("a fixed time: 2024-01-01T00:00:00.500Z", () => {
    const ms = Date.UTC(2024, 0, 1, 0, 0, 0, 500);
    expect(ms).toBe(1704067200500);
    // seconds label = 2^62 + 10 + 1704067200 (0x65920080)
    const label = (1n << 62n) + 10n + 1704067200n;
    // 500 ms = 500_000_000 ns; whitened: clear low 24 bits.
    const nanos = 500_000_000 & ~0xffffff;
    expect(nanos).toBe(0x1d000000); // 486539264 ns
    const expected = label.toString(16).padStart(16, "0") + nanos.toString(16).padStart(8, "0");
    expect(hex(tai64n(ms))).toBe(expected);
    expect(hex(tai64n(ms))).toBe("400000006592008a" + "1d000000");
  });

  test("nanoseconds are whitened to multiples of 2^24 ns", () => {
    const base = Date.UTC(2030, 5, 15, 12, 0, 0, 0);
    for (let ms = 0; ms < 1000; ms += 7) {
      const t = tai64n(base + ms);
      const nanos = new DataView(t.buffer).getUint32(8, false);
      expect(nanos % 0x1000000).toBe(0);
      expect(nanos).toBeLessThanOrEqual(ms * 1e6);
      expect(ms * 1e6 - nanos).toBeLessThan(0x1000000);
    }
    // 16 ms and 0 ms fall in the same step (16e6 < 2^24 = 16777216), 17 ms in the next.
    expect(compareTai64n(tai64n(base), tai64n(base + 16))).toBe(0);
    expect(compareTai64n(tai64n(base + 17), tai64n(base))).toBe(1);
  });

  test("seconds above 2^32 carry into the high word; negative times work", () => {
    const ms = (2 ** 32 + 5) * 1000;
    const label = (1n << 62n) + 10n + (2n ** 32n + 5n);
    expect(hex(tai64n(ms)).slice(0, 16)).toBe(label.toString(16));
    // Just before 1970: -1 ms is second -1, 999 ms.
    const before = tai64n(-1);
    expect(hex(before).slice(0, 16)).toBe(((1n << 62n) + 10n - 1n).toString(16));
    expect(new DataView(before.buffer).getUint32(8, false)).toBe(999_000_000 & ~0xffffff);
    // Far before 1970: borrow from the high word.
    const old = tai64n(-(2 ** 33) * 1000);
    expect(hex(old).slice(0, 16)).toBe(((1n << 62n) + 10n - 2n ** 33n).toString(16));
  });

  test("writes into a provided buffer (e.g. a subarray) and returns it", () => {
    const big = new Uint8Array(20).fill(0xee);
    const view = big.subarray(4, 16);
    const r = tai64n(0, view);
    expect(r).toBe(view);
    expect(hex(big)).toBe("eeeeeeee" + "400000000000000a00000000" + "eeeeeeee");
    expect(() => tai64n(0, new Uint8Array(11))).toThrow();
    expect(() => tai64n(NaN)).toThrow();
  });

  test("round trip to unix millis (up to whitening)", () => {
    const ms = Date.UTC(2025, 2, 3, 4, 5, 6, 789);
    const back = tai64nToUnixMillis(tai64n(ms));
    expect(back).toBeLessThanOrEqual(ms);
    expect(ms - back).toBeLessThan(17);
    expect(tai64nToUnixMillis(tai64n(1704067200000))).toBe(1704067200000);
  });

  test("compareTai64n orders by time; replayed/older stamps are not greater", () => {
    const t0 = Date.UTC(2024, 6, 1);
    const last = tai64n(t0 + 100);
    expect(compareTai64n(tai64n(t0 + 200), last)).toBe(1);
    expect(compareTai64n(tai64n(t0 + 100), last)).toBe(0); // replay: equal -> reject (<= 0)
    expect(compareTai64n(tai64n(t0 + 50), last)).toBe(-1);
    expect(compareTai64n(tai64n(t0 - 100_000), last)).toBe(-1); // seconds dominate nanoseconds
    expect(compareTai64n(tai64n(t0 + 1000), tai64n(t0 + 999))).toBe(1);
    // Byte-wise compare is numeric: a larger nanosecond field loses to a larger second field.
    expect(compareTai64n(tai64n(t0 + 999), tai64n(t0 + 1000))).toBe(-1);
    expect(() => compareTai64n(new Uint8Array(12), new Uint8Array(13))).toThrow();
  });

  test("monotonic over a day in 1-second-ish steps", () => {
    const t0 = Date.UTC(2024, 0, 1);
    let prev = tai64n(t0);
    for (let ms = t0 + 17; ms < t0 + 86_400_000; ms += 997) {
      const cur = tai64n(ms);
      expect(compareTai64n(cur, prev)).toBe(1);
      prev = cur;
    }
  });
});
