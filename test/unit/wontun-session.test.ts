import { describe, expect, test } from "bun:test";
import { SimNet } from "../helpers/wontun-sim.ts";
import { Outcome } from "../../src/protocol/tunnel.ts";
import { WontunProtocol } from "../../src/protocol/wontun/protocol.ts";
import { writeHandshakeInit, encodeName, writeDataHeader } from "../../src/protocol/wontun/messages.ts";

function clientServer(seed = 1) {
  const net = new SimNet(seed);
  const server = net.add({ name: "server", peers: [{ name: "client-A", endpoint: false }] });
  const client = net.add({ name: "client-A", peers: [{ name: "server", endpoint: true }] });
  return { net, server, client };
}

describe("wontun session: the seed's blessed path", () => {
  test("client with an endpoint initiates; both end connected; data flows both ways", () => {
    const { net, server, client } = clientServer();
    net.run(100);
    expect(client.connected("server")).toBe(true);
    expect(server.connected("client-A")).toBe(true);
    expect(client.sendData("server", "Hello?")).toBe(true);
    expect(server.sendData("client-A", "World!")).toBe(true);
    net.run(100);
    expect(server.delivered).toEqual(["Hello?"]);
    expect(client.delivered).toEqual(["World!"]);
  });

  test("indices are swapped: each side sends the other's local index", () => {
    const net = new SimNet();
    // Server knows two clients; client-B is its peer index 1.
    const server = net.add({ name: "server", peers: [{ name: "client-A", endpoint: false }, { name: "client-B", endpoint: false }] });
    const b = net.add({ name: "client-B", peers: [{ name: "server", endpoint: true }] });
    net.run(100);
    expect(b.protocol.sessions.get(0)!.remoteIndex).toBe(1);
    expect(server.protocol.sessions.get(1)!.remoteIndex).toBe(0);
  });

  test("a server without endpoint sends nothing and holds nothing it cannot deliver", () => {
    const net = new SimNet();
    const server = net.add({ name: "server", peers: [{ name: "client-A", endpoint: false }] });
    expect(server.sendData("client-A", "x")).toBe(false);
    net.run(120_000);
    expect(net.sent).toBe(0);
  });
});

describe("wontun session: loss, restart, simultaneous initiation", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    test(`handshake completes under 30% loss (seed ${seed})`, () => {
      const { net, server, client } = clientServer(seed);
      net.loss = 0.3;
      net.run(30_000);
      expect(client.protocol.sessions.get(0)!.canSend).toBe(true);
      expect(server.protocol.sessions.get(0)!.canSend).toBe(true);
    });
  }

  test("handshake completes under 70% loss given time (backoff keeps retrying)", () => {
    const { net, client, server } = clientServer(9);
    net.loss = 0.7;
    net.run(80_000);
    expect(client.protocol.sessions.get(0)!.canSend && server.protocol.sessions.get(0)!.canSend).toBe(true);
  });

  test("retransmits back off: 1 s, 2 s, 4 s, 8 s, 8 s ... and stop after 90 s", () => {
    const net = new SimNet();
    const client = net.add({ name: "client-A", peers: [{ name: "server", endpoint: true }] });
    const times: number[] = [];
    net.tap = (from) => {
      if (from === "client-A") times.push(net.now);
    };
    client.boot(); // again, now that the tap watches
    net.run(200_000);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(1000);
    expect(gaps[0]).toBeLessThan(1400);
    expect(gaps[1]).toBeGreaterThanOrEqual(2000);
    expect(gaps[2]).toBeGreaterThanOrEqual(4000);
    expect(gaps[3]).toBeGreaterThanOrEqual(8000);
    expect(gaps[4]).toBeLessThan(8400);
    expect(times[times.length - 1]).toBeLessThanOrEqual(91_000);
    expect(client.protocol.stateName(0)).toBe("none");
  });

  test("server restart: the client's next data makes the server handshake back", () => {
    const { net, server, client } = clientServer();
    net.run(100);
    server.boot(); // lost everything, including the client's endpoint
    expect(server.connected("client-A")).toBe(false);
    expect(client.sendData("server", "after restart")).toBe(true);
    net.run(200);
    expect(server.delivered).toEqual(["after restart"]);
    expect(server.protocol.sessions.get(0)!.canSend).toBe(true);
    expect(server.sendData("client-A", "reply")).toBe(true);
    net.run(100);
    expect(client.delivered).toEqual(["reply"]);
  });

  test("client restart: its new Init is accepted although the server is connected", () => {
    const { net, server, client } = clientServer();
    net.run(100);
    expect(server.connected("client-A")).toBe(true);
    client.boot();
    net.run(100);
    expect(client.connected("server")).toBe(true);
    expect(server.connected("client-A")).toBe(true);
    expect(client.sendData("server", "hi")).toBe(true);
    net.run(50);
    expect(server.delivered).toEqual(["hi"]);
  });

  test("server down for a while, then back: traffic resumes without intervention", () => {
    const { net, server, client } = clientServer();
    net.run(100);
    net.hosts.delete("server"); // datagrams to it vanish
    client.sendData("server", "lost");
    net.run(40_000);
    net.hosts.set("server", server);
    server.boot();
    client.sendData("server", "back");
    net.run(20_000);
    expect(server.delivered).toContain("back");
    expect(server.protocol.sessions.get(0)!.canSend).toBe(true);
    expect(client.protocol.sessions.get(0)!.canSend).toBe(true);
  });

  test("both sides have endpoints and initiate at once: no deadlock", () => {
    const net = new SimNet();
    net.latency = 50; // the Inits cross in flight
    const a = net.add({ name: "A", peers: [{ name: "B", endpoint: true }] });
    const b = net.add({ name: "B", peers: [{ name: "A", endpoint: true }] });
    net.run(500);
    expect(a.connected("B")).toBe(true);
    expect(b.connected("A")).toBe(true);
    expect(a.sendData("B", "1")).toBe(true);
    expect(b.sendData("A", "2")).toBe(true);
    net.run(200);
    expect(b.delivered).toEqual(["1"]);
    expect(a.delivered).toEqual(["2"]);
  });

  test("simultaneous initiation under loss still converges", () => {
    for (const seed of [11, 12, 13]) {
      const net = new SimNet(seed);
      net.loss = 0.3;
      const a = net.add({ name: "A", peers: [{ name: "B", endpoint: true }] });
      const b = net.add({ name: "B", peers: [{ name: "A", endpoint: true }] });
      net.run(30_000);
      expect(a.protocol.sessions.get(0)!.canSend && b.protocol.sessions.get(0)!.canSend).toBe(true);
    }
  });

  test("persistent keepalive sends an empty Data every N seconds", () => {
    const net = new SimNet();
    const server = net.add({ name: "server", peers: [{ name: "client-A", endpoint: false }] });
    const client = net.add({ name: "client-A", peers: [{ name: "server", endpoint: true, keepalive: 5 }] });
    net.run(100);
    const before = net.sent;
    net.run(30_000);
    // ~6 keepalives from the client; the server answers none (it has no payload to confirm).
    expect(net.sent - before).toBeGreaterThanOrEqual(5);
    expect(net.sent - before).toBeLessThanOrEqual(7);
    expect(server.connected("client-A")).toBe(true);
  });

  test("a one-way flow gets a keepalive back within 10 s, so no needless re-handshake", () => {
    const { net, server, client } = clientServer();
    net.run(100);
    const hs = client.protocol.sessions.get(0)!.lastHandshakeAt;
    for (let i = 0; i < 30; i++) {
      client.sendData("server", `p${i}`);
      net.run(1000);
    }
    expect(server.delivered.length).toBe(30);
    expect(client.protocol.sessions.get(0)!.lastHandshakeAt).toBe(hs);
  });

  test("sent data and no answer for 15 s starts a new handshake", () => {
    const { net, client } = clientServer();
    net.run(100);
    net.hosts.delete("server");
    const hs = client.protocol.sessions.get(0)!.lastHandshakeAt;
    client.sendData("server", "anyone?");
    net.run(16_000);
    expect(client.protocol.stateName(0)).toBe("handshake-sent");
    expect(client.protocol.sessions.get(0)!.lastHandshakeAt).toBe(hs);
  });

  test("idle connected peers schedule no timers (no busy wake-ups)", () => {
    const { net, server, client } = clientServer();
    net.run(20_000);
    expect(client.protocol.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
    expect(server.protocol.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
  });
});

const SRC = new Uint8Array(28);

describe("wontun protocol: hostile datagrams", () => {
  const sink = { sendControl() {} };

  test("unknown names, unknown indices and malformed sizes are dropped and counted", () => {
    const p = new WontunProtocol("server", [{ id: 0, name: "client-A", persistentKeepaliveSeconds: 0 }]);
    const buf = new Uint8Array(200);
    writeHandshakeInit(buf, 0, 0, encodeName("mallory"));
    expect(p.receive(buf, 0, 105, SRC, 0, 0, sink)).toBe(Outcome.Drop);
    writeDataHeader(buf, 0, 5);
    expect(p.receive(buf, 0, 30, SRC, 0, 0, sink)).toBe(Outcome.Drop);
    writeDataHeader(buf, 0, 0xffffffff);
    expect(p.receive(buf, 0, 30, SRC, 0, 0, sink)).toBe(Outcome.Drop);
    buf[0] = 2;
    buf.set([9, 0, 0, 0], 5); // Response echoing index 9: no such peer
    expect(p.receive(buf, 0, 9, SRC, 0, 0, sink)).toBe(Outcome.Drop);
    expect(p.receive(buf, 0, 10, SRC, 0, 0, sink)).toBe(Outcome.Drop);
    expect(p.receive(buf, 0, 0, SRC, 0, 0, sink)).toBe(Outcome.Drop);
    expect(p.counters.unknownName).toBe(1);
    expect(p.counters.unknownIndex).toBe(3);
    expect(p.counters.malformed).toBe(1);
  });

  test("a Response nobody asked for is dropped and does not touch a connected session", () => {
    const { net, server, client } = clientServer();
    net.run(100);
    const forged = new Uint8Array(9);
    forged[0] = 2;
    forged.set([7, 0, 0, 0, 0, 0, 0, 0], 1); // assigned 7, echoes our index 0
    expect(client.protocol.receive(forged, 0, 9, SRC, 0, net.now, client)).toBe(Outcome.Drop);
    expect(client.protocol.sessions.get(0)!.remoteIndex).toBe(0);
    expect(client.protocol.counters.unexpected).toBe(1);
    expect(server.connected("client-A")).toBe(true);
  });

  test("random bytes never throw and never deliver to an unknown peer", () => {
    const p = new WontunProtocol("server", [{ id: 0, name: "client-A", persistentKeepaliveSeconds: 0 }]);
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const buf = new Uint8Array(2000);
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(rnd() * 200);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(rnd() * 256);
      const out = p.receive(buf, 0, len, SRC, 0, i, sink);
      if (out !== Outcome.Drop) expect(p.result.peer).toBe(0);
    }
  });
});
