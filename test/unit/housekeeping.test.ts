// The device's idle-time work on a fake clock: the protocol's preparation, the settle step that
// waits until handshakes have stopped for a while, and heap compaction with its limits.
import { describe, expect, test } from "bun:test";
import type { Bind } from "../../src/device/bind.ts";
import { COMPACT_AFTER_HANDSHAKES, COMPACT_EVERY_MS, Housekeeping, SETTLE_AFTER_HANDSHAKES_MS } from "../../src/device/housekeeping.ts";
import type { Logger } from "../../src/log.ts";
import type { TunnelProtocol } from "../../src/protocol/tunnel.ts";

const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };

function setup(toPrepare = 0) {
  const protocol = {
    handshakeMessages: 0,
    left: toPrepare,
    batches: [] as number[],
    prepare(batch: number): boolean {
      this.batches.push(batch);
      this.left = Math.max(0, this.left - batch);
      return this.left > 0;
    },
  };
  const bind = { idles: 0, idle() { this.idles++; } };
  const counts = { collections: 0, settled: 0 };
  let heap = 1 << 20;
  const hk = new Housekeeping({
    protocol: protocol as unknown as TunnelProtocol,
    bind: bind as unknown as Bind,
    log: quiet,
    heapSize: () => heap,
    collect: () => counts.collections++,
  });
  hk.onSettled = () => counts.settled++;
  const grow = (bytes: number) => (heap += bytes);
  return { hk, protocol, bind, counts, grow };
}

describe("Housekeeping", () => {
  test("prepares in batches while idle, and keeps the loop awake until done", () => {
    const { hk, protocol } = setup(40);
    expect(hk.preparing).toBe(true);
    hk.idle(0);
    expect(hk.preparing).toBe(true);
    hk.idle(1);
    hk.idle(2);
    expect(hk.preparing).toBe(false);
    expect(protocol.batches).toEqual([16, 16, 16]);
  });

  test("the settle step waits until no handshake came for a while, then runs once", () => {
    const { hk, protocol, bind, counts } = setup();
    hk.idle(0); // start-up: the first compaction
    expect(counts.collections).toBe(1);
    expect(hk.wakeAt()).toBe(Infinity);

    protocol.handshakeMessages = 3;
    hk.noteRound(2000);
    hk.endpointSet();
    expect(hk.wakeAt()).toBe(2000 + SETTLE_AFTER_HANDSHAKES_MS);
    hk.idle(2000 + SETTLE_AFTER_HANDSHAKES_MS - 1);
    expect(bind.idles).toBe(0);
    expect(counts.settled).toBe(1); // the start-up compaction's
    hk.idle(2000 + SETTLE_AFTER_HANDSHAKES_MS);
    expect(bind.idles).toBe(1);
    expect(counts.settled).toBe(2);
    expect(hk.wakeAt()).toBe(Infinity);
    for (let t = 2100; t < 5000; t += 100) hk.idle(t);
    expect(bind.idles).toBe(1);

    // A new endpoint without a handshake (roaming) is settled at the next idle, with no call of
    // onSettled (no new code ran that a page trim would be for).
    hk.endpointSet();
    hk.idle(5000);
    expect(bind.idles).toBe(2);
    expect(counts.settled).toBe(2);
  });

  test("a compaction put off by its once-a-second limit never wakes the loop before handshakes settle", () => {
    const { hk, protocol, counts } = setup();
    hk.idle(0);
    expect(counts.collections).toBe(1);
    protocol.handshakeMessages = COMPACT_AFTER_HANDSHAKES;
    hk.noteRound(100);
    hk.idle(100 + SETTLE_AFTER_HANDSHAKES_MS); // settles, but the last compaction was 150 ms ago
    expect(counts.collections).toBe(1);
    expect(hk.wakeAt()).toBe(COMPACT_EVERY_MS);

    // Handshakes keep coming past the compaction's due time: the wake-up follows them.
    for (let t = 900; t <= 1500; t += 20) {
      protocol.handshakeMessages++;
      hk.noteRound(t);
      expect(hk.wakeAt()).toBeGreaterThanOrEqual(t + SETTLE_AFTER_HANDSHAKES_MS);
      hk.idle(t + 10);
    }
    expect(counts.collections).toBe(1);
    hk.idle(1500 + SETTLE_AFTER_HANDSHAKES_MS);
    expect(counts.collections).toBe(2);
    expect(hk.wakeAt()).toBe(Infinity);
  });

  test("compacts after many handshakes or much heap growth, at most once a second", () => {
    const { hk, protocol, counts, grow } = setup();
    hk.idle(0);
    hk.idle(2000);
    expect(counts.collections).toBe(1); // nothing happened since
    grow(5 << 20);
    hk.idle(2500);
    expect(counts.collections).toBe(2);
    grow(5 << 20);
    hk.idle(2600); // within a second of the last
    expect(counts.collections).toBe(2);
    hk.idle(3600);
    expect(counts.collections).toBe(3);
    protocol.handshakeMessages = COMPACT_AFTER_HANDSHAKES - 1;
    hk.noteRound(4000);
    hk.idle(5000);
    expect(counts.collections).toBe(3);
    protocol.handshakeMessages = COMPACT_AFTER_HANDSHAKES;
    hk.noteRound(6000);
    hk.idle(6000 + SETTLE_AFTER_HANDSHAKES_MS);
    expect(counts.collections).toBe(4);
  });
});
