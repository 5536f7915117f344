// SharedSessions (src/threads/shared-sessions.ts), the state the data-path threads share: slots
// and generations, counter blocks (unique across threads, none from a retired keypair), and the shared replay window (exact against a model, and each counter
// accepted once even when two threads check it at the same time). The concurrent cases
// run in real Workers.
import { describe, expect, test } from "bun:test";
import { WINDOW_SIZE } from "../../src/protocol/wireguard/replay.ts";
import { COUNTER_BLOCK, KF_INITIATOR, SHARED_WINDOW_SIZE, SharedSessions } from "../../src/threads/shared-sessions.ts";
import { seededRandom } from "../helpers/wontun-sim.ts";

const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);

function table(): { sessions: SharedSessions; index: number; slot: number; generation: number } {
  const sessions = new SharedSessions(undefined, 64);
  const peer = sessions.peerSlot(7);
  const index = sessions.allocateIndex(0xbeef);
  sessions.publish(index, peer, 0x1234, KEY_A, KEY_B, KF_INITIATOR, 0);
  const slot = sessions.slotOfIndex(index);
  return { sessions, index, slot, generation: sessions.generation(slot) };
}

function runWorkers(jobs: object[]): Promise<number[][]> {
  const go = new Int32Array(new SharedArrayBuffer(4));
  const results = jobs.map((job) => new Promise<number[]>((resolve, reject) => {
    const worker = new Worker(new URL("./fixtures/sessions-worker.ts", import.meta.url).href);
    worker.onmessage = (e: MessageEvent<number[]>) => {
      resolve(e.data);
      worker.terminate();
    };
    worker.onerror = (e) => reject(new Error(e.message));
    worker.postMessage({ ...job, go });
  }));
  setTimeout(() => Atomics.store(go, 0, 1), 200);
  return Promise.all(results);
}

describe("SharedSessions: keypair slots", () => {
  test("a published keypair is found by its index, its keys read back, and it is gone once released", () => {
    const { sessions, index, slot, generation } = table();
    expect(index & 0xffff).toBe(slot);
    expect(SharedSessions.live(generation)).toBe(true);
    expect(sessions.remoteIndex(slot)).toBe(0x1234);
    const send = new Uint8Array(32);
    const recv = new Uint8Array(32);
    expect(sessions.readKeys(slot, generation, send, recv)).toBe(true);
    expect(send).toEqual(KEY_A);
    expect(recv).toEqual(KEY_B);
    expect(sessions.slotOfIndex(index ^ 0x10000)).toBe(-1); // same slot, other random bits
    sessions.releaseIndex(index);
    expect(sessions.slotOfIndex(index)).toBe(-1);
    expect(SharedSessions.live(sessions.generation(slot))).toBe(false);
    expect(sessions.readKeys(slot, generation, send, recv)).toBe(false);
  });

  test("counter blocks: each handed out once, in order; none after the keypair is retired", () => {
    const { sessions, index, slot, generation } = table();
    for (let i = 0; i < 300; i++) expect(sessions.reserveBlock(slot, generation)).toBe(i);
    sessions.releaseIndex(index);
    expect(sessions.reserveBlock(slot, generation)).toBe(-1);
    // The slot's next keypair counts from block 0 again, for its own generation only: a thread
    // still holding the old generation burns the block it took (block 0), which is never used.
    const again = sessions.allocateIndex(1);
    expect(again & 0xffff).toBe(slot);
    sessions.publish(again, 0, 1, KEY_A, KEY_B, 0, 0);
    expect(sessions.reserveBlock(slot, generation)).toBe(-1);
    expect(sessions.reserveBlock(slot, sessions.generation(slot))).toBe(1);
  });

  test("the shared replay window: each counter at most once, anything within SHARED_WINDOW_SIZE of the highest, nothing older", () => {
    const { sessions, slot } = table();
    // The model: a set of every counter accepted, and the highest.
    const seen = new Set<number>();
    let highest = -1;
    const random = seededRandom(42);
    let base = 0;
    for (let i = 0; i < 50_000; i++) {
      // Mostly forward, some far behind (around the window's edge), some repeats, some jumps.
      const r = random();
      base += r < 0.01 ? 80_000 : Math.floor(random() * 4);
      const counter = r < 0.3 ? Math.max(0, base - Math.floor(random() * (SHARED_WINDOW_SIZE + 400))) : base;
      const expected = !seen.has(counter) && (counter > highest || highest - counter <= SHARED_WINDOW_SIZE);
      expect(sessions.acceptCounter(slot, counter)).toBe(expected);
      if (expected) {
        seen.add(counter);
        highest = Math.max(highest, counter);
      }
    }
    expect(SHARED_WINDOW_SIZE).toBeGreaterThanOrEqual(4 * WINDOW_SIZE);
  });
});

describe("SharedSessions: two threads at once (Workers)", () => {
  test("two threads taking 20000 blocks each from one keypair never get the same block", async () => {
    const { sessions, slot, generation } = table();
    const job = { layout: sessions.layout, slot, generation, threads: 2, kind: "blocks", count: 20_000 };
    const [zero, one] = await runWorkers([{ ...job, thread: 0 }, { ...job, thread: 1 }]);
    const all = new Set([...zero, ...one]);
    expect([...zero, ...one].every((b) => b >= 0)).toBe(true);
    expect(all.size).toBe(40_000);
    // So every counter sent is unique: block b covers [b * 256, b * 256 + 256).
    expect(COUNTER_BLOCK).toBe(256);
  });

  test("two threads checking the same 30000 counters (each in its own order) accept each exactly once", async () => {
    const { sessions, slot } = table();
    const count = 30_000;
    // Orders that stay inside the replay window: counters shuffled within runs of 1000.
    const order = (seed: number) => {
      const random = seededRandom(seed);
      const out: number[] = [];
      for (let start = 0; start < count; start += 1000) {
        const run = Array.from({ length: 1000 }, (_, i) => start + i);
        for (let i = run.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [run[i], run[j]] = [run[j], run[i]];
        }
        out.push(...run);
      }
      return out;
    };
    const job = { layout: sessions.layout, slot, generation: 0, thread: 0, threads: 2, kind: "replay", count };
    const [first, second] = await runWorkers([{ ...job, order: order(1) }, { ...job, order: order(2) }]);
    const accepted = [...first, ...second].sort((x, y) => x - y);
    expect(accepted.length).toBe(count);
    expect(new Set(accepted).size).toBe(count);
  });
});

describe("thread count", () => {
  test("auto is one per core up to 4, and 1 on 2 cores or fewer; numbers 1-16; anything else is refused in one line", async () => {
    const { autoThreads, parseThreads } = await import("../../src/threads/thread-count.ts");
    expect([1, 2, 3, 4, 8, 64].map((c) => autoThreads(c))).toEqual([1, 1, 3, 4, 4, 4]);
    expect(parseThreads(" 16 ")).toBe(16);
    expect(parseThreads("AUTO")).toBe(autoThreads());
    for (const bad of ["0", "17", "1.5", "-1", "", "two"]) expect(typeof parseThreads(bad)).toBe("string");
  });
});
