import { describe, expect, test } from "bun:test";
import { MAX_COUNTER, RING_BITS, ReplayWindow, WINDOW_SIZE } from "../../src/protocol/wireguard/replay.ts";
import { readCounter } from "../../src/protocol/wireguard/messages.ts";

const W = WINDOW_SIZE;

describe("ReplayWindow", () => {
  test("window constants", () => {
    expect(RING_BITS).toBe(8192);
    expect(WINDOW_SIZE).toBe(8128);
    expect(WINDOW_SIZE).toBeGreaterThanOrEqual(2048);
    expect(MAX_COUNTER).toBe(2 ** 53 - 1);
  });

  test("in order, starting at 0", () => {
    const r = new ReplayWindow();
    expect(r.highest).toBe(-1);
    for (let i = 0; i < 20000; i++) expect(r.accept(i)).toBe(true);
    expect(r.highest).toBe(19999);
  });

  test("duplicates are rejected, including the very first counter", () => {
    const r = new ReplayWindow();
    expect(r.accept(0)).toBe(true);
    expect(r.accept(0)).toBe(false);
    expect(r.accept(1)).toBe(true);
    expect(r.accept(1)).toBe(false);
    expect(r.accept(0)).toBe(false);
  });

  test("reordering within the window", () => {
    const r = new ReplayWindow();
    const order = [5, 3, 4, 0, 2, 1, 10, 7, 9, 8, 6];
    for (const c of order) expect(r.accept(c)).toBe(true);
    for (const c of order) expect(r.accept(c)).toBe(false);
    expect(r.highest).toBe(10);
  });

  test("too old is rejected; boundary is exactly WINDOW_SIZE behind", () => {
    const r = new ReplayWindow();
    const top = 100000;
    expect(r.accept(top)).toBe(true);
    expect(r.accept(top - W - 1)).toBe(false);
    expect(r.accept(top - W)).toBe(true);
    expect(r.accept(top - W)).toBe(false);
    expect(r.accept(top - W + 1)).toBe(true);
    // Advancing by one makes the old boundary fall out.
    expect(r.accept(top + 1)).toBe(true);
    expect(r.accept(top - W)).toBe(false);
    expect(r.accept(top + 1 - W)).toBe(false); // already seen
    expect(r.accept(top + 2 - W)).toBe(true);
  });

  test("boundary at every alignment within a block", () => {
    for (let top = W; top < W + 70; top++) {
      const r = new ReplayWindow();
      expect(r.accept(top)).toBe(true);
      expect(r.accept(top - W - 1)).toBe(false); // too old (or -1 when top === W)
      expect(r.accept(top - W)).toBe(true);
    }
  });

  test("big jump (> window) clears the whole ring", () => {
    const r = new ReplayWindow();
    for (let i = 0; i < 8192; i++) expect(r.accept(i)).toBe(true);
    const jump = 8191 + 3 * RING_BITS + 17;
    expect(r.accept(jump)).toBe(true);
    expect(r.highest).toBe(jump);
    // Everything older than jump - W is too old; everything inside is unseen.
    expect(r.accept(8191)).toBe(false);
    for (let c = jump - W; c < jump; c++) expect(r.accept(c)).toBe(true);
    for (let c = jump - W; c <= jump; c++) expect(r.accept(c)).toBe(false);
  });

  test("jump by exactly the ring size, then older inside the window", () => {
    const r = new ReplayWindow();
    for (let i = 0; i < 100; i++) r.accept(i);
    // Counters that map to the same ring bits as 0..99 must read as unseen after the jump.
    expect(r.accept(RING_BITS + 99)).toBe(true);
    for (let i = RING_BITS; i < RING_BITS + 99; i++) expect(r.accept(i)).toBe(true);
    expect(r.accept(RING_BITS + 99 - W)).toBe(true);
    expect(r.accept(99)).toBe(false); // too old
  });

  test("jump then older inside the window", () => {
    const r = new ReplayWindow();
    expect(r.accept(10)).toBe(true);
    expect(r.accept(5000)).toBe(true);
    expect(r.accept(11)).toBe(true);
    expect(r.accept(10)).toBe(false);
    expect(r.accept(4999)).toBe(true);
    expect(r.accept(0)).toBe(true); // 5000 - 0 <= W
    expect(r.highest).toBe(5000);
  });

  test("counters above 2^32 and up to MAX_COUNTER", () => {
    const r = new ReplayWindow();
    const base = 2 ** 32 - 5;
    for (let c = base; c < base + 20; c++) expect(r.accept(c)).toBe(true);
    for (let c = base; c < base + 20; c++) expect(r.accept(c)).toBe(false);
    const big = 2 ** 40 + 123;
    expect(r.accept(big)).toBe(true);
    expect(r.accept(big - 1)).toBe(true);
    expect(r.accept(big - 1)).toBe(false);
    expect(r.accept(base + 100)).toBe(false);
    expect(r.accept(MAX_COUNTER - 1)).toBe(true);
    expect(r.accept(MAX_COUNTER)).toBe(true);
    expect(r.accept(MAX_COUNTER)).toBe(false);
    expect(r.accept(MAX_COUNTER - 1)).toBe(false);
    expect(r.accept(MAX_COUNTER - 2)).toBe(true);
    expect(r.highest).toBe(MAX_COUNTER);
  });

  test("invalid counters are rejected without touching state", () => {
    const r = new ReplayWindow();
    for (const bad of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64]) expect(r.accept(bad)).toBe(false);
    expect(r.highest).toBe(-1);
    expect(r.accept(0)).toBe(true);
  });

  test("reset forgets everything", () => {
    const r = new ReplayWindow();
    for (let i = 0; i < 50; i++) r.accept(i);
    r.reset();
    expect(r.highest).toBe(-1);
    for (let i = 0; i < 50; i++) expect(r.accept(i)).toBe(true);
  });

  test("randomized against a Set-based reference model", () => {
    // Deterministic PRNG (mulberry32).
    let seed = 0x9e3779b9;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    for (const start of [0, 2 ** 32 - 3000, 2 ** 50]) {
      const r = new ReplayWindow();
      const seen = new Set<number>();
      let highest = -1;
      let head = start;
      for (let i = 0; i < 200000; i++) {
        const x = rand();
        let c: number;
        if (x < 0.5) c = head + Math.floor(rand() * 4); // mostly forward
        else if (x < 0.8) c = head - Math.floor(rand() * (W + 200)); // reordered / near the edge
        else if (x < 0.95) c = head - Math.floor(rand() * 16); // recent duplicates
        else c = head + Math.floor(rand() * 3 * RING_BITS); // jumps
        if (c < 0) c = 0;
        head = Math.max(head, c);
        const expected = !seen.has(c) && (highest < 0 || c > highest || highest - c <= W);
        if (expected) {
          seen.add(c);
          highest = Math.max(highest, c);
        }
        const got = r.accept(c);
        if (got !== expected) throw new Error(`mismatch at step ${i}: counter ${c}, highest ${highest}, expected ${expected}`);
      }
      expect(r.highest).toBe(highest);
    }
  });
});

describe("readCounter (transport message counter)", () => {
  test("little-endian u64 within safe range", () => {
    const b = new Uint8Array(10);
    b.set([1, 2, 3, 4, 5, 6, 7, 8], 1);
    expect(readCounter(b, 1)).toBe(-1); // 0x0807060504030201 > 2^53 - 1
    b.set([1, 2, 3, 4, 5, 6, 7, 0], 1);
    expect(readCounter(b, 1)).toBe(0x07060504030201);
    const v = new Uint8Array(8);
    new DataView(v.buffer).setBigUint64(0, 0x1234_5678_9abcn, true);
    expect(readCounter(v, 0)).toBe(0x1234_5678_9abc);
    new DataView(v.buffer).setBigUint64(0, BigInt(Number.MAX_SAFE_INTEGER), true);
    expect(readCounter(v, 0)).toBe(Number.MAX_SAFE_INTEGER);
    new DataView(v.buffer).setBigUint64(0, 2n ** 53n, true);
    expect(readCounter(v, 0)).toBe(-1);
    new DataView(v.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    expect(readCounter(v, 0)).toBe(-1);
    new DataView(v.buffer).setBigUint64(0, 0xffff_ffffn, true);
    expect(readCounter(v, 0)).toBe(0xffff_ffff);
  });
});
