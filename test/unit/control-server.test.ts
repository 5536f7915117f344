import { afterEach, describe, expect, test } from "bun:test";
import { createConnection, createServer, type Socket } from "node:net";
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Epoll } from "../../src/sys/epoll.ts";
import { libc } from "../../src/sys/libc.ts";
import { listenUnix } from "../../src/sys/unix-socket.ts";
import { ControlServer, type ControlHandler, type FdWatcher, type ControlLimits } from "../../src/control/server.ts";
import { ControlClientError, controlRequest } from "../../src/control/client.ts";

/** The device's role: one epoll, callbacks by fd, pumped from a timer. */
class TestLoop implements FdWatcher {
  readonly epoll = new Epoll(256);
  private readonly ready = new Map<number, () => void>();
  watch(fd: number, onReady: () => void): void {
    this.ready.set(fd, onReady);
    this.epoll.addReadWritable(fd, fd);
  }
  unwatch(fd: number): void {
    this.epoll.remove(fd);
    this.ready.delete(fd);
  }
  pump(): void {
    const n = this.epoll.wait(0);
    for (let i = 0; i < n; i++) this.ready.get(this.epoll.token(i))?.();
  }
  get watched(): number {
    return this.ready.size;
  }
}

class RecordingHandler implements ControlHandler {
  sets: string[] = [];
  get(): string {
    return "listen_port=51820\nerrno=0\n\n";
  }
  status(): string {
    return "mode=wontun\ninterface=tun0\nerrno=0\n\n";
  }
  set(body: string): string {
    this.sets.push(body);
    return "errno=0\n\n";
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "wontun-ctl-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Running {
  server: ControlServer;
  loop: TestLoop;
  handler: RecordingHandler;
  path: string;
  maxClientsSeen: () => number;
}

function start(opts: { path?: string; handler?: ControlHandler; limits?: Partial<ControlLimits> } = {}): Running {
  const path = opts.path ?? join(tempDir(), "tun0.sock");
  const loop = new TestLoop();
  const handler = (opts.handler as RecordingHandler) ?? new RecordingHandler();
  const server = new ControlServer({ path, handler, watcher: loop, limits: opts.limits });
  server.open();
  let maxSeen = 0;
  const timer = setInterval(() => {
    loop.pump();
    server.tick(performance.now());
    maxSeen = Math.max(maxSeen, server.stats().clients);
  }, 1);
  cleanups.push(() => {
    clearInterval(timer);
    server.close();
    loop.epoll.close();
  });
  return { server, loop, handler, path, maxClientsSeen: () => maxSeen };
}

/** A raw client: collects everything it receives until the server closes the connection. */
function rawClient(path: string): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = createConnection({ path });
  let text = "";
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => (text += d));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  cleanups.push(() => socket.destroy());
  return { socket, received: () => text, closed };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

describe("ControlServer", () => {
  test("get, get=wontun and set through controlRequest", async () => {
    const { path, handler } = start();
    expect(await controlRequest(path, "get=1\n\n", 2000)).toBe("listen_port=51820\nerrno=0\n\n");
    expect(await controlRequest(path, "get=wontun\n\n", 2000)).toBe("mode=wontun\ninterface=tun0\nerrno=0\n\n");
    expect(await controlRequest(path, "set=1\nlisten_port=1\nfwmark=2\n\n", 2000)).toBe("errno=0\n\n");
    expect(await controlRequest(path, "set=1\n\n", 2000)).toBe("errno=0\n\n");
    expect(handler.sets).toEqual(["listen_port=1\nfwmark=2\n", ""]);
  });

  test("the socket file is 0600 in a directory created 0755", () => {
    const dir = join(tempDir(), "run", "wireguard");
    const { path } = start({ path: join(dir, "wg0.sock") });
    expect(statSync(path).isSocket()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
  });

  test("several requests on one connection are answered in order", async () => {
    const { path, handler } = start();
    const c = rawClient(path);
    c.socket.write("get=1\n\nset=1\nlisten_port=7\n\nget=wontun\n\nset=1\n\n");
    const want = "listen_port=51820\nerrno=0\n\nerrno=0\n\nmode=wontun\ninterface=tun0\nerrno=0\n\nerrno=0\n\n";
    await until("four answers", () => c.received() === want);
    expect(handler.sets).toEqual(["listen_port=7\n", ""]);
    c.socket.end();
    await c.closed;
  });

  test("a request split byte by byte", async () => {
    const { path, handler } = start();
    const c = rawClient(path);
    const request = "set=1\npublic_key=ab\nallowed_ip=10.0.0.0/8\n\nget=1\n\n";
    for (const ch of request) {
      c.socket.write(ch);
      await Bun.sleep(1);
    }
    await until("both answers", () => c.received() === "errno=0\n\nlisten_port=51820\nerrno=0\n\n");
    expect(handler.sets).toEqual(["public_key=ab\nallowed_ip=10.0.0.0/8\n"]);
  });

  test("end of stream after the request: answered, then closed", async () => {
    const { path } = start();
    const c = rawClient(path);
    c.socket.end("get=1\n\n");
    await c.closed;
    expect(c.received()).toBe("listen_port=51820\nerrno=0\n\n");
  });

  test("a truncated set (end of stream before the blank line) is never applied", async () => {
    const { path, handler, server } = start();
    const c = rawClient(path);
    c.socket.end("set=1\nlisten_port=9\n");
    await c.closed;
    expect(c.received()).toBe("");
    expect(handler.sets).toEqual([]);
    await until("client gone", () => server.stats().clients === 0);
  });

  test("an unknown operation gets errno=-71 (EPROTO), then the hang-up (wireguard-go only hangs up)", async () => {
    const { path } = start();
    for (const bad of ["get=2\n\n", "hello\n", "x".repeat(100)]) {
      const c = rawClient(path);
      c.socket.write(bad);
      await c.closed;
      expect(c.received()).toBe("errno=-71\n\n");
    }
  });

  test("get=1 followed by anything but a blank line: errno=-22, then closed", async () => {
    const { path } = start();
    const c = rawClient(path);
    c.socket.write("get=1\nx\n\n");
    await c.closed;
    expect(c.received()).toBe("errno=-22\n\n");
  });

  test("a handler that throws is answered errno=-55 (ENOANO) and the connection lives on", async () => {
    const handler = new RecordingHandler();
    handler.get = () => {
      throw new Error("bug");
    };
    const { path } = start({ handler });
    const c = rawClient(path);
    c.socket.write("get=1\n\nget=wontun\n\n");
    await until("two answers", () => c.received() === "errno=-55\n\nmode=wontun\ninterface=tun0\nerrno=0\n\n");
  });

  test("a 100 MB request: memory stays bounded, answered errno=-12 and closed", async () => {
    const { path, server, handler } = start();
    const c = rawClient(path);
    let closed = false;
    c.closed.then(() => (closed = true));
    c.socket.write("set=1\n");
    const chunk = Buffer.alloc(64 * 1024, "a");
    let sent = 0;
    while (!closed && sent < 100 * 1024 * 1024) {
      if (!c.socket.write(chunk)) {
        await Promise.race([new Promise((r) => c.socket.once("drain", r)), c.closed]);
      }
      sent += chunk.length;
    }
    await c.closed;
    expect(closed).toBe(true);
    // Either the answer arrived before the reset, or the connection was simply closed.
    expect(["errno=-12\n\n", ""]).toContain(c.received());
    expect(server.stats().peakBufferedBytes).toBeLessThanOrEqual((1 << 20) + 64 * 1024);
    expect(sent).toBeLessThan(100 * 1024 * 1024);
    expect(handler.sets).toEqual([]);
    // The server still serves.
    expect(await controlRequest(path, "get=1\n\n", 2000)).toContain("errno=0");
  }, 30000);

  test("a silent client is closed after the idle time; another is served meanwhile", async () => {
    const { path, server } = start({ limits: { idleMs: 300 } });
    const silent = rawClient(path);
    let silentClosedAt = 0;
    const t0 = performance.now();
    silent.closed.then(() => (silentClosedAt = performance.now()));
    await until("silent client accepted", () => server.stats().clients === 1);
    expect(await controlRequest(path, "get=1\n\n", 2000)).toContain("errno=0");
    expect(silentClosedAt).toBe(0);
    await silent.closed;
    expect(silentClosedAt - t0).toBeGreaterThanOrEqual(250);
    expect(silent.received()).toBe("");
    expect(server.nextDeadline()).toBe(Infinity);
  });

  test("a client trickling a never-ending request is closed at the deadline too", async () => {
    const { path } = start({ limits: { idleMs: 200 } });
    const c = rawClient(path);
    c.socket.write("set=1\n");
    const timer = setInterval(() => c.socket.writable && c.socket.write("a=b\n"), 20);
    cleanups.push(() => clearInterval(timer));
    await c.closed;
  });

  test("nextDeadline follows the clients", async () => {
    const { path, server } = start({ limits: { idleMs: 1000 } });
    expect(server.nextDeadline()).toBe(Infinity);
    rawClient(path);
    await until("accepted", () => server.stats().clients === 1);
    const d = server.nextDeadline();
    expect(d).toBeGreaterThan(performance.now());
    expect(d).toBeLessThanOrEqual(performance.now() + 1000);
  });

  test("100 concurrent clients are all served (limit raised)", async () => {
    const { path } = start({ limits: { maxClients: 128 } });
    const answers = await Promise.all(Array.from({ length: 100 }, () => controlRequest(path, "get=wontun\n\n", 5000)));
    expect(answers.every((a) => a === "mode=wontun\ninterface=tun0\nerrno=0\n\n")).toBe(true);
  });

  test("100 concurrent clients with the default limit: never more than 64 at once, the rest closed", async () => {
    const { path, server, maxClientsSeen } = start();
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        controlRequest(path, "get=1\n\n", 5000).then(
          () => "served",
          (e: ControlClientError) => e.kind,
        ),
      ),
    );
    const served = results.filter((r) => r === "served").length;
    expect(served + results.filter((r) => r === "closed" || r === "io").length).toBe(100);
    expect(served).toBeGreaterThanOrEqual(64);
    expect(maxClientsSeen()).toBeLessThanOrEqual(64);
    await until("all gone", () => server.stats().clients === 0);
  });

  test("over the client limit, silent clients beyond it are closed at once", async () => {
    const { path, server } = start({ limits: { maxClients: 4 } });
    const cs = Array.from({ length: 6 }, () => rawClient(path));
    let closedCount = 0;
    for (const c of cs) c.closed.then(() => closedCount++);
    await until("two refused", () => closedCount === 2);
    expect(server.stats().clients).toBe(4);
  });

  test("close() closes clients, stops watching and removes the socket file", async () => {
    const { path, server, loop } = start();
    const c = rawClient(path);
    await until("accepted", () => server.stats().clients === 1);
    server.close();
    expect(existsSync(path)).toBe(false);
    expect(loop.watched).toBe(0);
    await c.closed;
  });

  test("a stale socket file is replaced", async () => {
    const path = join(tempDir(), "tun0.sock");
    const fd = listenUnix(path, 1);
    libc.close(fd); // the file stays: a daemon that died
    expect(existsSync(path)).toBe(true);
    start({ path });
    expect(await controlRequest(path, "get=1\n\n", 2000)).toContain("errno=0");
  });

  test("a live socket is refused, and left alone", async () => {
    const { path } = start();
    const second = new ControlServer({ path, handler: new RecordingHandler(), watcher: new TestLoop() });
    expect(() => second.open()).toThrow(/another daemon is already listening/);
    expect(await controlRequest(path, "get=1\n\n", 2000)).toContain("errno=0");
  });

  test("a file that is not a socket is refused, not deleted", () => {
    const path = join(tempDir(), "tun0.sock");
    writeFileSync(path, "precious");
    const server = new ControlServer({ path, handler: new RecordingHandler(), watcher: new TestLoop() });
    expect(() => server.open()).toThrow(/not a socket/);
    expect(existsSync(path)).toBe(true);
  });

  test("close() leaves a successor's socket file alone", () => {
    const { path, server } = start();
    rmSync(path);
    const fd = listenUnix(path, 1); // someone else's socket now
    cleanups.push(() => libc.close(fd));
    server.close();
    expect(existsSync(path)).toBe(true);
  });

  test("a socket path that is too long is a clear error", () => {
    const path = join(tempDir(), "x".repeat(120) + ".sock");
    const server = new ControlServer({ path, handler: new RecordingHandler(), watcher: new TestLoop() });
    expect(() => server.open()).toThrow(/at most 107/);
  });
});

describe("controlRequest errors", () => {
  test("no socket: not running", async () => {
    const path = join(tempDir(), "tun9.sock");
    const e = await controlRequest(path, "get=1\n\n", 1000).catch((x) => x);
    expect(e).toBeInstanceOf(ControlClientError);
    expect(e.kind).toBe("not-running");
    expect(e.message).toBe(`no wontun running for tun9: ${path} does not exist`);
  });

  test("a stale socket: not running (connection refused)", async () => {
    const path = join(tempDir(), "tun9.sock");
    libc.close(listenUnix(path, 1));
    const e = await controlRequest(path, "get=1\n\n", 1000).catch((x) => x);
    expect(e.kind).toBe("not-running");
    expect(e.message).toContain("a stale socket");
  });

  test("nobody answers: timeout", async () => {
    const path = join(tempDir(), "tun9.sock");
    const fd = listenUnix(path, 4); // listening, never accepting
    cleanups.push(() => libc.close(fd));
    const e = await controlRequest(path, "get=1\n\n", 200).catch((x) => x);
    expect(e.kind).toBe("timeout");
    expect(e.message).toBe(`tun9: no answer from wontun on ${path} within 200 ms`);
  });

  test("closed without a complete answer", async () => {
    // A listener that hangs up on every client at once (as wireguard-go does on an unknown operation).
    const path = join(mkdtempSync(join(tmpdir(), "ctl-close-")), "x.sock");
    const server = createServer((conn) => conn.end()).listen(path);
    await new Promise((resolve) => server.once("listening", resolve));
    const e = await controlRequest(path, "bogus\n\n", 2000).catch((x) => x);
    server.close();
    expect(e.kind).toBe("closed");
    expect(e.message.includes("\n")).toBe(false);
  });
});
