// What the device does when its loop is about to sleep, and when: the protocol's preparation of
// handshakes to come, then, once handshakes have settled, the work that can wait (the Bind's
// deferred sockets, a heap compaction, the page trimmer's check). Timing only, on the device's
// clock: the device calls noteRound() after each round and idle() before it sleeps, and bounds
// its sleep by wakeAt().
import { heapSize as jscHeapSize } from "bun:jsc";
import type { Logger } from "../log.ts";
import type { TunnelProtocol } from "../protocol/tunnel.ts";
import type { Bind } from "./bind.ts";

/** Peers whose handshake work the protocol prepares per idle round (X25519: ~30 µs each). */
const PREPARE_BATCH = 16;
/**
 * Work that can wait waits until no handshake came for this long: a server taking a burst of
 * handshakes answers them all first.
 */
export const SETTLE_AFTER_HANDSHAKES_MS = 50;
/** Heap compaction (see compact): once the heap grew this much, at most this often. */
const COMPACT_AFTER_GROWTH = 4 << 20;
export const COMPACT_EVERY_MS = 1000;
/** ...or after this many handshake messages: their garbage is mostly small objects, which eden
 *  collections keep out of heapSize() but which leave heap blocks partly used and kept. */
export const COMPACT_AFTER_HANDSHAKES = 128;

export interface HousekeepingOptions {
  protocol: TunnelProtocol;
  bind: Bind;
  log: Logger;
  /** The JS heap's size in bytes, and a full collection that hands freed memory back (tests replace them). */
  heapSize?: () => number;
  collect?: () => void;
}

export class Housekeeping {
  /**
   * Called after the settle step that follows handshakes (the Bind's deferred work done) and after
   * a compaction: the daemon checks its page trimmer then, since Bun's timers may wait for the
   * device's long sleep. A settle for new endpoints alone (configured ones at start, roaming) ran
   * no new code worth trimming after.
   */
  onSettled: (() => void) | null = null;
  /** The protocol has more to prepare: the device's next wait should not sleep. */
  preparing = true;

  private readonly protocol: TunnelProtocol;
  private readonly bind: Bind;
  private readonly log: Logger;
  private readonly heapSize: () => number;
  private readonly collect: () => void;
  /** Handshakes or new endpoints await the settle step; when the last handshake came, and the count then. */
  private settlePending = false;
  private handshakesPending = false;
  private lastHandshakeAt = Number.NEGATIVE_INFINITY;
  private handshakesSeen = 0;
  /** JS heap size after the last compaction, when that was, and protocol.handshakeMessages then. */
  private heapAfterCompaction = 0;
  private lastCompaction = Number.NEGATIVE_INFINITY;
  private handshakesAtCompaction = 0;
  /** A compaction the settle step found too soon after the last one, due then (Infinity: none). */
  private compactAt = Number.POSITIVE_INFINITY;

  constructor(options: HousekeepingOptions) {
    this.protocol = options.protocol;
    this.bind = options.bind;
    this.log = options.log;
    this.heapSize = options.heapSize ?? jscHeapSize;
    this.collect =
      options.collect ??
      (() => {
        Bun.gc(true);
        Bun.shrink();
      });
  }

  /** After each round of work: handshake messages since the last one put off the settle step. */
  noteRound(now: number): void {
    const handshakes = this.protocol.handshakeMessages;
    if (handshakes === this.handshakesSeen) return;
    this.handshakesSeen = handshakes;
    this.lastHandshakeAt = now;
    this.settlePending = true;
    this.handshakesPending = true;
  }

  /** The device gave a route a new endpoint: the Bind's deferred work is due at the settle step. */
  endpointSet(): void {
    this.settlePending = true;
  }

  /**
   * When the deferred work wants the loop awake (Infinity: never): the settle step, and a
   * compaction put off by the once-a-second limit; neither runs before handshakes have settled.
   */
  wakeAt(): number {
    const settleAt = this.lastHandshakeAt + SETTLE_AFTER_HANDSHAKES_MS;
    let at = this.settlePending ? settleAt : Number.POSITIVE_INFINITY;
    if (this.compactAt !== Number.POSITIVE_INFINITY) at = Math.min(at, Math.max(this.compactAt, settleAt));
    return at;
  }

  /** The loop is about to sleep. */
  idle(now: number): void {
    this.preparing = this.protocol.prepare?.(PREPARE_BATCH) ?? false;
    if (now - this.lastHandshakeAt < SETTLE_AFTER_HANDSHAKES_MS) return;
    const settling = this.settlePending;
    const afterHandshakes = this.handshakesPending;
    this.settlePending = false;
    this.handshakesPending = false;
    if (settling) this.bind.idle();
    let compacted = false;
    if (now - this.lastCompaction >= COMPACT_EVERY_MS) {
      this.compactAt = Number.POSITIVE_INFINITY;
      compacted = this.worthCompacting();
      if (compacted) this.compact(now);
    } else if (settling) {
      this.compactAt = this.lastCompaction + COMPACT_EVERY_MS;
    }
    if (afterHandshakes || compacted) this.onSettled?.();
  }

  /** Compacts at once: a daemon calls this once running, so that its first page trim comes after. */
  compactNow(now: number): void {
    this.compactAt = Number.POSITIVE_INFINITY;
    this.compact(now);
  }

  /**
   * Enough control work since the last compaction: many handshakes, or much heap growth; or none
   * yet (start-up's garbage: collected at the first idle rather than at the first wake-up of an
   * idle daemon, seconds later).
   */
  private worthCompacting(): boolean {
    if (this.lastCompaction === Number.NEGATIVE_INFINITY) return true;
    const handshakes = this.protocol.handshakeMessages - this.handshakesAtCompaction;
    return handshakes >= COMPACT_AFTER_HANDSHAKES || this.heapSize() > this.heapAfterCompaction + COMPACT_AFTER_GROWTH;
  }

  /**
   * The data path allocates nothing, so the JS heap only grows from control work: handshakes
   * (Noise state, key material) and peers coming and going. After such a burst, collect and hand
   * the freed memory back instead of keeping the heap at its high-water mark: with 1000 peers RSS
   * settles at ~67 MiB instead of staying at ~83 (see bench/scale.ts). A collection of a ~12 MB
   * heap takes 7-20 ms.
   */
  private compact(now: number): void {
    this.handshakesAtCompaction = this.protocol.handshakeMessages;
    const before = this.heapSize();
    const t0 = performance.now();
    this.collect();
    this.heapAfterCompaction = this.heapSize();
    this.lastCompaction = now;
    if (this.log.debugOn) {
      const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
      this.log.debug(`heap compacted: ${mib(before)} -> ${mib(this.heapAfterCompaction)} MiB in ${(performance.now() - t0).toFixed(1)} ms`);
    }
  }
}
