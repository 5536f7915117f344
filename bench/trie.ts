// Micro-benchmark of AllowedIps (not a test): 100k random IPv4 prefixes, then inserts/s,
// lookups/s (lookupPacket over a buffer of addresses) and heap growth; one line each, plus an
// allocation check and the same lookup figure for IPv6.
// Run: bun bench/trie.ts [prefixes] [lookups per round]
// Timings are the best of several rounds, since a shared machine makes single runs noisy.
import { AllowedIps } from "../src/net/allowed-ips.ts";

const PREFIXES = Number(process.argv[2] ?? 100_000);
const LOOKUPS = Number(process.argv[3] ?? 2_000_000);
const ROUNDS = 7;
const ADDRESSES = 1 << 20; // addresses looked up round-robin (a 4 MiB / 16 MiB buffer)

let seed = 0x12345678;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

/** Prefix lengths like a routing table: mostly /16../24, some host routes, a few short ones. */
function prefixLength(maxBits: number): number {
  const r = rand() % 100;
  if (maxBits === 32) return r < 70 ? 16 + (rand() % 9) : r < 90 ? 32 : 8 + (rand() % 8);
  return r < 70 ? 32 + (rand() % 33) : r < 90 ? 128 : 16 + (rand() % 16);
}

interface Data {
  cidrs: Array<{ address: Uint8Array; prefix: number }>;
  /** ADDRESSES addresses back to back: half inside a stored prefix, half uniformly random. */
  addrBuf: Uint8Array;
}

function makeData(len: number): Data {
  const bytes = new Uint8Array(PREFIXES * len);
  const cidrs = [];
  for (let i = 0; i < PREFIXES; i++) {
    for (let j = 0; j < len; j++) bytes[i * len + j] = rand();
    cidrs.push({ address: bytes.subarray(i * len, (i + 1) * len), prefix: prefixLength(len * 8) });
  }
  const addrBuf = new Uint8Array(ADDRESSES * len);
  for (let i = 0; i < ADDRESSES; i++) {
    const at = i * len;
    for (let j = 0; j < len; j++) addrBuf[at + j] = rand();
    if (i & 1) continue;
    const c = cidrs[rand() % PREFIXES];
    for (let bit = 0; bit < c.prefix; bit++) {
      const m = 0x80 >> (bit & 7);
      addrBuf[at + (bit >> 3)] = (addrBuf[at + (bit >> 3)] & ~m) | (c.address[bit >> 3] & m);
    }
  }
  return { cidrs, addrBuf };
}

function heapUsed(): number {
  Bun.gc(true);
  return process.memoryUsage().heapUsed; // in Bun this includes typed array storage
}

function best(f: () => number): number {
  let min = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    f();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

const peers = Array.from({ length: 64 }, (_, i) => ({ id: i }));
type Peer = (typeof peers)[number];

function lookups(table: AllowedIps<Peer>, buf: Uint8Array, family: 4 | 6, count: number): number {
  const len = family === 4 ? 4 : 16;
  const mask = ADDRESSES - 1;
  let hits = 0;
  for (let i = 0; i < count; i++) {
    if (table.lookupPacket(buf, (i & mask) * len, family) !== undefined) hits++;
  }
  return hits;
}

// ---- IPv4 ----
const v4 = makeData(4);
const before = heapUsed();
let table = new AllowedIps<Peer>();
let t0 = performance.now();
for (let i = 0; i < PREFIXES; i++) table.insert(v4.cidrs[i], peers[i & 63]);
let ms = performance.now() - t0;
const mops = (n: number, ms: number) => ((n / ms) * 1000) / 1e6;
console.log(`insert: ${PREFIXES} IPv4 prefixes (${table.size} distinct) in ${ms.toFixed(0)} ms = ${mops(PREFIXES, ms).toFixed(2)} M inserts/s`);

const grown = heapUsed() - before;
const stats = table.stats();
console.log(
  `memory: heap grew ${(grown / 1048576).toFixed(2)} MiB = ${(grown / table.size).toFixed(1)} B/prefix ` +
    `(${stats.nodes} trie records; tables ${(stats.bytes / 1048576).toFixed(2)} MiB incl. 0.5 MiB /16 jump table)`,
);

lookups(table, v4.addrBuf, 4, 300_000); // warm up the JIT
const hitRate = lookups(table, v4.addrBuf, 4, ADDRESSES) / ADDRESSES;
ms = best(() => lookups(table, v4.addrBuf, 4, LOOKUPS));
console.log(
  `lookup: IPv4 lookupPacket ${mops(LOOKUPS, ms).toFixed(2)} M lookups/s = ${((ms * 1e6) / LOOKUPS).toFixed(0)} ns each ` +
    `(best of ${ROUNDS} x ${LOOKUPS}; ${(hitRate * 100).toFixed(0)}% hit)`,
);

// Allocation check: the heap must not move over a long run of lookups (no GC in between).
Bun.gc(true);
const h0 = process.memoryUsage().heapUsed;
lookups(table, v4.addrBuf, 4, LOOKUPS);
const h1 = process.memoryUsage().heapUsed;
console.log(`alloc: heap changed by ${((h1 - h0) / 1024).toFixed(1)} KiB over ${LOOKUPS} lookups`);

// ---- IPv6 (same shape of table) ----
table = new AllowedIps<Peer>();
const v6 = makeData(16);
t0 = performance.now();
for (let i = 0; i < PREFIXES; i++) table.insert(v6.cidrs[i], peers[i & 63]);
const insertMs = performance.now() - t0;
lookups(table, v6.addrBuf, 6, 300_000);
ms = best(() => lookups(table, v6.addrBuf, 6, LOOKUPS));
console.log(
  `ipv6: ${PREFIXES} prefixes, ${mops(PREFIXES, insertMs).toFixed(2)} M inserts/s, ` +
    `${mops(LOOKUPS, ms).toFixed(2)} M lookups/s = ${((ms * 1e6) / LOOKUPS).toFixed(0)} ns each, ` +
    `tables ${(table.stats().bytes / 1048576).toFixed(2)} MiB`,
);
