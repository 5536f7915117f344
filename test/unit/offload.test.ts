// TUN offloads: virtio_net_hdr, checksums, TSO/USO segmentation and TCP coalescing. Packets are
// built by hand and every checksum is checked against the slow reference implementation below.
import { describe, expect, test } from "bun:test";
import { finishChecksum, fold, ipv4HeaderChecksum, pseudoHeaderSum, sumBytes } from "../../src/net/offload/checksum.ts";
import { COALESCE_MAX_SEGMENTS, Coalescer } from "../../src/net/offload/coalesce.ts";
import { copyBytes } from "../../src/net/offload/copy-bytes.ts";
import { SEGMENT_MALFORMED, SEGMENT_NO_ROOM, completeChecksum, segment } from "../../src/net/offload/segment.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VNET_HDR_LEN,
  VnetHdr,
} from "../../src/net/offload/virtio-net-hdr.ts";

// ---------------------------------------------------------------------------------------------
// Reference checksum: one 16-bit word at a time, end-around carry at every step.

function refOnesSum(data: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < data.length; i += 2) {
    s += (data[i] << 8) | (i + 1 < data.length ? data[i + 1] : 0);
    if (s > 0xffff) s -= 0xffff;
  }
  return s;
}

function refPseudoHeader(pkt: Uint8Array, proto: number, l4Length: number): number[] {
  if (pkt[0] >> 4 === 4) return [...pkt.subarray(12, 20), 0, proto, l4Length >> 8, l4Length & 0xff];
  return [...pkt.subarray(8, 40), 0, 0, l4Length >> 8, l4Length & 0xff, 0, 0, 0, proto];
}

function ipHeaderLength(pkt: Uint8Array): number {
  return pkt[0] >> 4 === 4 ? (pkt[0] & 0x0f) * 4 : 40;
}

function ipv4HeaderValid(pkt: Uint8Array): boolean {
  return refOnesSum(pkt.subarray(0, ipHeaderLength(pkt))) === 0xffff;
}

/** The TCP or UDP checksum of a whole packet verifies. */
function l4ChecksumValid(pkt: Uint8Array): boolean {
  const ihl = ipHeaderLength(pkt);
  const proto = pkt[0] >> 4 === 4 ? pkt[9] : pkt[6];
  const l4 = pkt.subarray(ihl);
  return refOnesSum([...refPseudoHeader(pkt, proto, l4.length), ...l4]) === 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Packet builders.

const TCP = 6;
const UDP = 17;
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;
const ECE = 0x40;
const CWR = 0x80;

const V4_A = [10, 0, 0, 1];
const V4_B = [10, 0, 0, 2];
const V6_A = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

interface PacketSpec {
  version: 4 | 6;
  payload: Uint8Array;
  src?: number[];
  dst?: number[];
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  id?: number;
  ttl?: number;
  tos?: number;
  ipOptions?: number[];
  tcpOptions?: number[];
  /** Next header / protocol to claim, default the real one. */
  proto?: number;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, v >>> 16);
  put16(b, at + 2, v & 0xffff);
}
function get16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}
function get32(b: Uint8Array, at: number): number {
  return ((get16(b, at) << 16) | get16(b, at + 2)) >>> 0;
}

function ipPacket(spec: PacketSpec, proto: number, l4: Uint8Array, checksumAt: number): Uint8Array {
  const v4 = spec.version === 4;
  const options = spec.ipOptions ?? [];
  const ihl = v4 ? 20 + options.length : 40;
  const pkt = new Uint8Array(ihl + l4.length);
  pkt.set(l4, ihl);
  if (v4) {
    pkt[0] = 0x40 | (ihl / 4);
    pkt[1] = spec.tos ?? 0;
    put16(pkt, 2, pkt.length);
    put16(pkt, 4, spec.id ?? 0x1234);
    pkt[6] = 0x40; // DF
    pkt[8] = spec.ttl ?? 64;
    pkt[9] = spec.proto ?? proto;
    pkt.set(spec.src ?? V4_A, 12);
    pkt.set(spec.dst ?? V4_B, 16);
    pkt.set(options, 20);
    put16(pkt, 10, ~refOnesSum(pkt.subarray(0, ihl)) & 0xffff);
  } else {
    pkt[0] = 0x60 | ((spec.tos ?? 0) >> 4);
    pkt[1] = ((spec.tos ?? 0) & 0x0f) << 4;
    put16(pkt, 4, l4.length);
    pkt[6] = spec.proto ?? proto;
    pkt[7] = spec.ttl ?? 64;
    pkt.set(spec.src ?? V6_A, 8);
    pkt.set(spec.dst ?? V6_B, 24);
  }
  let sum = ~refOnesSum([...refPseudoHeader(pkt, proto, l4.length), ...l4]) & 0xffff;
  if (sum === 0 && proto === UDP) sum = 0xffff;
  put16(pkt, ihl + checksumAt, sum);
  return pkt;
}

function tcpPacket(spec: PacketSpec): Uint8Array {
  const options = spec.tcpOptions ?? [];
  const hl = 20 + options.length;
  const l4 = new Uint8Array(hl + spec.payload.length);
  put16(l4, 0, spec.sport ?? 40000);
  put16(l4, 2, spec.dport ?? 443);
  put32(l4, 4, spec.seq ?? 1000);
  put32(l4, 8, spec.ack ?? 777);
  l4[12] = (hl / 4) << 4;
  l4[13] = spec.flags ?? ACK;
  put16(l4, 14, spec.window ?? 512);
  l4.set(options, 20);
  l4.set(spec.payload, hl);
  return ipPacket(spec, TCP, l4, 16);
}

function udpPacket(spec: PacketSpec): Uint8Array {
  const l4 = new Uint8Array(8 + spec.payload.length);
  put16(l4, 0, spec.sport ?? 5353);
  put16(l4, 2, spec.dport ?? 51820);
  put16(l4, 4, l4.length);
  l4.set(spec.payload, 8);
  return ipPacket(spec, UDP, l4, 6);
}

let seed = 12345;
function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[i] = seed >>> 24;
  }
  return out;
}

/** Turns a complete packet into what the kernel hands to TSO: checksum field = pseudo-header sum. */
function asPartial(pkt: Uint8Array): Uint8Array {
  const ihl = ipHeaderLength(pkt);
  const proto = pkt[0] >> 4 === 4 ? pkt[9] : pkt[6];
  const at = ihl + (proto === TCP ? 16 : 6);
  put16(pkt, at, refOnesSum(refPseudoHeader(pkt, proto, pkt.length - ihl)));
  return pkt;
}

function gsoHdr(gsoType: number, gsoSize: number, pkt: Uint8Array): VnetHdr {
  const hdr = new VnetHdr();
  const ihl = ipHeaderLength(pkt);
  const tcp = (pkt[0] >> 4 === 4 ? pkt[9] : pkt[6]) === TCP;
  hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  hdr.gsoType = gsoType;
  hdr.gsoSize = gsoSize;
  hdr.hdrLen = ihl + (tcp ? (pkt[ihl + 12] >> 4) * 4 : 8);
  hdr.csumStart = ihl;
  hdr.csumOffset = tcp ? 16 : 6;
  return hdr;
}

/** Output slots for segment(): `slots` slots of `slotSize` bytes, each after `headroom` bytes. */
class Slots {
  readonly dst: Uint8Array;
  readonly starts: Int32Array;
  readonly lengths: Int32Array;
  constructor(
    readonly slots: number,
    readonly slotSize = 2048,
    readonly headroom = 16,
  ) {
    this.dst = new Uint8Array(slots * (slotSize + headroom));
    this.starts = new Int32Array(slots);
    this.lengths = new Int32Array(slots);
    for (let i = 0; i < slots; i++) this.starts[i] = i * (slotSize + headroom) + headroom;
  }
  run(pkt: Uint8Array, hdr: VnetHdr, maxSlots = this.slots): number {
    return segment(pkt, 0, pkt.length, hdr, this.dst, this.starts, this.lengths, 0, maxSlots, this.slotSize);
  }
  get(k: number): Uint8Array {
    return this.dst.subarray(this.starts[k], this.starts[k] + this.lengths[k]);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe("virtio_net_hdr", () => {
  test("reads and writes the little-endian layout", () => {
    const buf = new Uint8Array(14);
    const hdr = new VnetHdr();
    hdr.flags = 1;
    hdr.gsoType = VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN;
    hdr.hdrLen = 0x1234;
    hdr.gsoSize = 1380;
    hdr.csumStart = 40;
    hdr.csumOffset = 16;
    hdr.write(buf, 3);
    expect([...buf.subarray(3, 13)]).toEqual([1, 0x84, 0x34, 0x12, 1380 & 0xff, 1380 >> 8, 40, 0, 16, 0]);
    const back = new VnetHdr();
    expect(back.read(buf, 3)).toBe(true);
    expect(back).toEqual(hdr);
    back.clear();
    expect(back).toEqual(new VnetHdr());
    expect(back.read(buf, 5)).toBe(false); // 9 bytes left
  });
});

describe("checksum", () => {
  test("sumBytes matches the reference for odd lengths and offsets", () => {
    const data = randomBytes(3000);
    for (const offset of [0, 1, 2, 3, 7]) {
      for (const length of [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1399, 1400, 1401, 2990]) {
        const ref = refOnesSum(data.subarray(offset, offset + length));
        expect(fold(sumBytes(data, offset, length, 0))).toBe(ref);
      }
    }
  });

  test("sums chain: an even split sums like the whole, initial values are added", () => {
    const data = randomBytes(1001);
    const whole = fold(sumBytes(data, 1, 1000, 0));
    expect(fold(sumBytes(data, 501, 500, sumBytes(data, 1, 500, 0)))).toBe(whole);
    const withInitial = fold(sumBytes(data, 1, 1000, 0xfffff));
    expect(withInitial).toBe(fold(whole + 0xfffff));
    expect(fold(sumBytes(data, 0, 0, 0xffffffff))).toBe(fold(0xffffffff));
  });

  test("long all-ones input does not overflow", () => {
    const data = new Uint8Array(200_001).fill(0xff);
    expect(fold(sumBytes(data, 0, data.length, 0))).toBe(refOnesSum(data));
    const sum = sumBytes(data, 0, data.length, 0);
    expect(sum).toBeLessThan(2 ** 32);
  });

  test("fold handles sums beyond 2^32", () => {
    for (const n of [0, 1, 0xffff, 0x10000, 0x1fffe, 0xffffffff, 2 ** 40 + 5, 2 ** 52 + 12345]) {
      // Ones' complement sum: the residue mod 0xffff, with nonzero multiples shown as 0xffff.
      const expected = n === 0 ? 0 : n % 0xffff === 0 ? 0xffff : n % 0xffff;
      expect(fold(n)).toBe(expected);
    }
  });

  test("finishChecksum never yields 0", () => {
    expect(finishChecksum(0xffff)).toBe(0xffff);
    expect(finishChecksum(0x1234)).toBe(~0x1234 & 0xffff);
  });

  test("pseudoHeaderSum and ipv4HeaderChecksum", () => {
    const v4 = tcpPacket({ version: 4, payload: randomBytes(33), src: [192, 168, 1, 77], dst: [8, 8, 4, 4] });
    expect(fold(pseudoHeaderSum(v4, 0, 4, TCP, 53))).toBe(refOnesSum(refPseudoHeader(v4, TCP, 53)));
    const v6 = udpPacket({ version: 6, payload: randomBytes(33), src: V6_A.map((x, i) => x ^ (i * 37)) });
    expect(fold(pseudoHeaderSum(v6, 0, 6, UDP, 70000))).toBe(refOnesSum(refPseudoHeader(v6, UDP, 70000 & 0xffff)) + 1);

    const buf = new Uint8Array(5 + 24);
    buf.set(tcpPacket({ version: 4, payload: new Uint8Array(0), ipOptions: [1, 1, 1, 0], id: 999 }).subarray(0, 24), 5);
    const expected = get16(buf, 15);
    buf[15] = 0xab;
    buf[16] = 0xcd;
    expect(ipv4HeaderChecksum(buf, 5)).toBe(expected);
    expect(get16(buf, 15)).toBe(expected);
    expect(refOnesSum(buf.subarray(5))).toBe(0xffff);
  });
});

describe("completeChecksum", () => {
  test("finishes a partial TCP checksum in place (IPv4, odd payload, packet at an offset)", () => {
    const pkt = tcpPacket({ version: 4, payload: randomBytes(1001) });
    const expected = get16(pkt, 36);
    const buf = new Uint8Array(pkt.length + 13);
    buf.set(asPartial(pkt), 13);
    const hdr = gsoHdr(VIRTIO_NET_HDR_GSO_NONE, 0, pkt);
    expect(completeChecksum(buf, 13, pkt.length, hdr)).toBe(true);
    expect(get16(buf, 13 + 36)).toBe(expected);
    expect(l4ChecksumValid(buf.subarray(13))).toBe(true);
  });

  test("finishes a partial UDP checksum (IPv6)", () => {
    const pkt = udpPacket({ version: 6, payload: randomBytes(77) });
    const expected = get16(pkt, 46);
    asPartial(pkt);
    expect(completeChecksum(pkt, 0, pkt.length, gsoHdr(VIRTIO_NET_HDR_GSO_NONE, 0, pkt))).toBe(true);
    expect(get16(pkt, 46)).toBe(expected);
  });

  test("does nothing without NEEDS_CSUM; rejects offsets outside the packet", () => {
    const pkt = asPartial(tcpPacket({ version: 4, payload: randomBytes(10) }));
    const copy = pkt.slice();
    const hdr = gsoHdr(VIRTIO_NET_HDR_GSO_NONE, 0, pkt);
    hdr.flags = 0;
    expect(completeChecksum(pkt, 0, pkt.length, hdr)).toBe(true);
    expect(pkt).toEqual(copy);
    hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    hdr.csumStart = pkt.length - 1;
    hdr.csumOffset = 0;
    expect(completeChecksum(pkt, 0, pkt.length, hdr)).toBe(false);
    hdr.csumStart = 20;
    hdr.csumOffset = 1000;
    expect(completeChecksum(pkt, 0, pkt.length, hdr)).toBe(false);
    expect(pkt).toEqual(copy);
  });
});

describe("segment: TSO", () => {
  for (const version of [4, 6] as const) {
    test(`IPv${version}: 10000 bytes at MSS 1380`, () => {
      const payload = randomBytes(10000);
      const pkt = asPartial(
        tcpPacket({
          version,
          payload,
          seq: 0xfffff000,
          flags: ACK | PSH | FIN | CWR,
          id: 0xfffe,
          tcpOptions: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        }),
      );
      const hdr = gsoHdr(version === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6, 1380, pkt);
      const slots = new Slots(10);
      const n = slots.run(pkt, hdr);
      expect(n).toBe(8);
      const ihl = version === 4 ? 20 : 40;
      const headers = ihl + 32;
      const parts: Uint8Array[] = [];
      for (let k = 0; k < n; k++) {
        const seg = slots.get(k);
        const chunk = k < 7 ? 1380 : 10000 - 7 * 1380;
        expect(seg.length).toBe(headers + chunk);
        if (version === 4) {
          expect(get16(seg, 2)).toBe(seg.length);
          expect(get16(seg, 4)).toBe((0xfffe + k) & 0xffff);
          expect(ipv4HeaderValid(seg)).toBe(true);
        } else {
          expect(get16(seg, 4)).toBe(seg.length - 40);
        }
        expect(get32(seg, ihl + 4)).toBe((0xfffff000 + k * 1380) % 2 ** 32);
        const flags = seg[ihl + 13];
        expect(flags & (FIN | PSH)).toBe(k === n - 1 ? FIN | PSH : 0);
        expect(flags & CWR).toBe(k === 0 ? CWR : 0);
        expect(flags & ACK).toBe(ACK);
        expect([...seg.subarray(ihl + 20, headers)]).toEqual([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        expect(l4ChecksumValid(seg)).toBe(true);
        parts.push(seg.subarray(headers));
      }
      expect(concat(parts)).toEqual(payload);
    });
  }

  test("ECN bit and IPv4 options are accepted; options are copied into every segment", () => {
    const options = [0x94, 0x04, 0, 0]; // router alert
    const pkt = asPartial(tcpPacket({ version: 4, payload: randomBytes(3000), ipOptions: options }));
    const hdr = gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 1000, pkt);
    const slots = new Slots(4);
    expect(slots.run(pkt, hdr)).toBe(3);
    for (let k = 0; k < 3; k++) {
      const seg = slots.get(k);
      expect(seg[0]).toBe(0x46);
      expect([...seg.subarray(20, 24)]).toEqual(options);
      expect(ipv4HeaderValid(seg)).toBe(true);
      expect(l4ChecksumValid(seg)).toBe(true);
    }
  });

  test("hdr_len larger than the real headers is tolerated; trailing bytes are ignored", () => {
    const pkt = asPartial(tcpPacket({ version: 4, payload: randomBytes(2500) }));
    const padded = new Uint8Array(pkt.length + 7);
    padded.set(pkt);
    const hdr = gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1200, pkt);
    hdr.hdrLen = 128; // the kernel reports its linear area, which may include payload
    const slots = new Slots(3);
    expect(segment(padded, 0, padded.length, hdr, slots.dst, slots.starts, slots.lengths, 0, 3, 2048)).toBe(3);
    expect(slots.lengths[2]).toBe(40 + 100);
  });

  test("writes from firstSlot on", () => {
    const pkt = asPartial(tcpPacket({ version: 6, payload: randomBytes(2000) }));
    const slots = new Slots(6);
    const hdr = gsoHdr(VIRTIO_NET_HDR_GSO_TCPV6, 1000, pkt);
    expect(segment(pkt, 0, pkt.length, hdr, slots.dst, slots.starts, slots.lengths, 4, 2, 2048)).toBe(2);
    expect(slots.lengths[3]).toBe(0);
    expect(slots.lengths[4]).toBe(1060);
    expect(slots.lengths[5]).toBe(1060);
    expect(l4ChecksumValid(slots.get(5))).toBe(true);
  });

  test("a 64 KiB super-packet is cut completely", () => {
    const payload = randomBytes(65535 - 20 - 20);
    const pkt = asPartial(tcpPacket({ version: 4, payload }));
    const slots = new Slots(64, 1500);
    const n = slots.run(pkt, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1448, pkt));
    expect(n).toBe(Math.ceil(payload.length / 1448));
    const parts: Uint8Array[] = [];
    for (let k = 0; k < n; k++) {
      expect(l4ChecksumValid(slots.get(k))).toBe(true);
      parts.push(slots.get(k).subarray(40));
    }
    expect(concat(parts)).toEqual(payload);
  });
});

describe("segment: USO", () => {
  for (const version of [4, 6] as const) {
    test(`IPv${version}: 3000 bytes at 1000 per datagram, plus a short tail`, () => {
      const payload = randomBytes(3100);
      const pkt = asPartial(udpPacket({ version, payload, id: 7 }));
      const slots = new Slots(5);
      const n = slots.run(pkt, gsoHdr(VIRTIO_NET_HDR_GSO_UDP_L4, 1000, pkt));
      expect(n).toBe(4);
      const ihl = version === 4 ? 20 : 40;
      const parts: Uint8Array[] = [];
      for (let k = 0; k < n; k++) {
        const seg = slots.get(k);
        const chunk = k < 3 ? 1000 : 100;
        expect(seg.length).toBe(ihl + 8 + chunk);
        expect(get16(seg, ihl + 4)).toBe(8 + chunk);
        if (version === 4) {
          expect(get16(seg, 4)).toBe(7 + k);
          expect(ipv4HeaderValid(seg)).toBe(true);
        } else {
          expect(get16(seg, 4)).toBe(8 + chunk);
        }
        expect(l4ChecksumValid(seg)).toBe(true);
        expect(get16(seg, ihl + 6)).not.toBe(0);
        parts.push(seg.subarray(ihl + 8));
      }
      expect(concat(parts)).toEqual(payload);
    });
  }

  test("a UDP checksum that computes to 0 is sent as 0xffff", () => {
    const payload = randomBytes(100);
    payload[98] = 0;
    payload[99] = 0;
    const probe = udpPacket({ version: 4, payload });
    // Choose the last word so that everything sums to 0xffff: the checksum then computes to 0.
    const without = refOnesSum([...refPseudoHeader(probe, UDP, 108), ...probe.subarray(20, 26), 0, 0, ...payload]);
    put16(payload, 98, 0xffff - without);
    const pkt = asPartial(udpPacket({ version: 4, payload }));
    const slots = new Slots(1);
    expect(slots.run(pkt, gsoHdr(VIRTIO_NET_HDR_GSO_UDP_L4, 1000, pkt))).toBe(1);
    expect(get16(slots.get(0), 26)).toBe(0xffff);
    expect(l4ChecksumValid(slots.get(0))).toBe(true);
  });
});

describe("segment: other cases", () => {
  test("GSO_NONE is copied as one packet with its checksum completed", () => {
    const pkt = tcpPacket({ version: 4, payload: randomBytes(99) });
    const expected = pkt.slice();
    asPartial(pkt);
    const slots = new Slots(1);
    expect(slots.run(pkt, gsoHdr(VIRTIO_NET_HDR_GSO_NONE, 0, pkt))).toBe(1);
    expect(slots.get(0)).toEqual(expected);
  });

  test("too few slots: SEGMENT_NO_ROOM and nothing written", () => {
    const pkt = asPartial(tcpPacket({ version: 4, payload: randomBytes(5000) }));
    const slots = new Slots(8);
    expect(slots.run(pkt, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, pkt), 4)).toBe(SEGMENT_NO_ROOM);
    expect(slots.dst.every((b) => b === 0)).toBe(true);
    expect(slots.run(pkt, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, pkt), 5)).toBe(5);
    // Asking for slots the arrays do not have is a caller bug, not a bad packet.
    expect(() => slots.run(pkt, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, pkt), 9)).toThrow(RangeError);
  });

  test("malformed or unsupported packets: SEGMENT_MALFORMED", () => {
    const slots = new Slots(16);
    const tcp4 = asPartial(tcpPacket({ version: 4, payload: randomBytes(3000) }));
    const tcp6 = asPartial(tcpPacket({ version: 6, payload: randomBytes(3000) }));
    const udp4 = asPartial(udpPacket({ version: 4, payload: randomBytes(3000) }));
    const bad = (pkt: Uint8Array, hdr: VnetHdr, length = pkt.length) =>
      segment(pkt, 0, length, hdr, slots.dst, slots.starts, slots.lengths, 0, 16, slots.slotSize);

    const truncated = tcp4.length - 1;
    expect(bad(tcp4, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4), truncated)).toBe(SEGMENT_MALFORMED);
    expect(bad(tcp4, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4), 30)).toBe(SEGMENT_MALFORMED);
    expect(bad(tcp4, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4), 10)).toBe(SEGMENT_MALFORMED);
    expect(bad(tcp4, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 0, tcp4))).toBe(SEGMENT_MALFORMED); // gso_size 0
    expect(bad(tcp4, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV6, 1000, tcp4))).toBe(SEGMENT_MALFORMED); // version mismatch
    expect(bad(tcp6, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp6))).toBe(SEGMENT_MALFORMED);
    expect(bad(tcp4, gsoHdr(VIRTIO_NET_HDR_GSO_UDP_L4, 1000, tcp4))).toBe(SEGMENT_MALFORMED); // wrong protocol
    expect(bad(udp4, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, udp4))).toBe(SEGMENT_MALFORMED);
    expect(bad(udp4, gsoHdr(VIRTIO_NET_HDR_GSO_UDP, 1000, udp4))).toBe(SEGMENT_MALFORMED); // UFO
    expect(bad(tcp4, gsoHdr(2, 1000, tcp4))).toBe(SEGMENT_MALFORMED); // unknown type

    const longHdr = gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4);
    longHdr.hdrLen = tcp4.length + 1; // hdr_len pointing beyond the packet
    expect(bad(tcp4, longHdr)).toBe(SEGMENT_MALFORMED);

    const ext = asPartial(tcpPacket({ version: 6, payload: randomBytes(3000), proto: 0 })); // hop-by-hop
    expect(bad(ext, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV6, 1000, ext))).toBe(SEGMENT_MALFORMED);

    const fragment = tcp4.slice();
    fragment[6] |= 0x20; // MF
    expect(bad(fragment, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, fragment))).toBe(SEGMENT_MALFORMED);

    const shortDoff = tcp4.slice();
    shortDoff[32] = 4 << 4;
    expect(bad(shortDoff, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4))).toBe(SEGMENT_MALFORMED);

    const longDoff = asPartial(tcpPacket({ version: 4, payload: new Uint8Array(10) }));
    longDoff[32] = 15 << 4; // 60-byte TCP header in a 50-byte packet
    expect(bad(longDoff, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4))).toBe(SEGMENT_MALFORMED);

    const badIhl = tcp4.slice();
    badIhl[0] = 0x44;
    expect(bad(badIhl, gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4))).toBe(SEGMENT_MALFORMED);

    const notIp = tcp4.slice();
    notIp[0] = 0x55;
    expect(bad(notIp, gsoHdr(VIRTIO_NET_HDR_GSO_UDP_L4, 1000, tcp4))).toBe(SEGMENT_MALFORMED);

    // Segments larger than the slots.
    const hdr4 = gsoHdr(VIRTIO_NET_HDR_GSO_TCPV4, 1000, tcp4);
    const small = segment(tcp4, 0, tcp4.length, hdr4, slots.dst, slots.starts, slots.lengths, 0, 16, 1000);
    expect(small).toBe(SEGMENT_MALFORMED);
    // A slot that starts too close to the end of dst.
    const starts = new Int32Array([0, slots.dst.length - 500, 0]);
    expect(segment(tcp4, 0, tcp4.length, hdr4, slots.dst, starts, slots.lengths, 0, 3, 2048)).toBe(SEGMENT_MALFORMED);
  });
});

// ---------------------------------------------------------------------------------------------
// Coalescing.

const HEADROOM = VNET_HDR_LEN;

/** Packets laid out one after another in one buffer, each after VNET_HDR_LEN bytes of headroom. */
function batch(packets: Uint8Array[]): { buf: Uint8Array; offs: number[]; lens: number[] } {
  const buf = new Uint8Array(packets.reduce((n, p) => n + p.length + HEADROOM + 3, 0));
  const offs: number[] = [];
  const lens: number[] = [];
  let at = 0;
  for (const p of packets) {
    at += HEADROOM + 3; // odd alignment on purpose
    buf.set(p, at);
    offs.push(at);
    lens.push(p.length);
    at += p.length;
  }
  return { buf, offs, lens };
}

function coalesce(packets: Uint8Array[], c = new Coalescer(Math.max(64, packets.length))) {
  const { buf, offs, lens } = batch(packets);
  c.reset();
  for (let i = 0; i < packets.length; i++) expect(c.add(buf, offs[i], lens[i])).toBe(true);
  const n = c.finish();
  const outs: { hdr: VnetHdr; pkt: Uint8Array; segments: number; passThrough: boolean }[] = [];
  const raw: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    raw.push(c.outBuffer(i).slice(c.outOffset(i), c.outOffset(i) + c.outLength(i)));
    const hdr = new VnetHdr();
    hdr.read(c.outBuffer(i), c.outOffset(i));
    const pkt = c.outBuffer(i).slice(c.outOffset(i) + VNET_HDR_LEN, c.outOffset(i) + c.outLength(i));
    outs.push({ hdr, pkt, segments: c.outSegments(i), passThrough: c.outBuffer(i) === buf });
  }
  expectGatheredSame(packets, c, raw);
  return outs;
}

/**
 * The same batch through a Coalescer like `like` but with `gather`: each output's pieces, put
 * together, are the bytes of the contiguous output; a super-packet has one piece of headers and
 * one per segment's payload, a packet that passed through one piece in its own buffer.
 */
function expectGatheredSame(packets: Uint8Array[], like: Coalescer, contiguous: Uint8Array[]): void {
  const g = new Coalescer(like.maxPackets, like.trustChecksums);
  g.tcp = like.tcp;
  g.udp = like.udp;
  g.gather = true;
  const { buf, offs, lens } = batch(packets);
  g.reset();
  for (let i = 0; i < packets.length; i++) g.add(buf, offs[i], lens[i]);
  expect(g.finish()).toBe(contiguous.length);
  for (let i = 0; i < contiguous.length; i++) {
    const first = g.outFirstPiece(i);
    const pieces = g.outPieces(i);
    expect(pieces).toBe(g.outSegments(i) === 1 ? 1 : 1 + g.outSegments(i));
    const parts: Uint8Array[] = [];
    for (let j = first; j < first + pieces; j++) {
      parts.push(g.pieceBuffer(j).slice(g.pieceOffset(j), g.pieceOffset(j) + g.pieceLength(j)));
      if (j > first) expect(g.pieceBuffer(j)).toBe(buf); // payloads stay where they were decrypted
    }
    expect(concat(parts)).toEqual(contiguous[i]);
    expect(g.outLength(i)).toBe(contiguous[i].length);
  }
}

/** The vnet header a glued super-packet must carry: partial checksum, these GSO fields. */
function expectSuperPacketHeader(hdr: VnetHdr, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): void {
  const { flags } = hdr;
  expect({ flags, gsoType: hdr.gsoType, hdrLen: hdr.hdrLen, gsoSize: hdr.gsoSize, csumStart: hdr.csumStart, csumOffset: hdr.csumOffset })
    .toEqual({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType, hdrLen, gsoSize, csumStart, csumOffset });
}

/** What the kernel does with a CHECKSUM_PARTIAL packet: sum from csum_start, seeded by the field. */
function kernelCompletes(pkt: Uint8Array, hdr: VnetHdr): Uint8Array {
  const copy = pkt.slice();
  expect(completeChecksum(copy, 0, copy.length, hdr)).toBe(true);
  return copy;
}

/** A run of consecutive full-sized segments of one flow. */
interface FlowSpec extends Partial<PacketSpec> {
  mss?: number;
  firstSeq?: number;
  firstId?: number;
}

function flow(version: 4 | 6, count: number, opts: FlowSpec = {}): Uint8Array[] {
  const mss = opts.mss ?? 1000;
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    out.push(
      tcpPacket({
        version,
        ...opts,
        payload: randomBytes(mss),
        seq: ((opts.firstSeq ?? 5000) + k * mss) >>> 0,
        id: ((opts.firstId ?? 100) + k) & 0xffff,
      }),
    );
  }
  return out;
}

describe("Coalescer", () => {
  for (const version of [4, 6] as const) {
    test(`IPv${version}: segment → coalesce → kernel checksum → segment round trip`, () => {
      const payload = randomBytes(10000);
      const tcpOptions = [1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8];
      const original = asPartial(tcpPacket({ version, payload, flags: ACK | PSH, seq: 0xffffff00, id: 0xfffd, tcpOptions }));
      const ihl = version === 4 ? 20 : 40;
      const hdr = gsoHdr(version === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6, 1380, original);
      const slots = new Slots(8, 1500, 16);
      const n = slots.run(original, hdr);
      expect(n).toBe(8);

      // Coalesce straight from the slots (16 bytes of headroom each).
      const c = new Coalescer();
      c.reset();
      for (let k = 0; k < n; k++) expect(c.add(slots.dst, slots.starts[k], slots.lengths[k])).toBe(true);
      expect(c.finish()).toBe(1);
      expect(c.count).toBe(1);
      expect(c.outSegments(0)).toBe(8);
      const out = c.outBuffer(0).slice(c.outOffset(0), c.outOffset(0) + c.outLength(0));
      const outHdr = new VnetHdr();
      outHdr.read(out, 0);
      expectSuperPacketHeader(outHdr, version === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6, ihl + 32, 1380, ihl, 16);
      const pkt: Uint8Array = out.subarray(VNET_HDR_LEN);
      // Same bytes as the original super-packet, whose checksum field also held the pseudo-header sum.
      expect(pkt).toEqual(original);
      if (version === 4) expect(ipv4HeaderValid(pkt)).toBe(true);
      expect(l4ChecksumValid(pkt)).toBe(false);
      expect(l4ChecksumValid(kernelCompletes(pkt, outHdr))).toBe(true);

      // And the kernel's own GSO would cut it back into the very same segments.
      const again = new Slots(8, 1500, 16);
      expect(segment(pkt, 0, pkt.length, outHdr, again.dst, again.starts, again.lengths, 0, 8, 1500)).toBe(8);
      for (let k = 0; k < n; k++) expect(again.get(k)).toEqual(slots.get(k));
    });
  }

  test("non-TCP, SYN, FIN, RST, URG, ECE, CWR and pure ACKs pass through alone, in order", () => {
    const data = flow(4, 6);
    const udp = udpPacket({ version: 4, payload: randomBytes(50) });
    const syn = tcpPacket({ version: 4, payload: new Uint8Array(0), flags: SYN, sport: 1 });
    const fin = tcpPacket({ version: 4, payload: randomBytes(1000), flags: ACK | FIN, seq: 5000 + 2000, id: 102 });
    const pureAck = tcpPacket({ version: 4, payload: new Uint8Array(0), sport: 2 });
    const others = [RST | ACK, URG | ACK, ECE | ACK, CWR | ACK].map((flags, i) =>
      tcpPacket({ version: 4, payload: randomBytes(1000), flags, sport: 10 + i }),
    );
    const icmp = udpPacket({ version: 6, payload: randomBytes(20), proto: 58 });
    const packets = [udp, data[0], data[1], syn, fin, pureAck, ...others, icmp];
    const outs = coalesce(packets);
    expect(outs.map((o) => o.segments)).toEqual([1, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    const expected = [udp, null, syn, fin, pureAck, ...others, icmp];
    for (let i = 0; i < outs.length; i++) {
      if (expected[i] === null) continue;
      expect(outs[i].passThrough).toBe(true);
      expect(outs[i].hdr).toEqual(new VnetHdr());
      expect(outs[i].pkt).toEqual(expected[i]!);
    }
    expect(outs[1].passThrough).toBe(false);
  });

  test("a lone packet passes through without a copy, padding included", () => {
    const pkt = tcpPacket({ version: 6, payload: randomBytes(300) });
    const buf = new Uint8Array(400);
    buf.fill(0xee);
    buf.set(pkt, 20);
    const c = new Coalescer();
    c.reset();
    c.add(buf, 20, pkt.length + 4);
    expect(c.finish()).toBe(1);
    expect(c.outBuffer(0)).toBe(buf);
    expect(c.outOffset(0)).toBe(10);
    expect(c.outLength(0)).toBe(VNET_HDR_LEN + pkt.length + 4);
    expect([...buf.subarray(10, 20)]).toEqual(new Array(10).fill(0));
  });

  test("two interleaved flows coalesce into two items, in order of first packets", () => {
    const a = flow(4, 3, { sport: 1111 });
    const b = flow(4, 3, { sport: 2222, firstSeq: 90000, firstId: 5000 });
    const outs = coalesce([a[0], b[0], a[1], b[1], a[2], b[2]]);
    expect(outs.map((o) => o.segments)).toEqual([3, 3]);
    expect(get16(outs[0].pkt, 20)).toBe(1111);
    expect(get16(outs[1].pkt, 20)).toBe(2222);
    for (const o of outs) {
      expect(o.pkt.length).toBe(40 + 3000);
      expect(l4ChecksumValid(kernelCompletes(o.pkt, o.hdr))).toBe(true);
    }
  });

  test("IPv6 flows with the same ports but other addresses stay apart", () => {
    const a = flow(6, 2);
    const b = flow(6, 2, { src: V6_B, dst: V6_A });
    const outs = coalesce([a[0], b[0], a[1], b[1]]);
    expect(outs.map((o) => o.segments)).toEqual([2, 2]);
  });

  test("a gap in seq starts a new item", () => {
    const p = flow(4, 4);
    const outs = coalesce([p[0], p[1], p[3]]);
    expect(outs.map((o) => o.segments)).toEqual([2, 1]);
  });

  test("ID not consecutive, other ACK, window, TTL, TOS or options start a new item", () => {
    const base = { sport: 7 };
    const variants: Partial<PacketSpec>[] = [
      { id: 999 },
      { ack: 778 },
      { window: 513 },
      { ttl: 63 },
      { tos: 4 },
      { tcpOptions: [1, 1, 1, 1] },
    ];
    for (const variant of variants) {
      const p = flow(4, 2, base);
      const changed = tcpPacket({ version: 4, ...base, payload: randomBytes(1000), seq: 6000, id: 101, ...variant });
      const outs = coalesce([p[0], changed]);
      expect(outs.map((o) => o.segments)).toEqual([1, 1]);
    }
    const p6 = flow(6, 1);
    const other = tcpPacket({ version: 6, payload: randomBytes(1000), seq: 6000, ttl: 1 });
    expect(coalesce([p6[0], other]).map((o) => o.segments)).toEqual([1, 1]);
  });

  test("PSH is carried and closes the item", () => {
    const p = flow(4, 3);
    const psh = tcpPacket({ version: 4, payload: randomBytes(1000), seq: 6000, id: 101, flags: ACK | PSH });
    const outs = coalesce([p[0], psh, p[2]]);
    expect(outs.map((o) => o.segments)).toEqual([2, 1]);
    expect(outs[0].pkt[33] & PSH).toBe(PSH);
    // A PSH packet cannot start an item either.
    const first = tcpPacket({ version: 4, payload: randomBytes(1000), seq: 5000, id: 100, flags: ACK | PSH });
    expect(coalesce([first, p[1]]).map((o) => o.segments)).toEqual([1, 1]);
  });

  test("a short segment closes the item; a longer one does not join", () => {
    const p = flow(4, 3);
    const short = tcpPacket({ version: 4, payload: randomBytes(500), seq: 6000, id: 101 });
    const after = tcpPacket({ version: 4, payload: randomBytes(500), seq: 6500, id: 102 });
    expect(coalesce([p[0], short, after]).map((o) => o.segments)).toEqual([2, 1]);
    const small = flow(4, 2, { mss: 500 });
    const big = tcpPacket({ version: 4, payload: randomBytes(1000), seq: 5500, id: 101 });
    expect(coalesce([small[0], big]).map((o) => o.segments)).toEqual([1, 1]);
  });

  test("only the newest item of a flow grows, so the flow stays in order", () => {
    const p = flow(4, 2);
    const otherAck = tcpPacket({ version: 4, payload: randomBytes(1000), seq: 9000, id: 101, ack: 1 });
    const fixedId = tcpPacket({ version: 4, payload: p[1].subarray(40), seq: 6000, id: 102 });
    // p[1] would continue p[0], but otherAck came between: joining would reorder the flow.
    const outs = coalesce([p[0], otherAck, p[1]]);
    expect(outs.map((o) => o.segments)).toEqual([1, 1, 1]);
    expect(coalesce([p[0], otherAck, fixedId]).map((o) => o.segments)).toEqual([1, 1, 1]);
  });

  test("bad checksums are not glued when verified (the kernel would trust the merged packet)", () => {
    const verifying = () => new Coalescer(64, false);
    const p = flow(4, 3);
    const corrupt = p[1].slice();
    corrupt[100] ^= 1;
    expect(coalesce([p[0], corrupt, p[2]], verifying()).map((o) => o.segments)).toEqual([1, 1, 1]);
    const corruptFirst = p[0].slice();
    corruptFirst[100] ^= 1;
    expect(coalesce([corruptFirst, p[1], p[2]], verifying()).map((o) => o.segments)).toEqual([1, 2]);
    const badIpHeader = p[1].slice();
    badIpHeader[10] ^= 0x10; // the IPv4 header checksum itself
    expect(coalesce([p[0], badIpHeader], verifying()).map((o) => o.segments)).toEqual([1, 1]);
  });

  test("trusting checksums (the AEAD authenticated the packets) glues without verifying them", () => {
    const p = flow(4, 3);
    const corrupt = p[1].slice();
    corrupt[100] ^= 1; // a peer's own mistake: authenticated, passed on as the peer sent it
    const outs = coalesce([p[0], corrupt, p[2]], new Coalescer(64, true));
    expect(outs.map((o) => o.segments)).toEqual([3]);
    expect(outs[0].pkt[40 + 1000 + (100 - 40)]).toBe(corrupt[100]); // headers, first payload, the flipped byte
    // Good segments still come out as a correct super-packet: the kernel completes its checksum.
    const good = coalesce(flow(6, 4), new Coalescer(64, true));
    expect(good.map((o) => o.segments)).toEqual([4]);
    const whole = kernelCompletes(good[0].pkt, good[0].hdr);
    expect(l4ChecksumValid(whole)).toBe(true);
  });

  test("WONTUN_TRUST_INNER_CSUM sets the default; on unless 0/off/false/no", () => {
    const saved = process.env.WONTUN_TRUST_INNER_CSUM;
    try {
      delete process.env.WONTUN_TRUST_INNER_CSUM;
      expect(new Coalescer().trustChecksums).toBe(true);
      process.env.WONTUN_TRUST_INNER_CSUM = "0";
      expect(new Coalescer().trustChecksums).toBe(false);
      process.env.WONTUN_TRUST_INNER_CSUM = "1";
      expect(new Coalescer().trustChecksums).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.WONTUN_TRUST_INNER_CSUM;
      else process.env.WONTUN_TRUST_INNER_CSUM = saved;
    }
  });

  test("IPv4 with options or fragments is passed through", () => {
    const opt = tcpPacket({ version: 4, payload: randomBytes(1000), ipOptions: [1, 1, 1, 0] });
    const opt2 = tcpPacket({ version: 4, payload: randomBytes(1000), ipOptions: [1, 1, 1, 0], seq: 6000, id: 101 });
    expect(coalesce([opt, opt2]).map((o) => o.segments)).toEqual([1, 1]);
    const p = flow(4, 2);
    const frag = p[1].slice();
    frag[6] |= 0x20;
    expect(coalesce([p[0], frag]).map((o) => o.segments)).toEqual([1, 1]);
  });

  test("WireGuard padding after the IP packet is dropped from coalesced output", () => {
    const p = flow(4, 2);
    const padded = p.map((x) => concat([x, new Uint8Array(8).fill(0xaa)]));
    const c = new Coalescer();
    const { buf, offs } = batch(padded);
    c.reset();
    c.add(buf, offs[0], padded[0].length);
    c.add(buf, offs[1], padded[1].length);
    expect(c.finish()).toBe(1);
    expect(c.outLength(0)).toBe(VNET_HDR_LEN + 40 + 2000);
  });

  test("the 64 KiB IP length limit is respected", () => {
    for (const version of [4, 6] as const) {
      const p = flow(version, 50, { mss: 1400 });
      const outs = coalesce(p);
      const perItem = Math.floor((65535 - 20 - (version === 4 ? 20 : 0)) / 1400);
      expect(outs.map((o) => o.segments)).toEqual([perItem, 50 - perItem]);
      for (const o of outs) {
        const ipLength = version === 4 ? get16(o.pkt, 2) : get16(o.pkt, 4) + 40;
        expect(ipLength).toBe(o.pkt.length);
        expect(version === 4 ? ipLength : ipLength - 40).toBeLessThanOrEqual(65535);
        expect(l4ChecksumValid(kernelCompletes(o.pkt, o.hdr))).toBe(true);
      }
    }
  });

  test(`at most ${COALESCE_MAX_SEGMENTS} segments per item`, () => {
    const p = flow(4, 70, { mss: 100 });
    const segments = coalesce(p, new Coalescer(128)).map((o) => o.segments);
    expect(segments).toEqual([COALESCE_MAX_SEGMENTS, 70 - COALESCE_MAX_SEGMENTS]);
  });

  test("seq wraps around 2^32", () => {
    const p = flow(6, 3, { firstSeq: 2 ** 32 - 1500 });
    const outs = coalesce(p);
    expect(outs.map((o) => o.segments)).toEqual([3]);
    expect(l4ChecksumValid(kernelCompletes(outs[0].pkt, outs[0].hdr))).toBe(true);
  });

  test("a full batch refuses more; reset starts over and drops references", () => {
    const c = new Coalescer(2);
    const p = flow(4, 3);
    const { buf, offs, lens } = batch(p);
    c.reset();
    expect(c.add(buf, offs[0], lens[0])).toBe(true);
    expect(c.add(buf, offs[1], lens[1])).toBe(true);
    expect(c.add(buf, offs[2], lens[2])).toBe(false);
    expect(c.finish()).toBe(1);
    expect(() => c.add(buf, offs[2], lens[2])).toThrow();
    c.reset();
    expect(c.count).toBe(0);
    expect(c.add(buf, offs[2], lens[2])).toBe(true);
    expect(c.finish()).toBe(1);
    expect(c.outBuffer(0)).toBe(buf);
    c.reset();
    expect(c.outBuffer(0)).not.toBe(buf);
    expect(() => c.add(buf, 5, 10)).toThrow(RangeError); // no headroom
  });

  test("the arena grows for batches of large items and outputs stay intact", () => {
    const flows = [0, 1, 2, 3].map((i) => flow(4, 40, { mss: 1400, sport: 100 + i, firstId: i * 1000 }));
    const interleaved: Uint8Array[] = [];
    for (let k = 0; k < 40; k++) for (const f of flows) interleaved.push(f[k]);
    const outs = coalesce(interleaved, new Coalescer(160));
    expect(outs.map((o) => o.segments)).toEqual([40, 40, 40, 40]);
    for (let i = 0; i < 4; i++) {
      expect(outs[i].pkt.subarray(40)).toEqual(concat(flows[i].map((x) => x.subarray(40))));
      expect(l4ChecksumValid(kernelCompletes(outs[i].pkt, outs[i].hdr))).toBe(true);
    }
  });
});

describe("copyBytes", () => {
  test("copies short and long ranges, and overlapping ranges within one array", () => {
    const src = randomBytes(3000);
    for (const n of [0, 1, 31, 32, 33, 1500]) {
      const dst: Uint8Array = new Uint8Array(3100);
      copyBytes(src, 7, dst, 3, n);
      expect(dst.subarray(3, 3 + n)).toEqual(src.subarray(7, 7 + n));
      expect(dst[3 + n]).toBe(0);
    }
    const a = randomBytes(100);
    const expected = a.slice();
    copyBytes(a, 0, a, 5, 50);
    expect(a.subarray(5, 55)).toEqual(expected.subarray(0, 50));
  });
});

describe("hostile input (a peer controls what reaches the coalescer; the hdr comes from the kernel)", () => {
  /** A valid TCP flow, then copies with random bytes changed and random truncations. */
  function mutatedPackets(count: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let seq = 5000;
    for (let i = 0; i < count; i++) {
      const version = i % 3 === 0 ? 6 : 4;
      const pkt = tcpPacket({ version, payload: randomBytes(1 + (randomBytes(1)[0] * 5)), seq, id: i });
      seq += pkt.length;
      const r = randomBytes(3);
      if (r[0] < 160) {
        for (let k = 0; k <= (r[1] & 7); k++) pkt[randomBytes(2)[0] % pkt.length] = randomBytes(1)[0];
      }
      out.push(r[2] < 60 ? pkt.subarray(0, r[2] % pkt.length) : pkt);
    }
    return out;
  }

  test("the coalescer takes mutated and truncated packets without throwing; outputs stay inside their buffers", () => {
    const coalescer = new Coalescer(64);
    for (let round = 0; round < 200; round++) {
      const packets = mutatedPackets(1 + (round % 64));
      const slab = new Uint8Array(packets.length * 1600);
      coalescer.gather = round % 2 === 1;
      coalescer.reset();
      packets.forEach((p, i) => {
        slab.set(p, i * 1600 + 16);
        expect(coalescer.add(slab, i * 1600 + 16, p.length)).toBe(true);
      });
      const n = coalescer.finish();
      expect(n).toBeGreaterThan(0);
      let segments = 0;
      for (let i = 0; i < n; i++) {
        const buf = coalescer.outBuffer(i);
        expect(coalescer.outOffset(i)).toBeGreaterThanOrEqual(0);
        expect(coalescer.outOffset(i) + coalescer.outLength(i)).toBeLessThanOrEqual(buf.length);
        expect(coalescer.outLength(i)).toBeGreaterThanOrEqual(VNET_HDR_LEN);
        segments += coalescer.outSegments(i);
        let pieceBytes = 0;
        for (let j = coalescer.outFirstPiece(i); j < coalescer.outFirstPiece(i) + coalescer.outPieces(i); j++) {
          expect(coalescer.pieceOffset(j)).toBeGreaterThanOrEqual(0);
          expect(coalescer.pieceOffset(j) + coalescer.pieceLength(j)).toBeLessThanOrEqual(coalescer.pieceBuffer(j).length);
          pieceBytes += coalescer.pieceLength(j);
        }
        expect(pieceBytes).toBe(coalescer.outLength(i));
      }
      expect(segments).toBe(packets.length);
    }
  });

  test("segment() answers every mutated packet and random header with a count or an error code, never a throw", () => {
    const slots = new Slots(128, 1600, 32);
    const hdr = new VnetHdr();
    for (let round = 0; round < 2000; round++) {
      const [pkt] = mutatedPackets(1);
      const r = randomBytes(8);
      hdr.flags = r[0] & 3;
      hdr.gsoType = [0, 1, 3, 4, 5, 0x81, 7][r[1] % 7];
      hdr.gsoSize = (r[2] << 4) | (r[3] & 15);
      hdr.hdrLen = r[4];
      hdr.csumStart = r[5] % 80;
      hdr.csumOffset = r[6] % 24;
      const made = segment(pkt, 0, pkt.length, hdr, slots.dst, slots.starts, slots.lengths, 0, 128, 1500);
      expect(made === SEGMENT_MALFORMED || made === SEGMENT_NO_ROOM || (made >= 1 && made <= 128)).toBe(true);
      for (let k = 0; k < Math.max(0, made); k++) expect(slots.lengths[k]).toBeLessThanOrEqual(1500);
    }
  });
});

/** A run of equal-sized datagrams of one UDP flow (IPv4 IDs consecutive), the last `lastSize` long. */
function datagrams(version: 4 | 6, count: number, size: number, opts: Partial<PacketSpec> & { lastSize?: number; firstId?: number } = {}): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const length = k === count - 1 && opts.lastSize !== undefined ? opts.lastSize : size;
    out.push(udpPacket({ version, ...opts, payload: randomBytes(length), id: ((opts.firstId ?? 700) + k) & 0xffff }));
  }
  return out;
}

function udpCoalescer(): Coalescer {
  const c = new Coalescer(64);
  c.udp = true;
  return c;
}

describe("Coalescer, UDP (uso)", () => {
  for (const version of [4, 6] as const) {
    test(`IPv${version}: segment → coalesce → kernel checksum → segment round trip`, () => {
      const payload = randomBytes(9 * 120 + 37);
      const original = asPartial(udpPacket({ version, payload, id: 0xfffe }));
      const ihl = version === 4 ? 20 : 40;
      const hdr = gsoHdr(VIRTIO_NET_HDR_GSO_UDP_L4, 120, original);
      const slots = new Slots(10, 1500, 16);
      const n = slots.run(original, hdr);
      expect(n).toBe(10);

      const c = udpCoalescer();
      c.reset();
      for (let k = 0; k < n; k++) expect(c.add(slots.dst, slots.starts[k], slots.lengths[k])).toBe(true);
      expect(c.finish()).toBe(1);
      expect(c.outSegments(0)).toBe(10);
      const out = c.outBuffer(0).slice(c.outOffset(0), c.outOffset(0) + c.outLength(0));
      const outHdr = new VnetHdr();
      outHdr.read(out, 0);
      expectSuperPacketHeader(outHdr, VIRTIO_NET_HDR_GSO_UDP_L4, ihl + 8, 120, ihl, 6);
      const pkt: Uint8Array = out.subarray(VNET_HDR_LEN);
      // The very super-packet a local sender's UDP_SEGMENT would have made: UDP length over all of it.
      expect(pkt).toEqual(original);
      expect(get16(pkt, ihl + 4)).toBe(pkt.length - ihl);
      if (version === 4) expect(ipv4HeaderValid(pkt)).toBe(true);
      expect(l4ChecksumValid(kernelCompletes(pkt, outHdr))).toBe(true);

      // And cut by the kernel's rules it gives back the very same datagrams.
      const again = new Slots(10, 1500, 16);
      expect(segment(pkt, 0, pkt.length, outHdr, again.dst, again.starts, again.lengths, 0, 10, 1500)).toBe(10);
      for (let k = 0; k < n; k++) expect(again.get(k)).toEqual(slots.get(k));
    });
  }

  test("off by default (a TUN without USO): datagrams pass through alone", () => {
    const outs = coalesce(datagrams(4, 4, 64));
    expect(outs.map((o) => o.segments)).toEqual([1, 1, 1, 1]);
    expect(outs.every((o) => o.passThrough)).toBe(true);
  });

  test("a shorter datagram ends the item; a longer one, other ports, or TCP on the same ports do not join", () => {
    const run = datagrams(4, 3, 64, { lastSize: 20 });
    const after = udpPacket({ version: 4, payload: randomBytes(64), id: 703 });
    const outs = coalesce([...run, after], udpCoalescer());
    expect(outs.map((o) => o.segments)).toEqual([3, 1]);

    const longer = datagrams(4, 2, 64);
    longer.push(udpPacket({ version: 4, payload: randomBytes(100), id: 702 }));
    expect(coalesce(longer, udpCoalescer()).map((o) => o.segments)).toEqual([2, 1]);

    const a = datagrams(6, 2, 64, { sport: 1000 });
    const b = datagrams(6, 2, 64, { sport: 2000 });
    const tcpSamePorts = tcpPacket({ version: 6, payload: randomBytes(64), sport: 1000, dport: 51820 });
    const outs2 = coalesce([a[0], b[0], tcpSamePorts, a[1], b[1]], udpCoalescer());
    expect(outs2.map((o) => o.segments)).toEqual([2, 2, 1]);
    expect(get16(outs2[0].pkt, 40)).toBe(1000);
    expect(get16(outs2[1].pkt, 40)).toBe(2000);
  });

  test("IPv4: an ID out of sequence, other TTL or TOS, or a zero checksum ('none') are not glued", () => {
    const gap = datagrams(4, 2, 64);
    gap.push(udpPacket({ version: 4, payload: randomBytes(64), id: 900 }));
    expect(coalesce(gap, udpCoalescer()).map((o) => o.segments)).toEqual([2, 1]);
    const ttl = [...datagrams(4, 1, 64), udpPacket({ version: 4, payload: randomBytes(64), id: 701, ttl: 9 })];
    expect(coalesce(ttl, udpCoalescer()).map((o) => o.segments)).toEqual([1, 1]);
    const tos = [...datagrams(4, 1, 64), udpPacket({ version: 4, payload: randomBytes(64), id: 701, tos: 0x10 })];
    expect(coalesce(tos, udpCoalescer()).map((o) => o.segments)).toEqual([1, 1]);
    const unchecked = datagrams(4, 3, 64);
    for (const p of unchecked) put16(p, 26, 0);
    expect(coalesce(unchecked, udpCoalescer()).map((o) => o.segments)).toEqual([1, 1, 1]);
  });

  test("a UDP length that disagrees with the IP length passes through", () => {
    const run = datagrams(4, 3, 64);
    put16(run[1], 24, 50);
    expect(coalesce(run, udpCoalescer()).map((o) => o.segments)).toEqual([1, 1, 1]);
  });

  test("bad UDP checksums are not glued when verified", () => {
    const run = datagrams(6, 3, 64);
    run[1][60] ^= 1;
    const c = new Coalescer(64, false);
    c.udp = true;
    expect(coalesce(run, c).map((o) => o.segments)).toEqual([1, 1, 1]);
    const good = datagrams(6, 3, 64);
    expect(coalesce(good, c).map((o) => o.segments)).toEqual([3]);
  });

  test("tcp = false leaves TCP alone (uso without gro)", () => {
    const c = udpCoalescer();
    c.tcp = false;
    expect(coalesce(flow(4, 3), c).map((o) => o.segments)).toEqual([1, 1, 1]);
    expect(coalesce(datagrams(4, 3, 64), c).map((o) => o.segments)).toEqual([3]);
  });
});
