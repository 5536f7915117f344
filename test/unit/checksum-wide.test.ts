// The wide checksum loop (16-bit words through a Uint16Array view) against the byte loop and a
// slow reference, at every alignment, across buffers with a byte offset, and the env switches.
import { describe, expect, test } from "bun:test";
import { fold, sumBytes, sumBytesNarrow, sumWords, WIDE_CSUM } from "../../src/net/offload/checksum.ts";
import { envSwitch } from "../../src/switches.ts";

/** One big-endian word at a time with end-around carry: the RFC 1071 definition. */
function reference(buf: Uint8Array, offset: number, length: number, initial: number): number {
  let s = fold(initial);
  for (let i = 0; i < length; i += 2) {
    s += (buf[offset + i] << 8) | (i + 1 < length ? buf[offset + i + 1] : 0);
    if (s > 0xffff) s -= 0xffff;
  }
  return s;
}

/** A deterministic pseudo-random fill (xorshift), so failures reproduce. */
function fill(buf: Uint8Array, seed: number): void {
  let x = seed | 1;
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
}

describe("wide checksum", () => {
  test("is on by default on this (little-endian) host", () => {
    expect(WIDE_CSUM).toBe(true);
  });

  test("agrees with the byte loop and the reference at every alignment and length", () => {
    const backing = new ArrayBuffer(140_000);
    for (const byteOffset of [0, 1, 2, 3]) {
      const buf = new Uint8Array(backing, byteOffset, 139_000);
      fill(buf, 12345 + byteOffset);
      for (let t = 0; t < 600; t++) {
        const offset = (t * 7919) % 997;
        const length = t < 40 ? 65_000 + t * 13 : t % 2 === 0 ? t : (t * 31) % 3000;
        const initial = (t * 2654435761) >>> 0;
        const want = reference(buf, offset, length, initial);
        expect(fold(sumWords(buf, offset, length, initial))).toBe(want);
        expect(fold(sumBytesNarrow(buf, offset, length, initial))).toBe(want);
        expect(fold(sumBytes(buf, offset, length, initial))).toBe(want);
      }
    }
  });

  test("all-zero and all-0xff data fold as the byte loop does (0 stays 0, never 0xffff)", () => {
    for (const value of [0, 0xff]) {
      const buf = new Uint8Array(new ArrayBuffer(3000)).fill(value);
      for (const [offset, length] of [[0, 1500], [1, 1499], [3, 2000], [2, 64]]) {
        expect(fold(sumWords(buf, offset, length, 0))).toBe(fold(sumBytesNarrow(buf, offset, length, 0)));
      }
    }
  });

  test("a range longer than one block of 32-bit words (2^20 words) folds between blocks", () => {
    const buf = new Uint8Array(new ArrayBuffer((1 << 22) + 64));
    fill(buf, 777);
    for (const [offset, length] of [[0, (1 << 22) + 64], [3, (1 << 22) + 7], [2, (1 << 22) + 2]]) {
      expect(fold(sumWords(buf, offset, length, 5))).toBe(reference(buf, offset, length, 5));
    }
  });

  test("results stay below 2^32 so they can be added up and folded", () => {
    const buf = new Uint8Array(new ArrayBuffer(70_000)).fill(0xff);
    const s = sumWords(buf, 1, 65_535, 0xffffffff);
    expect(s).toBeLessThan(2 ** 32);
    expect(fold(s)).toBe(fold(sumBytesNarrow(buf, 1, 65_535, 0xffffffff)));
  });

  test("several buffers in turn, and a Buffer from Node's pool (non-zero byteOffset)", () => {
    const bufs = Array.from({ length: 6 }, (_, i) => {
      const b = new Uint8Array(new ArrayBuffer(4000 + i));
      fill(b, i + 1);
      return b;
    });
    const pooled = Buffer.alloc(2000);
    fill(pooled, 99);
    for (let round = 0; round < 3; round++) {
      for (const b of [...bufs, pooled]) {
        expect(fold(sumWords(b, 3, 1500, 7))).toBe(reference(b, 3, 1500, 7));
      }
    }
  });

  test("a resizable buffer that grew gets a new view", () => {
    const ab = new ArrayBuffer(1000, { maxByteLength: 10_000 });
    const buf = new Uint8Array(ab); // length-tracking
    fill(buf, 5);
    expect(fold(sumWords(buf, 0, 1000, 0))).toBe(reference(buf, 0, 1000, 0));
    ab.resize(8000);
    fill(buf, 6);
    expect(fold(sumWords(buf, 10, 7990, 0))).toBe(reference(buf, 10, 7990, 0));
  });
});

describe("envSwitch", () => {
  test("on/off words in any case; unset, empty or junk gives the default", () => {
    for (const v of ["1", "on", "TRUE", " yes "]) expect(envSwitch("X", false, { X: v })).toBe(true);
    for (const v of ["0", "Off", "false", "NO"]) expect(envSwitch("X", true, { X: v })).toBe(false);
    expect(envSwitch("X", true, {})).toBe(true);
    expect(envSwitch("X", false, { X: "" })).toBe(false);
    expect(envSwitch("X", true, { X: "maybe" })).toBe(true);
  });
});
