// Clean file-backed pages (the executable's code and read-only data) out of this process's RSS.
//
// A Bun executable is ~100 MB of code and data; starting it (JavaScriptCore, the module loader,
// parsing the bundle, start-up paths of wontun itself) touches 40-45 MiB of it, and those pages
// stay mapped, so they count in RSS for the life of the process although most are never used
// again (bench/README.md: RssFile). They are clean copies of the file: madvise(MADV_DONTNEED) on
// a read-only private file mapping only removes them from our page tables; they stay in the page
// cache, and a page used again is mapped back on its next access by a minor fault (the kernel
// maps up to 16 neighbouring cached pages per fault). So trimming is cheap (a few hundred minor
// faults to bring the hot code back, about a millisecond) and RSS then shows the working set.
//
// Only mappings that cannot hold anything but the file's contents are trimmed: backed by a
// regular file, not writable, and without anonymous (copy-on-write) pages, which a read-only
// mapping has after relocations were written into it (RELRO): dropping those would bring back
// unrelocated bytes. smaps says which is which at the moment of trimming.
//
// WONTUN_TRIM_FILE_PAGES: unset or "on": trim once start-up is over and again whenever file-backed
// RSS grew by 2 MiB since the last trim (checked every second: reading
// /proc/self/status costs tens of µs); "off" or "0": never; a number: check
// every that many seconds.
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import type { Logger } from "../log.ts";
import { readFileSync } from "node:fs";

const MADV_DONTNEED = 4;

let madvise: ((addr: Pointer, length: number, advice: number) => number) | null | undefined;

function madviseFn(): ((addr: Pointer, length: number, advice: number) => number) | null {
  if (madvise !== undefined) return madvise;
  try {
    const lib = dlopen("libc.so.6", { madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
    madvise = lib.symbols.madvise as (addr: Pointer, length: number, advice: number) => number;
  } catch {
    madvise = null;
  }
  return madvise;
}

/** One mapping of /proc/self/smaps that may be trimmed. */
export interface TrimmableRange {
  start: number;
  end: number;
  path: string;
  rssKiB: number;
}

/**
 * The mappings of an smaps text that hold only clean pages of a regular file: file-backed, not
 * writable, no anonymous pages, not locked. (Exported for tests.)
 */
export function trimmableRanges(smaps: string): TrimmableRange[] {
  const out: TrimmableRange[] = [];
  let cur: (TrimmableRange & { ok: boolean }) | null = null;
  const finish = () => {
    if (cur?.ok) out.push({ start: cur.start, end: cur.end, path: cur.path, rssKiB: cur.rssKiB });
  };
  for (const line of smaps.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (header) {
      finish();
      const [, start, end, perms, inode, path] = header;
      const ok = perms[1] !== "w" && inode !== "0" && path.startsWith("/") && !path.startsWith("/dev/");
      cur = { start: parseInt(start, 16), end: parseInt(end, 16), path, rssKiB: 0, ok };
      continue;
    }
    if (!cur) continue;
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (!field) {
      // VmFlags etc. "VmFlags: ... lo ..." marks a locked mapping.
      if (line.startsWith("VmFlags:") && / (lo|io|pf|dd)\b/.test(line)) cur.ok = false;
      continue;
    }
    const kib = Number(field[2]);
    if (field[1] === "Rss") cur.rssKiB = kib;
    else if ((field[1] === "Anonymous" || field[1] === "Locked" || field[1] === "Swap") && kib !== 0) cur.ok = false;
  }
  finish();
  return out;
}

/** RssFile of this process in KiB (0 if unreadable). */
export function rssFileKiB(): number {
  try {
    const m = /^RssFile:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "latin1"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface TrimResult {
  /** Mappings trimmed. */
  ranges: number;
  /** Their resident KiB before trimming. */
  residentKiB: number;
  /** RssFile before and after, KiB. */
  rssFileBeforeKiB: number;
  rssFileAfterKiB: number;
  ms: number;
}

/** Drops the clean file-backed pages of this process from its page tables, once, now. */
export function trimFilePages(): TrimResult | string {
  const fn = madviseFn();
  if (!fn) return "madvise not available";
  const t0 = performance.now();
  const before = rssFileKiB();
  let smaps: string;
  try {
    smaps = readFileSync("/proc/self/smaps", "latin1");
  } catch (e) {
    return `cannot read /proc/self/smaps: ${(e as Error).message}`;
  }
  let ranges = 0;
  let residentKiB = 0;
  for (const r of trimmableRanges(smaps)) {
    if (r.rssKiB === 0) continue;
    if (fn(r.start as unknown as Pointer, r.end - r.start, MADV_DONTNEED) === 0) {
      ranges++;
      residentKiB += r.rssKiB;
    }
  }
  return { ranges, residentKiB, rssFileBeforeKiB: before, rssFileAfterKiB: rssFileKiB(), ms: performance.now() - t0 };
}

/** What WONTUN_TRIM_FILE_PAGES asks for: the check interval in ms, or 0 for off. */
export function trimIntervalFromEnv(raw = process.env.WONTUN_TRIM_FILE_PAGES): number {
  const v = raw?.trim().toLowerCase();
  if (!v || v === "on" || v === "1" || v === "true") return 1000;
  if (v === "off" || v === "0" || v === "false") return 0;
  const seconds = Number(v);
  return Number.isFinite(seconds) && seconds > 0 ? Math.max(100, seconds * 1000) : 1000;
}

/** Trim when file-backed RSS grew at least this much since the last trim. */
const REGROWTH_KIB = 2048;
/**
 * Time after a trim before the next one, doubling with each trim up to the cap. Code used only
 * every few seconds (an idle daemon re-touched ~17 MiB of the executable within 15 s of a trim) is
 * working set too: trimming it again and again cost more CPU (the trim, then the faults) than an
 * idle daemon otherwise uses.
 */
const FIRST_GAP_MS = 10_000;
const MAX_GAP_MS = 600_000;
/** The first gap between trims after bursts (see FilePageTrimmer.check). */
const BURST_GAP_MS = 1000;

/** A running trimmer. */
export interface FilePageTrimmer {
  /**
   * What each interval tick does. `afterBurst`: the caller just finished a burst of work that
   * touched code it will rarely need again (a server answering many handshakes runs JSC's
   * compilers): trims when file-backed RSS grew by 2 MiB since the last trim, at most once per
   * burst gap (1 s, doubling to 10 min).
   */
  check(afterBurst?: boolean): void;
  stop(): void;
}

/**
 * Trims at once (the caller's start-up is over), then checks every `intervalMs` (unreferenced
 * timer: it never keeps the process alive) and trims again when file-backed RSS grew by 2 MiB
 * beyond what came back right after the last trim, at most once per gap (10 s after the first
 * trim, doubling to 10 min); and when check(true) says a burst ended. Does nothing when the
 * interval is 0.
 */
export function startFilePageTrimmer(
  intervalMs = trimIntervalFromEnv(),
  onTrim: ((r: TrimResult) => void) | null = null,
): FilePageTrimmer {
  if (intervalMs <= 0 || process.platform !== "linux") return { check() {}, stop() {} };
  // Periodic checks. What comes straight back after a trim is code in use: trimming it again
  // would only fault it back in over and over (an idle daemon trimmed every second that way). So
  // the check after a trim takes what is resident then as the baseline, and only growth beyond it
  // is trimmed.
  let baseline = -Infinity;
  let justTrimmed = false;
  let gap = FIRST_GAP_MS;
  let notBefore = 0;
  // Checks after a burst: growth beyond what the last trim left, with a gap of their own that
  // doubles too, so that steady handshake churn does not trim over and over.
  let leftByLastTrim = 0;
  let burstGap = BURST_GAP_MS;
  let burstNotBefore = 0;
  let stopped = false;

  const trim = (now: number) => {
    const r = trimFilePages();
    if (typeof r === "string") {
      stop(); // cannot work here: stop trying
      return;
    }
    justTrimmed = true;
    notBefore = now + gap;
    gap = Math.min(gap * 2, MAX_GAP_MS);
    leftByLastTrim = r.rssFileAfterKiB;
    onTrim?.(r);
  };
  const check = (afterBurst = false) => {
    if (stopped) return;
    const now = performance.now();
    if (afterBurst) {
      if (now < burstNotBefore || rssFileKiB() - leftByLastTrim < REGROWTH_KIB) return;
      burstNotBefore = now + burstGap;
      burstGap = Math.min(burstGap * 2, MAX_GAP_MS);
      trim(now);
      return;
    }
    if (now < notBefore) return;
    const resident = rssFileKiB();
    if (justTrimmed) {
      justTrimmed = false;
      baseline = resident;
      return;
    }
    if (resident - baseline >= REGROWTH_KIB) trim(now);
  };
  const timer = setInterval(() => check(), intervalMs);
  timer.unref?.();
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  check();
  return { check, stop };
}

/** The daemon's trimmer, once it runs (start-up's pages are then done with): each trim at debug level. */
export function trimFilePagesFromNowOn(log: Logger): FilePageTrimmer {
  return startFilePageTrimmer(undefined, (r) => {
    if (log.debugOn) log.debug(`file-backed pages trimmed: ${(r.rssFileBeforeKiB / 1024).toFixed(1)} -> ${(r.rssFileAfterKiB / 1024).toFixed(1)} MiB in ${r.ms.toFixed(1)} ms`);
  });
}
