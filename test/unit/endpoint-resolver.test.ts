// The background endpoint resolver on a fake clock and a scripted lookup: the backoff schedule,
// the per-attempt timeout, reresolve-dns's stale-handshake rule, reload tracking and stop().
import { describe, expect, test } from "bun:test";
import { EndpointResolver, literalEndpoint, namedEndpoints, type NamedEndpoint, type ResolverClock } from "../../src/daemon/endpoint-resolver.ts";
import type { DeviceChange, DeviceStatus, PeerStatus } from "../../src/control/model.ts";
import { formatIp } from "../../src/net/ip.ts";
import type { Logger } from "../../src/log.ts";
import type { PeerConfig } from "../../src/config/model.ts";

class FakeClock implements ResolverClock {
  t = 1_700_000_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward, firing due timers in order and letting promise callbacks run between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flush();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await flush();
    }
    this.t = end;
  }
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };

function fakeOperations(clock: FakeClock) {
  const applied: { at: number; name: string; endpoint: string }[] = [];
  const handshakeMs = new Map<string, number>();
  return {
    applied,
    handshakeMs,
    apply(change: DeviceChange) {
      for (const p of change.peers) {
        expect(p.updateOnly).toBe(true);
        expect(p.replaceAllowedIps).toBe(false);
        applied.push({ at: clock.t, name: p.name, endpoint: `${formatIp(p.endpoint!.address)}:${p.endpoint!.port}` });
      }
    },
    status(): DeviceStatus {
      const peers = [...handshakeMs].map(([name, ms]) => ({ name, publicKey: null, lastHandshake: { sec: Math.floor(ms / 1000), nsec: 0 } }) as PeerStatus);
      return { peers } as DeviceStatus;
    },
  };
}

const target = (name: string, host: string, port = 51820): NamedEndpoint => ({ publicKey: null, name, host, port });

describe("EndpointResolver", () => {
  test("a name that fails at once is retried after 1, 2, 4, … s, capped at 60 s, and applied when it resolves", async () => {
    const clock = new FakeClock();
    const ops = fakeOperations(clock);
    const attempts: number[] = [];
    let answer: string | null = null;
    const r = new EndpointResolver({
      operations: ops, log: quiet, clock,
      lookup: async () => {
        attempts.push(clock.t);
        if (answer) return answer;
        throw new Error("ENOTFOUND");
      },
    });
    const t0 = clock.t;
    r.track([target("a", "a.example")]);
    await clock.advance(200_000);
    expect(attempts.map((t) => (t - t0) / 1000)).toEqual([0, 1, 3, 7, 15, 31, 63, 123, 183]);
    answer = "192.0.2.7";
    await clock.advance(60_000);
    expect(ops.applied).toEqual([{ at: t0 + 243_000, name: "a", endpoint: "192.0.2.7:51820" }]);
    r.stop();
    expect(clock.pending).toBe(0);
  });

  test("a lookup that hangs counts as failed after the attempt timeout (5 s), so the retries go on", async () => {
    const clock = new FakeClock();
    const ops = fakeOperations(clock);
    const attempts: number[] = [];
    let hang = true;
    const r = new EndpointResolver({
      operations: ops, log: quiet, clock,
      lookup: (host) => {
        attempts.push(clock.t);
        return hang ? new Promise<string>(() => {}) : Promise.resolve("2001:db8::5");
      },
    });
    const t0 = clock.t;
    r.track([target("a", "a.example", 9)]);
    await clock.advance(20_000);
    // 0: times out at 5, retry at 6; times out at 11, retry at 13; times out at 18 …
    expect(attempts.map((t) => (t - t0) / 1000)).toEqual([0, 6, 13]);
    hang = false;
    await clock.advance(10_000);
    expect(ops.applied.map((a) => [(a.at - t0) / 1000, a.endpoint])).toEqual([[22, "2001:db8::5:9"]]);
    r.stop();
    expect(clock.pending).toBe(0);
  });

  test("re-resolved while the peer has no handshake newer than 135 s (as reresolve-dns), left alone otherwise", async () => {
    const clock = new FakeClock();
    const ops = fakeOperations(clock);
    let address = "192.0.2.1";
    let lookups = 0;
    const r = new EndpointResolver({
      operations: ops, log: quiet, clock, recheckMs: 30_000,
      lookup: async () => {
        lookups++;
        return address;
      },
    });
    ops.handshakeMs.set("a", clock.t); // a fresh handshake
    r.track([target("a", "a.example")]);
    await flush();
    expect(lookups).toBe(1);
    // Checks at 30, 60, 90, 120 s: the handshake is at most 120 s old, no lookup.
    await clock.advance(120_000);
    expect(lookups).toBe(1);
    // At 150 s it is 150 s old: resolved again, and the new address is applied.
    address = "192.0.2.2";
    await clock.advance(30_000);
    expect(lookups).toBe(2);
    expect(ops.applied.map((a) => a.endpoint)).toEqual(["192.0.2.1:51820", "192.0.2.2:51820"]);
    // Never a handshake: every check resolves again.
    ops.handshakeMs.set("a", 0);
    await clock.advance(60_000);
    expect(lookups).toBe(4);
    r.stop();
  });

  test("track() on reload keeps unchanged peers, restarts changed ones, drops removed ones; stop() ends everything", async () => {
    const clock = new FakeClock();
    const ops = fakeOperations(clock);
    const asked: string[] = [];
    let hang = true;
    const r = new EndpointResolver({
      operations: ops, log: quiet, clock,
      lookup: (host) => {
        asked.push(host);
        return hang ? new Promise<string>(() => {}) : Promise.resolve("198.51.100.1");
      },
    });
    r.track([target("a", "a.example"), target("b", "b.example")]);
    expect(asked).toEqual(["a.example", "b.example"]);
    r.track([target("a", "a.example"), target("b", "b2.example")]);
    expect(asked).toEqual(["a.example", "b.example", "b2.example"]);
    r.track([target("b", "b2.example")]);
    expect(r.size).toBe(1);
    hang = false;
    await clock.advance(10_000);
    // Only b's current name was applied; a's and b's old lookups were dropped.
    expect(ops.applied.map((a) => a.name)).toEqual(["b"]);
    r.stop();
    expect(clock.pending).toBe(0);
    r.track([target("c", "c.example")]);
    expect(r.size).toBe(0);
  });

  test("a result that arrives after stop() is ignored", async () => {
    const clock = new FakeClock();
    const ops = fakeOperations(clock);
    let finish: (s: string) => void = () => {};
    const r = new EndpointResolver({ operations: ops, log: quiet, clock, lookup: () => new Promise<string>((res) => (finish = res)) });
    r.track([target("a", "a.example")]);
    r.stop();
    finish("192.0.2.9");
    await flush();
    expect(ops.applied).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  test("namedEndpoints picks hostname endpoints only; literalEndpoint answers IP literals only", () => {
    const peer = (name: string, host: string | null) => ({ name, publicKey: null, endpoint: host ? { host, port: 1 } : null }) as PeerConfig;
    const names = namedEndpoints([peer("a", "192.0.2.1"), peer("b", "vpn.example"), peer("c", null), peer("d", "2001:db8::1")]);
    expect(names.map((n) => n.name)).toEqual(["b"]);
    expect(literalEndpoint({ host: "vpn.example", port: 1 })).toBeNull();
    expect(formatIp(literalEndpoint({ host: "2001:db8::1", port: 1 })!.address)).toBe("2001:db8::1");
  });
});
