// The TSO segmenter and the TCP coalescer. Random valid TCP super-packets (IPv4 with options or
// IPv6, TCP options, any payload and MSS, ACK or ACK|PSH) as the kernel hands them over (checksum
// field = pseudo-header sum), TCP or UDP (USO): coalesce(segment(x)) gives x back with the same GSO
// header, byte for byte. Mutated and truncated super-packets and headers: segment() returns a count or an error
// code, never throws; the coalescer takes any bytes without throwing.
import { COALESCE_MAX_SEGMENTS, Coalescer } from "../../../src/net/offload/coalesce.ts";
import { segment } from "../../../src/net/offload/segment.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP_L4, VNET_HDR_LEN, VnetHdr,
} from "../../../src/net/offload/virtio-net-hdr.ts";
import { hex, invariant, shrinkBytes, type Target } from "../engine.ts";
import { concat, mutateBytes } from "../mutate.ts";
import type { Rng } from "../rng.ts";

function onesSum(bytes: ArrayLike<number>, from: number, to: number, start = 0): number {
  let s = start;
  for (let i = from; i < to; i += 2) s += (bytes[i] << 8) | (i + 1 < to ? bytes[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** A TCP or UDP super-packet with the checksum field holding the pseudo-header sum (CHECKSUM_PARTIAL). */
function superPacket(rng: Rng, v6: boolean, udp: boolean, payloadLength: number, ipv4Options: boolean): Uint8Array {
  const ipOptions = v6 || !ipv4Options ? 0 : 4 * rng.int(11);
  const ihl = v6 ? 40 : 20 + ipOptions;
  const thl = udp ? 8 : 20 + 4 * rng.int(11);
  const pkt = rng.bytes(ihl + thl + payloadLength);
  const put16 = (at: number, v: number) => { pkt[at] = v >> 8; pkt[at + 1] = v & 0xff; };
  const proto = udp ? 17 : 6;
  if (v6) {
    pkt[0] = 0x60 | (pkt[0] & 0x0f);
    put16(4, thl + payloadLength);
    pkt[6] = proto;
  } else {
    pkt[0] = 0x40 | (ihl / 4);
    put16(2, pkt.length);
    pkt[6] = 0x40; // DF, not a fragment
    pkt[7] = 0;
    pkt[9] = proto;
    for (let i = 20; i < ihl; i++) pkt[i] = 1; // NOP options
    put16(10, 0);
    put16(10, ~onesSum(pkt, 0, ihl) & 0xffff);
  }
  const l4 = pkt.length - ihl;
  const pseudo = v6 ? onesSum(pkt, 8, 40, l4 + proto) : onesSum(pkt, 12, 20, l4 + proto);
  if (udp) {
    put16(ihl + 4, l4);
    put16(ihl + 6, pseudo);
    return pkt;
  }
  pkt[ihl + 12] = (thl / 4) << 4;
  pkt[ihl + 13] = rng.chance(0.5) ? 0x10 : 0x18; // ACK or ACK|PSH
  for (let i = ihl + 20; i < ihl + thl; i++) pkt[i] = 1;
  pkt[ihl + 18] = pkt[ihl + 19] = 0; // urgent pointer
  put16(ihl + 16, pseudo);
  return pkt;
}

function gsoHeader(pkt: Uint8Array, mss: number): VnetHdr {
  const v6 = pkt[0] >> 4 === 6;
  const ihl = v6 ? 40 : (pkt[0] & 0x0f) * 4;
  const udp = (v6 ? pkt[6] : pkt[9]) === 17;
  const hdr = new VnetHdr();
  hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  hdr.gsoType = udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
  hdr.gsoSize = mss;
  hdr.hdrLen = ihl + (udp ? 8 : (pkt[ihl + 12] >> 4) * 4);
  hdr.csumStart = ihl;
  hdr.csumOffset = udp ? 6 : 16;
  return hdr;
}

export interface OffloadInput {
  packet: Uint8Array;
  /** gso_size, then the header fields as given to segment(). */
  hdr: [flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number];
  /** True: a valid super-packet, the round trip must hold. */
  valid: boolean;
}

const SLOTS = 128;
const SLOT_SIZE = 65535 + 64;
const HEADROOM = 16;
const dst = new Uint8Array(SLOTS * (SLOT_SIZE + HEADROOM));
const starts = new Int32Array(SLOTS).map((_, i) => i * (SLOT_SIZE + HEADROOM) + HEADROOM);
const lengths = new Int32Array(SLOTS);
const coalescer = new Coalescer(COALESCE_MAX_SEGMENTS);
coalescer.udp = true;

function toHdr(h: OffloadInput["hdr"]): VnetHdr {
  const hdr = new VnetHdr();
  [hdr.flags, hdr.gsoType, hdr.hdrLen, hdr.gsoSize, hdr.csumStart, hdr.csumOffset] = h;
  return hdr;
}

/** Output i's bytes, its pieces put together (a copy: fuzzing may allocate). */
function outputBytes(i: number): Uint8Array {
  const first = coalescer.outFirstPiece(i);
  const parts: Uint8Array[] = [];
  for (let j = first; j < first + coalescer.outPieces(i); j++) {
    parts.push(coalescer.pieceBuffer(j).subarray(coalescer.pieceOffset(j), coalescer.pieceOffset(j) + coalescer.pieceLength(j)));
  }
  return concat(...parts);
}

export const offloadTarget: Target<OffloadInput> = {
  name: "offload",
  about: "coalesce(segment(x)) == x for valid TCP and UDP super-packets; mutated/truncated input never throws",
  generate(rng) {
    const v6 = rng.chance(0.5);
    const udp = rng.chance(0.4);
    const mss = rng.chance(0.3) ? rng.pick([536, 1220, 1380, 1440, 1460]) : rng.range(64, 9000);
    const headers = 100; // room left for IP and TCP headers with options
    const maxPayload = Math.min(65535 - headers, mss * COALESCE_MAX_SEGMENTS);
    const payload = rng.range(mss + 1, Math.max(mss + 1, maxPayload));
    // The coalescer glues only IPv4 with a 20-byte header (documented); segment() takes options.
    const valid = rng.chance(0.5);
    let packet = superPacket(rng, v6, udp, Math.min(payload, maxPayload), !valid && rng.chance(0.3));
    const h = gsoHeader(packet, mss);
    let hdr: OffloadInput["hdr"] = [h.flags, h.gsoType, h.hdrLen, h.gsoSize, h.csumStart, h.csumOffset];
    if (valid) return { packet, hdr, valid: true };
    if (rng.chance(0.7)) packet = mutateBytes(rng, packet);
    if (rng.chance(0.4)) {
      const i = rng.int(6);
      hdr = [...hdr] as OffloadInput["hdr"];
      hdr[i] = rng.pick([0, 1, 3, 4, 5, 0x80, 0x81, 0xff, 0xffff, rng.int(0x10000)]);
    }
    return { packet, hdr, valid: false };
  },
  check({ packet, hdr, valid }) {
    const header = toHdr(hdr);
    const n = segment(packet, 0, packet.length, header, dst, starts, lengths, 0, SLOTS, SLOT_SIZE);
    invariant(Number.isInteger(n), "segment returns a count or an error code", () => String(n));
    if (valid) invariant(n >= 2, "a valid super-packet is cut into its segments", () => `segment returned ${n}`);
    if (n <= 0) return;
    for (let k = 0; k < n; k++) invariant(lengths[k] > 0 && lengths[k] <= SLOT_SIZE, "segments fit their slots", () => `segment ${k}: ${lengths[k]}`);
    // In batches of the coalescer's size, as KernelTun writes them; half the inputs (by length,
    // so a failure reproduces) in gather mode, the pieces KernelTun hands to writev.
    coalescer.gather = (packet.length & 1) === 1;
    let outputs = 0;
    let segments = 0;
    const drain = () => {
      const count = coalescer.finish();
      invariant(count >= 1, "a batch gives at least one output");
      for (let i = 0; i < count; i++) {
        invariant(coalescer.outLength(i) > VNET_HDR_LEN, "every output holds a header and a packet");
        let pieceBytes = 0;
        for (let j = coalescer.outFirstPiece(i); j < coalescer.outFirstPiece(i) + coalescer.outPieces(i); j++) {
          invariant(coalescer.pieceOffset(j) >= 0 && coalescer.pieceOffset(j) + coalescer.pieceLength(j) <= coalescer.pieceBuffer(j).length, "pieces lie inside their buffers");
          pieceBytes += coalescer.pieceLength(j);
        }
        invariant(pieceBytes === coalescer.outLength(i), "an output's pieces add up to its length", () => `${pieceBytes} of ${coalescer.outLength(i)}`);
        segments += coalescer.outSegments(i);
      }
      outputs += count;
    };
    coalescer.reset();
    for (let k = 0; k < n; k++) {
      if (!coalescer.add(dst, starts[k], lengths[k])) {
        drain();
        coalescer.reset();
        invariant(coalescer.add(dst, starts[k], lengths[k]), "an empty batch takes a packet");
      }
    }
    drain();
    invariant(segments === n, "every packet is in exactly one output", () => `${segments} of ${n}`);
    if (!valid) return;
    invariant(outputs === 1, "a valid super-packet's segments are glued into one", () => `${outputs} outputs`);
    const out = outputBytes(0);
    const got = new VnetHdr();
    got.read(out, 0);
    const back = out.subarray(VNET_HDR_LEN);
    const same = back.length === packet.length && back.every((v, i) => v === packet[i]);
    invariant(same, "coalesce(segment(x)) == x", () => {
      const at = back.findIndex((v, i) => v !== packet[i]);
      return `lengths ${back.length} vs ${packet.length}, first difference at byte ${at}`;
    });
    invariant(got.gsoType === header.gsoType && got.gsoSize === header.gsoSize && got.hdrLen === header.hdrLen &&
      got.csumStart === header.csumStart && got.csumOffset === header.csumOffset, "the GSO header comes back the same",
      () => JSON.stringify({ got, want: header }));
  },
  *shrink(input) {
    if (input.valid) return; // a valid packet shrunk is no longer valid
    for (const packet of shrinkBytes(input.packet)) yield { ...input, packet };
  },
  show: (input) => `valid=${input.valid} hdr=[flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset]=${JSON.stringify(input.hdr)} packet=${hex(input.packet)}`,
};
