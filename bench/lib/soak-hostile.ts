// The soak's hostile-datagram trickle: a paced stream of datagrams no peer should act on, sent
// at the tunnels' listening ports from inside a lab namespace until SIGTERM.
//
//   bun soak-hostile.ts '<json: {"rate": N, "seed": S, "stats": FILE, "captured": FILE,
//                         "targets": [{"host", "port", "mode": "wg"|"plain", "publicKey"?}]}>'
//
// Kinds, in turn: random bytes (0-1500), plaintext-protocol messages of wrong sizes / unknown
// names / unknown indices, WireGuard messages of every type with wrong sizes, initiations with a
// valid mac1 for the target's key (they cost the responder a DH and can never complete),
// transport messages for random receiver indices, and, from `captured` (one line "dst-ip port hex"
// per WireGuard datagram seen on the underlay, refreshed by the soak now and then), the captured
// datagrams replayed whole, truncated and with one bit flipped.
// Writes {"sent": {kind: n}} to FILE every second.
import { createSocket } from "node:dgram";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { blake2s } from "@noble/hashes/blake2.js";

interface Target { host: string; port: number; mode: "wg" | "plain"; publicKey?: string }
interface Spec { rate: number; seed: number; stats: string; captured: string; targets: Target[] }

const spec = JSON.parse(process.argv[2] ?? "") as Spec;
let seed = spec.seed >>> 0 || 1;
const rnd = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
const int = (n: number) => Math.floor(rnd() * n);
const bytes = (n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
const typed = (type: number, n: number) => {
  const b = bytes(n);
  if (n > 0) b[0] = type;
  if (n > 3) b.fill(0, 1, 4);
  return b;
};

const sent: Record<string, number> = {};
let captured: Array<{ host: string; port: number; payload: Uint8Array }> = [];
const loadCaptured = () => {
  try {
    if (!existsSync(spec.captured)) return;
    captured = readFileSync(spec.captured, "utf8").split("\n").filter(Boolean).map((line) => {
      const [host, port, hex] = line.split(" ");
      return { host, port: Number(port), payload: new Uint8Array(Buffer.from(hex, "hex")) };
    });
  } catch {
    // being rewritten: the next read gets it
  }
};
loadCaptured();
setInterval(loadCaptured, 10_000);

const mac1Keys = new Map<string, Uint8Array>();
function initiationWithMac1(publicKey: string): Uint8Array {
  let key = mac1Keys.get(publicKey);
  if (!key) {
    const h = blake2s.create();
    h.update(new TextEncoder().encode("mac1----"));
    h.update(new Uint8Array(Buffer.from(publicKey, "base64")));
    key = h.digest();
    mac1Keys.set(publicKey, key);
  }
  const msg = typed(1, 148);
  msg.fill(0, 132); // mac2 zero
  msg.set(blake2s(msg.subarray(0, 116), { key, dkLen: 16 }), 116);
  return msg;
}

function plainGarbage(i: number): Uint8Array {
  switch (i % 5) {
    case 0: return typed(1, [1, 5, 104, 106, 200][int(5)]);
    case 1: { const b = typed(1, 105); b.fill(0, 5); b.set(new TextEncoder().encode(`mallory-${i}`), 5); return b; }
    case 2: return typed(2, [1, 5, 8, 10, 105][int(5)]);
    case 3: return typed(3, 5 + int(1400)); // data for an index nobody has (almost surely)
    default: return typed(4 + int(250), 105);
  }
}

function wgGarbage(i: number, t: Target): Uint8Array {
  switch (i % 6) {
    case 0: return typed(1, [1, 4, 147, 149, 200][int(5)]);
    case 1: return typed(2, [1, 91, 93][int(3)]);
    case 2: return typed(3, [1, 63, 65][int(3)]);
    case 3: return typed(4, 32 + int(1400)); // transport for a random receiver index
    case 4: return t.publicKey ? initiationWithMac1(t.publicKey) : typed(1, 148);
    default: return typed(5 + int(250), 32 + int(200));
  }
}

const sock = createSocket("udp4");
sock.on("error", () => {});
sock.bind(0);
let i = 0;
const pick = <T>(xs: T[]) => xs[int(xs.length)];
function one(): void {
  const n = i++;
  const t = pick(spec.targets);
  let kind: string;
  let msg: Uint8Array;
  let host = t.host;
  let port = t.port;
  const r = n % 8;
  if (r === 0) {
    kind = "random";
    msg = bytes(int(1500));
  } else if (r >= 5 && captured.length > 0) {
    const c = pick(captured);
    host = c.host;
    port = c.port;
    if (r === 5) {
      kind = "replayed";
      msg = c.payload;
    } else if (r === 6) {
      kind = "truncated";
      msg = c.payload.subarray(0, int(c.payload.length));
    } else {
      kind = "bitflipped";
      msg = Uint8Array.from(c.payload);
      const at = int(msg.length);
      msg[at] ^= 1 << int(8);
    }
  } else if (t.mode === "plain") {
    kind = "plain-malformed";
    msg = plainGarbage(n);
  } else {
    kind = "wg-malformed";
    msg = wgGarbage(n, t);
  }
  sent[kind] = (sent[kind] ?? 0) + 1;
  sock.send(msg, port, host);
}

const perTick = spec.rate / 10;
let owed = 0;
setInterval(() => {
  owed += perTick;
  while (owed >= 1) {
    one();
    owed--;
  }
}, 100);

const write = () => {
  writeFileSync(`${spec.stats}.tmp`, JSON.stringify({ at: Date.now(), sent }));
  renameSync(`${spec.stats}.tmp`, spec.stats);
};
setInterval(write, 1000);
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    write();
    process.exit(0);
  });
}
console.log("hostile ready");
