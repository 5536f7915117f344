import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { rssFileKiB, startFilePageTrimmer, trimFilePages, trimIntervalFromEnv, trimmableRanges } from "../../../src/memory/file-pages.ts";

const SMAPS = `55d0a0000000-55d0a0200000 r--p 00000000 fd:01 1234 /usr/bin/prog
Rss:                1024 kB
Anonymous:             0 kB
Swap:                  0 kB
Locked:                0 kB
VmFlags: rd mr mw me sd
55d0a0200000-55d0a0400000 r-xp 00200000 fd:01 1234 /usr/bin/prog
Rss:                2048 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me sd
55d0a0400000-55d0a0410000 r--p 00400000 fd:01 1234 /usr/bin/prog
Rss:                  64 kB
Anonymous:            64 kB
VmFlags: rd mr mw me ac sd
55d0a0410000-55d0a0420000 rw-p 00410000 fd:01 1234 /usr/bin/prog
Rss:                  64 kB
Anonymous:             8 kB
VmFlags: rd wr mr mw me ac sd
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Rss:                1024 kB
Anonymous:          1024 kB
VmFlags: rd wr mr mw me ac sd
7f0000100000-7f0000200000 r-xp 00000000 fd:01 99 /usr/lib/libx.so
Rss:                 512 kB
Anonymous:             0 kB
Locked:              512 kB
VmFlags: rd ex mr mw me lo sd
7f0000200000-7f0000201000 r--s 00000000 00:05 77 /dev/shm-thing
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd sh mr mw me sd
7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me de sd
`;

describe("trimmableRanges", () => {
  test("only clean, read-only, unlocked mappings of regular files", () => {
    const r = trimmableRanges(SMAPS);
    expect(r.map((x) => [x.start.toString(16), x.end.toString(16), x.rssKiB])).toEqual([
      ["55d0a0000000", "55d0a0200000", 1024],
      ["55d0a0200000", "55d0a0400000", 2048],
    ]);
    // Not: the RELRO mapping with copy-on-write pages, the writable data, anonymous memory, a
    // locked library, a device file, the vDSO.
  });

  test("this process: never a writable mapping or one with anonymous pages", () => {
    const smaps = readFileSync("/proc/self/smaps", "latin1");
    const ranges = trimmableRanges(smaps);
    expect(ranges.length).toBeGreaterThan(0);
    for (const r of ranges) {
      const header = smaps.split("\n").find((l) => /^[0-9a-f]+-/.test(l) && parseInt(l, 16) === r.start)!;
      expect(header.split(" ")[1][1]).toBe("-");
    }
  });
});

describe("trimFilePages", () => {
  test("drops file-backed RSS and the process goes on working", () => {
    const before = rssFileKiB();
    const r = trimFilePages();
    if (typeof r === "string") throw new Error(r);
    expect(r.ranges).toBeGreaterThan(0);
    expect(r.rssFileAfterKiB).toBeLessThan(before);
    // Code and read-only data come back on use.
    expect(JSON.parse(JSON.stringify({ a: [1, 2, 3] }))).toEqual({ a: [1, 2, 3] });
    expect(new Bun.CryptoHasher("sha256").update("abc").digest("hex")).toStartWith("ba7816bf");
  });
});

describe("startFilePageTrimmer", () => {
  test("trims at once, then at most once per gap, after bursts too; stop() ends it", () => {
    let trims = 0;
    const trimmer = startFilePageTrimmer(60_000, () => trims++);
    try {
      expect(trims).toBe(1);
      trimmer.check(); // takes the baseline: what came straight back
      trimmer.check(); // within the 10 s gap
      expect(trims).toBe(1);
      trimmer.check(true); // trims only if this process touched 2 MiB more of its executable
      const afterBurst = trims;
      expect(afterBurst).toBeLessThanOrEqual(2);
      for (let i = 0; i < 5; i++) {
        new Uint8Array(1 << 20).fill(i); // not file-backed: no reason to trim either way
        trimmer.check(true); // within the 1 s gap of bursts
      }
      expect(trims).toBe(afterBurst);
    } finally {
      trimmer.stop();
    }
    trimmer.check(true);
    trimmer.check();
    expect(trims).toBeLessThanOrEqual(2);
  });

  test("an interval of 0 does nothing", () => {
    let trims = 0;
    const trimmer = startFilePageTrimmer(0, () => trims++);
    trimmer.check(true);
    trimmer.stop();
    expect(trims).toBe(0);
  });
});

describe("WONTUN_TRIM_FILE_PAGES", () => {
  test("on by default, off, or a check interval in seconds", () => {
    expect(trimIntervalFromEnv(undefined)).toBe(1000);
    expect(trimIntervalFromEnv("on")).toBe(1000);
    expect(trimIntervalFromEnv("off")).toBe(0);
    expect(trimIntervalFromEnv("0")).toBe(0);
    expect(trimIntervalFromEnv("5")).toBe(5000);
    expect(trimIntervalFromEnv("junk")).toBe(1000);
  });
});
