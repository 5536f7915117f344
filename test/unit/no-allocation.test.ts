// The data path allocates nothing per packet (preallocated buffers, no closures per packet), nor
// per round of the device loop: a WireGuard session carrying traffic both ways, its timers armed
// and cleared by every round trip, the control socket's per-round timer and an idle moment create
// no JavaScript objects. Counted with JavaScriptCore's heap statistics, which include objects not
// yet collected: after a full collection, whatever the code under test creates shows.
import { describe, expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import { wgPair } from "../helpers/wg-sim.ts";
import { Outcome, type ControlSink } from "../../src/protocol/tunnel.ts";
import { ControlServer, type ControlHandler, type FdWatcher } from "../../src/control/server.ts";
import { Housekeeping } from "../../src/device/housekeeping.ts";
import type { Bind } from "../../src/device/bind.ts";
import type { Logger } from "../../src/log.ts";

const sink: ControlSink = { sendControl() {} };
const ROUNDS = 4000;

/** Objects of each type counted after `fn` ran less before (a full collection first). */
function countDuring(fn: () => void): Map<string, number> {
  Bun.gc(true);
  const before = heapStats().objectTypeCounts as Record<string, number>;
  fn();
  const after = heapStats().objectTypeCounts as Record<string, number>;
  return new Map(Object.entries(after).map(([type, count]) => [type, count - (before[type] ?? 0)]));
}

/** Objects of each type `fn` creates, beyond what counting itself creates (below `floor`: left out). */
function objectsCreatedBy(fn: () => void, floor: number): Record<string, number> {
  fn(); // warm up: the JIT's own objects are not the loop's
  const counting = countDuring(() => {});
  const created: Record<string, number> = {};
  for (const [type, count] of countDuring(fn)) {
    const extra = count - (counting.get(type) ?? 0);
    if (extra >= floor) created[type] = extra;
  }
  return created;
}

/** An IPv4/UDP packet of `length` bytes at buf[at..], from 10.0.0.x to 10.0.0.y. */
function writePacket(buf: Uint8Array, at: number, length: number, x: number, y: number): void {
  buf.fill(0, at, at + length);
  buf[at] = 0x45;
  buf[at + 2] = length >> 8;
  buf[at + 3] = length & 0xff;
  buf[at + 8] = 64;
  buf[at + 9] = 17;
  buf[at + 12] = 10;
  buf[at + 15] = x;
  buf[at + 16] = 10;
  buf[at + 19] = y;
}

describe("no allocation per packet", () => {
  test("WireGuard transport both ways, with the timers each round trip arms", () => {
    const { net, a, b } = wgPair();
    a.send(0, "hello");
    net.run(200);
    b.send(0, "back");
    net.run(200);
    expect(b.delivered).toEqual(["hello"]);
    const source = new Uint8Array(32); // the sockaddr the datagrams "came from"
    source[0] = 2;
    source.set([192, 0, 2, 9], 4);
    const buf = new Uint8Array(2048);
    let now = net.now;
    let delivered = 0;
    const oneWay = (from: typeof a, to: typeof a, length: number) => {
      writePacket(buf, 64, length, 1, 2);
      if (from.protocol.encapsulate(0, buf, 64, length, now, sink) !== Outcome.Send) return;
      const r = from.protocol.result;
      if (to.protocol.receive(r.buffer, r.offset, r.length, source, 0, now, sink) === Outcome.Deliver) delivered++;
    };
    const created = objectsCreatedBy(() => {
      for (let i = 0; i < ROUNDS; i++) {
        oneWay(a, b, i % 2 ? 1400 : 60); // long and short payloads take different AEAD backends
        oneWay(b, a, 60);
        now += 0.05;
      }
    }, 0.01 * ROUNDS);
    expect(delivered).toBe(4 * ROUNDS);
    expect(created).toEqual({});
  });

  test("the control socket's timer, which the device loop asks every round, with no client connected", () => {
    const server = new ControlServer({ path: "/nonexistent/wontun-test.sock", handler: {} as ControlHandler, watcher: {} as FdWatcher });
    let deadline = 0;
    const created = objectsCreatedBy(() => {
      for (let i = 0; i < ROUNDS; i++) {
        deadline = server.nextDeadline();
        server.tick(i);
      }
    }, 0.01 * ROUNDS);
    expect(deadline).toBe(Number.POSITIVE_INFINITY);
    expect(created).toEqual({});
  });

  test("an idle moment with nothing to prepare, settle or compact (asked before every sleep)", () => {
    const { a } = wgPair();
    const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };
    const housekeeping = new Housekeeping({ protocol: a.protocol, bind: { idle() {} } as unknown as Bind, log: quiet, heapSize: () => 1, collect: () => {} });
    let now = 0;
    while (housekeeping.preparing) housekeeping.idle((now += 10)); // the peers' DH, then the first compaction
    const created = objectsCreatedBy(() => {
      for (let i = 0; i < ROUNDS; i++) housekeeping.idle((now += 10));
    }, 0.01 * ROUNDS);
    expect(housekeeping.preparing).toBe(false);
    expect(created).toEqual({});
  });
});
