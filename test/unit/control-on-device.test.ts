// The control server on the device's own loop (Device.watch), not on a test loop: an answer much
// larger than the socket's send buffer (a get=1 with thousands of peers) must arrive whole to a
// client that reads slowly. Device.watch once registered input only, and such answers stalled
// after the first short write until the idle timeout closed the connection.
import { afterEach, describe, expect, test } from "bun:test";
import { createConnection } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Device } from "../../src/device/device.ts";
import { MemoryBind, MemoryNetwork } from "../../src/device/bind-memory.ts";
import { MemoryTun } from "../../src/device/tun-memory.ts";
import { WontunProtocol } from "../../src/protocol/wontun/protocol.ts";
import { ControlServer } from "../../src/control/server.ts";
import type { Logger } from "../../src/log.ts";

const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe("control server on the device loop", () => {
  test("a 2 MiB answer reaches a client that reads slowly, and the next request on the connection is answered", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ctl-dev-"));
    const bind = new MemoryBind({ network: new MemoryNetwork(1), address: new Uint8Array([192, 0, 2, 1]) });
    const device = new Device({ tun: new MemoryTun("m0"), bind, protocol: new WontunProtocol("hub"), log: quiet, listenPort: 1 });
    device.start();
    const big = `${"peer_line=x".repeat(1)}\n`.repeat(200_000) + "errno=0\n\n"; // ~2.4 MB
    const server = new ControlServer({
      path: join(dir, "m0.sock"),
      watcher: device,
      handler: { get: () => big, status: () => "errno=0\n\n", set: () => "errno=0\n\n" },
    });
    server.open();
    device.addTimer(server);
    const pump = setInterval(() => device.step(performance.now()), 1);
    cleanups.push(() => {
      clearInterval(pump);
      server.close();
      device.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const socket = createConnection({ path: join(dir, "m0.sock") });
    cleanups.push(() => socket.destroy());
    let received = 0;
    let text = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length;
      text = (text + chunk.toString("latin1")).slice(-64);
      // Read slowly: the server's writes come back short and must resume on EPOLLOUT.
      socket.pause();
      setTimeout(() => socket.resume(), 2);
    });
    socket.write("get=1\n\n");
    const deadline = performance.now() + 20_000;
    while (received < big.length && performance.now() < deadline) await Bun.sleep(5);
    expect(received).toBe(big.length);
    socket.write("get=wontun\n\n");
    while (!text.endsWith("errno=0\n\nerrno=0\n\n") && performance.now() < deadline) await Bun.sleep(5);
    expect(text.endsWith("errno=0\n\nerrno=0\n\n")).toBe(true);
  }, 30_000);
});
