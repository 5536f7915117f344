// The soak's checksummed byte streams: a paced TCP sender and a verifying receiver per flow, run
// inside a lab namespace (one process per host, holding every flow that starts or ends there).
//
// Each flow is an endless pseudo-random stream, byte n a function of (seed, n) only. A sender
// connects, says hello (magic, seed); the receiver answers with the offset it expects next, and the
// sender goes on from exactly there. So a connection broken by a restart costs nothing: the next
// one resumes where the receiver's verified bytes end. The receiver checks every byte:
//   corrupted  bytes that differ from the stream (must be 0),
//   lost       bytes skipped (a hello whose stream offset is past what was verified; must be 0),
//   delivered  bytes verified intact, in total and per connection.
//
//   bun soak-stream.ts '<json: {"stats": FILE, "recv": [{"name", "port", "seed"}],
//                        "send": [{"name", "host", "port", "seed", "mbit"}]}>'
// Writes {"recv": {name: {...}}, "send": {name: {...}}} to FILE every second (atomically).
import { createServer, connect, type Socket } from "node:net";
import { renameSync, writeFileSync } from "node:fs";

const MAGIC = 0x5a0a5e5d;
const BLOCK = 4096;

interface RecvSpec { name: string; port: number; seed: number }
interface SendSpec { name: string; host: string; port: number; seed: number; mbit: number }

export interface RecvStats {
  delivered: number;
  corrupted: number;
  lost: number;
  connections: number;
  /** Bytes each finished connection delivered intact (the last 50; `connections` counts them all). */
  perConnection: number[];
  /** Bytes the connection open now delivered intact so far. */
  currentConnection: number;
  lastProgressMs: number;
  firstCorruptionAt: number | null;
}

export interface SendStats {
  written: number;
  connections: number;
  connectFailures: number;
  lastError: string;
}

/** Block k of the stream `seed`: 4096 bytes of xorshift32 output, seeded from (seed, k). */
export function streamBlock(seed: number, k: number): Uint8Array {
  const words = new Uint32Array(BLOCK / 4);
  let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(k + 1, 0xc2b2ae35)) >>> 0;
  if (x === 0) x = 0x1234567;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer);
}

/** Bytes [offset, offset + n) of the stream. */
function streamBytes(seed: number, offset: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const pos = offset + at;
    const k = Math.floor(pos / BLOCK);
    const within = pos - k * BLOCK;
    const take = Math.min(BLOCK - within, n - at);
    out.set(streamBlock(seed, k).subarray(within, within + take), at);
    at += take;
  }
  return out;
}

function u64(b: Uint8Array, at: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
}

function putU64(b: Uint8Array, at: number, n: number): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setUint32(at, n % 2 ** 32, true);
  v.setUint32(at + 4, Math.floor(n / 2 ** 32), true);
}

function receiver(spec: RecvSpec, stats: RecvStats): void {
  let current: Socket | null = null;
  const server = createServer((sock) => {
    // One sender per flow: a new connection replaces a stale one (the old one's bytes are counted).
    current?.destroy();
    current = sock;
    sock.setNoDelay(true);
    let hello: Uint8Array | null = new Uint8Array(0);
    let pos = 0; // stream offset of the next byte on this connection
    let block = -1;
    let blockBytes: Uint8Array = new Uint8Array(0);
    let thisConnection = 0;
    stats.connections++;
    stats.currentConnection = 0;
    let idle: ReturnType<typeof setTimeout> | null = null;
    const armIdle = () => {
      if (idle) clearTimeout(idle);
      // A connection that carries nothing for 45 s is given up; the sender reconnects.
      idle = setTimeout(() => sock.destroy(), 45_000);
    };
    armIdle();
    sock.on("data", (chunk: Buffer) => {
      armIdle();
      let data: Uint8Array = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (hello !== null) {
        const h = new Uint8Array(hello.length + data.length);
        h.set(hello);
        h.set(data, hello.length);
        if (h.length < 16) {
          hello = h;
          return;
        }
        const v = new DataView(h.buffer);
        if (v.getUint32(0, true) !== MAGIC || v.getUint32(4, true) !== spec.seed >>> 0) {
          sock.destroy();
          return;
        }
        const from = u64(h, 8);
        if (from > stats.delivered) stats.lost += from - stats.delivered;
        pos = from;
        hello = null;
        data = h.subarray(16);
      }
      for (let i = 0; i < data.length; ) {
        const k = Math.floor(pos / BLOCK);
        if (k !== block) {
          block = k;
          blockBytes = streamBlock(spec.seed, k);
        }
        const within = pos - k * BLOCK;
        const take = Math.min(BLOCK - within, data.length - i);
        let bad = 0;
        for (let j = 0; j < take; j++) if (data[i + j] !== blockBytes[within + j]) bad++;
        if (bad > 0) {
          stats.corrupted += bad;
          stats.firstCorruptionAt ??= pos;
        }
        // Bytes before what was already verified (a resend) are checked but not counted twice.
        const fresh = Math.max(0, pos + take - Math.max(pos, stats.delivered));
        stats.delivered += fresh;
        thisConnection += take - bad;
        pos += take;
        i += take;
      }
      if (current === sock) stats.currentConnection = thisConnection;
      stats.lastProgressMs = Date.now();
    });
    let finished = false;
    const done = () => {
      if (idle) clearTimeout(idle);
      if (finished) return;
      finished = true;
      stats.perConnection.push(thisConnection);
      if (stats.perConnection.length > 50) stats.perConnection.shift();
      if (current === sock) {
        current = null;
        stats.currentConnection = 0;
      }
    };
    sock.on("error", done);
    sock.on("close", done);
    // The answer to the hello: where to resume.
    const answer = new Uint8Array(8);
    putU64(answer, 0, stats.delivered);
    sock.write(answer);
  });
  server.listen(spec.port, "0.0.0.0");
}

function sender(spec: SendSpec, stats: SendStats): void {
  const bytesPerMs = (spec.mbit * 1e6) / 8 / 1000;
  const connectOnce = () => {
    let offset = -1;
    let answer = new Uint8Array(0);
    let open = true;
    let timer: ReturnType<typeof setInterval> | null = null;
    const sock = connect({ host: spec.host, port: spec.port });
    sock.setNoDelay(true);
    sock.setTimeout(10_000); // connecting, or the resume offset not coming
    const retry = (why: string) => {
      if (!open) return;
      open = false;
      stats.lastError = why;
      if (offset < 0) stats.connectFailures++;
      if (timer) clearInterval(timer);
      sock.destroy();
      setTimeout(connectOnce, 1000);
    };
    sock.on("connect", () => {
      const hello = new Uint8Array(16);
      const v = new DataView(hello.buffer);
      v.setUint32(0, MAGIC, true);
      v.setUint32(4, spec.seed >>> 0, true);
      // The hello's second half (the offset the stream goes on from) follows the receiver's answer.
      stats.connections++;
      sock.write(hello.subarray(0, 8));
    });
    sock.on("data", (chunk: Buffer) => {
      if (offset >= 0) return;
      const a = new Uint8Array(answer.length + chunk.length);
      a.set(answer);
      a.set(chunk, answer.length);
      answer = a;
      if (answer.length < 8) return;
      offset = u64(answer, 0);
      const rest = new Uint8Array(8);
      putU64(rest, 0, offset);
      sock.write(rest);
      sock.setTimeout(0);
      let budget = 0;
      let last = performance.now();
      let waiting = false;
      sock.on("drain", () => (waiting = false));
      timer = setInterval(() => {
        const now = performance.now();
        budget = Math.min(budget + (now - last) * bytesPerMs, bytesPerMs * 100);
        last = now;
        while (!waiting && budget >= 1024) {
          const n = Math.min(Math.floor(budget), 64 * 1024);
          const ok = sock.write(streamBytes(spec.seed, offset, n));
          offset += n;
          budget -= n;
          stats.written += n;
          if (!ok) waiting = true;
        }
      }, 10);
    });
    sock.on("timeout", () => retry("timeout"));
    sock.on("error", (e) => retry(e.message));
    sock.on("close", () => retry("closed"));
  };
  connectOnce();
}

if (import.meta.main) {
  const spec = JSON.parse(process.argv[2] ?? "") as { stats: string; recv: RecvSpec[]; send: SendSpec[] };
  const recv: Record<string, RecvStats> = {};
  const send: Record<string, SendStats> = {};
  for (const r of spec.recv) {
    recv[r.name] = { delivered: 0, corrupted: 0, lost: 0, connections: 0, perConnection: [], currentConnection: 0, lastProgressMs: Date.now(), firstCorruptionAt: null };
    receiver(r, recv[r.name]);
  }
  for (const s of spec.send) {
    send[s.name] = { written: 0, connections: 0, connectFailures: 0, lastError: "" };
    sender(s, send[s.name]);
  }
  const write = () => {
    const tmp = `${spec.stats}.tmp`;
    writeFileSync(tmp, JSON.stringify({ at: Date.now(), recv, send }));
    renameSync(tmp, spec.stats);
  };
  setInterval(write, 1000);
  write();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.on(sig, () => {
      write();
      process.exit(0);
    });
  }
  console.log("streams ready");
}
