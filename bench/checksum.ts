// Micro-benchmark of the offload byte work (not a test): the Internet checksum with the byte loop
// and the wide loop (WONTUN_WIDE_CSUM), segment() cutting a 64 KiB TSO super-packet into
// 1380-byte segments, and the coalescer gluing 44 such segments with and without verifying their
// checksums (WONTUN_TRUST_INNER_CSUM). Best of several rounds; one line each.
// Run: bun bench/checksum.ts
import { finishChecksum, pseudoHeaderSum, sumBytesNarrow, sumWords } from "../src/net/offload/checksum.ts";
import { Coalescer } from "../src/net/offload/coalesce.ts";
import { segment } from "../src/net/offload/segment.ts";
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VnetHdr } from "../src/net/offload/virtio-net-hdr.ts";

const ROUNDS = 7;

function best(calls: number, fn: (i: number) => void): number {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < calls; i++) fn(i);
    const ns = (Bun.nanoseconds() - t0) / calls;
    if (r > 0) min = Math.min(min, ns);
  }
  return min;
}

function line(name: string, value: string): void {
  console.log(`${name.padEnd(52)} ${value}`);
}

const slab = new Uint8Array(new ArrayBuffer(1 << 20));
crypto.getRandomValues(slab.subarray(0, 65536));
slab.copyWithin(65536, 0, 65536);
let sink = 0;
for (const length of [1420, 65000]) {
  const calls = length > 10000 ? 2000 : 100_000;
  for (const [name, fn] of [["bytes", sumBytesNarrow], ["words", sumWords]] as const) {
    const ns = best(calls, (i) => (sink += fn(slab, (i * 1500) % 60000 + (i & 3), length, 0)));
    line(`checksum ${length} B, ${name}`, `${ns.toFixed(0)} ns  (${(length / ns).toFixed(2)} B/ns)`);
  }
}

// A TSO super-packet as the kernel hands it over: IPv4 + TCP (20 + 20), 63,480 payload bytes,
// gso_size 1380 (46 segments), checksum field = pseudo-header sum.
const MSS = 1380;
const SEGMENTS = 46;
const PAYLOAD = MSS * SEGMENTS;
const src = new Uint8Array(new ArrayBuffer(70_000));
const ipLength = 40 + PAYLOAD;
src.set([0x45, 0, ipLength >>> 8, ipLength & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 0);
src.set([0x9c, 0x40, 0x01, 0xbb, 0, 0, 0x10, 0, 0, 0, 0x30, 0x39, 0x50, 0x10, 0x01, 0xf5], 20);
crypto.getRandomValues(src.subarray(40, 40 + PAYLOAD));
const seed = finishChecksum(pseudoHeaderSum(src, 0, 4, 6, ipLength - 20));
src[36] = ~seed >>> 8;
src[37] = ~seed & 0xff;
const hdr = new VnetHdr();
hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
hdr.gsoType = VIRTIO_NET_HDR_GSO_TCPV4;
hdr.hdrLen = 40;
hdr.gsoSize = MSS;
hdr.csumStart = 20;
hdr.csumOffset = 16;
const SLOT = 1536;
const dst = new Uint8Array(new ArrayBuffer(SLOT * 64));
const starts = Int32Array.from({ length: 64 }, (_, k) => k * SLOT + 16);
const lengths = new Int32Array(64);
const segNs = best(2000, () => {
  if (segment(src, 0, ipLength, hdr, dst, starts, lengths, 0, 64, SLOT - 16) !== SEGMENTS) throw new Error("segment failed");
});
line(`segment() 64 KiB TSO -> ${SEGMENTS} x ${MSS} B`, `${(segNs / 1000).toFixed(2)} µs  (${(segNs / SEGMENTS).toFixed(0)} ns per segment)`);

// The same segments, glued back by the coalescer (verifying or trusting their checksums).
for (const trust of [false, true]) {
  const c = new Coalescer(64, trust);
  const ns = best(2000, () => {
    c.reset();
    for (let k = 0; k < SEGMENTS; k++) c.add(dst, starts[k], lengths[k]);
    if (c.finish() !== 1) throw new Error("coalesce failed");
  });
  line(`coalesce ${SEGMENTS} segments, ${trust ? "trusting" : "verifying"} checksums`, `${(ns / 1000).toFixed(2)} µs  (${(ns / SEGMENTS).toFixed(0)} ns per segment)`);
}
if (sink === -1) console.log(sink);
