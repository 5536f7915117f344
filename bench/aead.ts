// Micro-benchmark of the crypto (not a test): per-packet seal/open for each data-path AEAD backend
// on 1420-byte payloads, one 84-byte seal after 10 ms of idleness (what an isolated packet such as
// a ping pays), the JS heap growth per seal, and the handshake primitives. One line each.
// Run: bun bench/aead.ts [payload bytes]
// Timings are the best of several rounds, since a shared machine makes single runs noisy.
import { heapSize } from "bun:jsc";
import { TAG_SIZE, type AeadBackend } from "../src/crypto/aead.ts";
import { BACKEND_NAMES, loadAeadBackend } from "../src/crypto/aead.ts";
import { aeadSealOnce, hash, hmac, implementations, kdf, mac, x25519, x25519Noble, x25519PublicKey } from "../src/crypto/primitives.ts";
import { generatePrivateKey } from "../src/crypto/keys.ts";

const PAYLOAD = Number(process.argv[2] ?? 1420);
const ROUNDS = 7;
const SLOTS = 512; // distinct packet buffers, like a batch ring

/** Best-of-ROUNDS nanoseconds per call of fn(i), each round running `calls` calls; setup() untimed. */
function best(calls: number, fn: (i: number) => void, setup?: () => void): number {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS + 1; r++) {
    setup?.();
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < calls; i++) fn(i);
    const ns = (Bun.nanoseconds() - t0) / calls;
    if (r > 0) min = Math.min(min, ns); // round 0 warms up the JIT
  }
  return min;
}

function line(name: string, value: string): void {
  console.log(`${name.padEnd(44)} ${value}`);
}

/** Median µs of one 84-byte seal made after `gapMs` of sleep, over `samples` samples. */
async function coldSeal(backend: AeadBackend, samples: number, gapMs: number): Promise<number> {
  const key = backend.createKey(crypto.getRandomValues(new Uint8Array(32)));
  const buf = new Uint8Array(new ArrayBuffer(256));
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    await Bun.sleep(gapMs);
    const t0 = Bun.nanoseconds();
    backend.seal(key, i, buf, 16, 84);
    times.push((Bun.nanoseconds() - t0) / 1000);
  }
  backend.destroyKey(key);
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

async function benchBackend(backend: AeadBackend): Promise<void> {
  const key = backend.createKey(crypto.getRandomValues(new Uint8Array(32)));
  const stride = PAYLOAD + TAG_SIZE + 16;
  const slab = new Uint8Array(new ArrayBuffer(stride * SLOTS));
  crypto.getRandomValues(slab.subarray(0, 65536));
  const perRound = backend.name === "noble" ? SLOTS * 4 : SLOTS * 40;
  let counter = 2 ** 33; // exercise the high counter word, as a long-lived session would

  const seal = best(perRound, (i) => backend.seal(key, counter++, slab, (i % SLOTS) * stride + 16, PAYLOAD));
  line(`${backend.name} seal ${PAYLOAD} B`, `${(seal / 1000).toFixed(2)} µs  (${((PAYLOAD * 8) / seal).toFixed(2)} Gbit/s)`);

  // open needs fresh ciphertext per call: seal SLOTS packets (untimed), then open each once.
  const base = counter;
  const sealAll = () => {
    for (let s = 0; s < SLOTS; s++) backend.seal(key, base + s, slab, s * stride + 16, PAYLOAD);
  };
  let failures = 0;
  const open = best(SLOTS, (s) => {
    if (!backend.open(key, base + s, slab, s * stride + 16, PAYLOAD + TAG_SIZE)) failures++;
  }, sealAll);
  if (failures) throw new Error(`${backend.name}: ${failures} opens failed`);
  line(`${backend.name} open ${PAYLOAD} B`, `${(open / 1000).toFixed(2)} µs  (${((PAYLOAD * 8) / open).toFixed(2)} Gbit/s)`);

  // JS heap growth while sealing: ~0 means no per-call allocation (an eden GC would only hide some).
  const n = 20_000;
  Bun.gc(true);
  const h0 = heapSize();
  for (let i = 0; i < n; i++) backend.seal(key, counter++, slab, 16, PAYLOAD);
  const grown = heapSize() - h0;
  line(`${backend.name} heap growth per seal`, `${Math.max(0, grown / n).toFixed(1)} B (over ${n} seals, no GC forced)`);
  backend.destroyKey(key);
  line(`${backend.name} seal 84 B after 10 ms idle`, `${(await coldSeal(backend, 100, 10)).toFixed(1)} µs (median of 100)`);
}

for (const name of BACKEND_NAMES) {
  const backend = loadAeadBackend(name);
  if (typeof backend === "string") line(name, `unavailable: ${backend}`);
  else await benchBackend(backend);
}

const k32 = crypto.getRandomValues(new Uint8Array(32));
const m32 = crypto.getRandomValues(new Uint8Array(32));
const m148 = crypto.getRandomValues(new Uint8Array(148)); // a handshake initiation's size
line(`hash 32 B (${implementations.hash})`, `${best(20_000, () => hash(m32)).toFixed(0)} ns`);
line(`hash 148 B (${implementations.hash})`, `${best(20_000, () => hash(m148)).toFixed(0)} ns`);
line(`mac 116 B, 16-byte keyed BLAKE2s (${implementations.mac})`, `${best(10_000, () => mac(k32, m148.subarray(0, 116))).toFixed(0)} ns`);
line("hmac 32 B", `${best(10_000, () => hmac(k32, m32)).toFixed(0)} ns`);
line("kdf n=3", `${best(5_000, () => kdf(k32, m32, 3)).toFixed(0)} ns`);
line(`aeadSealOnce 32 B + 32 B AD (${implementations.aead})`, `${best(5_000, () => aeadSealOnce(k32, 0, m32, m32)).toFixed(0)} ns`);

const privs = Array.from({ length: 8 }, () => generatePrivateKey());
const pubs = privs.map((p) => x25519PublicKey(p));
line(`x25519 (${x25519Implementation()}), cached private key`, `${best(300, (i) => x25519(privs[0], pubs[i & 7])).toFixed(0)} ns`);
line(`x25519 (${x25519Implementation()}), new private key each call`, `${best(300, (i) => x25519(privs[i & 7], pubs[(i + 1) & 7])).toFixed(0)} ns`);
line("x25519 (noble)", `${best(30, (i) => x25519Noble(privs[i & 7], pubs[(i + 1) & 7])).toFixed(0)} ns`);
line(`x25519 public key (${x25519Implementation()}), new key each call`, `${best(300, (i) => x25519PublicKey(privs[(i * 3) & 7])).toFixed(0)} ns`);

function x25519Implementation(): string {
  return implementations.x25519;
}
