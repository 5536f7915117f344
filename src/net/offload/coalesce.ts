// Coalescing for TUN writes (the receive-side twin of segment.ts): consecutive segments of a TCP
// flow, or consecutive datagrams of a UDP flow, in one batch of decrypted packets are glued into
// one GSO super-packet, so the kernel takes them with one write(2) and one trip through its
// stack. Everything else passes through untouched, in order. State lives in typed arrays sized at
// construction; nothing is allocated per packet (the output arena is allocated lazily and only
// grows when a batch needs more). An output is a list of pieces: one contiguous piece, or (with
// `gather`) the super-packet's headers followed by each segment's payload where it lies, for a
// writev(2) that spares copying the payloads together.

import { fold, ipv4HeaderChecksum, pseudoHeaderSum, sumBytes } from "./checksum.ts";
import { copyBytes } from "./copy-bytes.ts";
import { envSwitch, TRUST_INNER_CSUM_ENV } from "../../switches.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VNET_HDR_LEN,
  VnetHdr,
  writeZeroVnetHdr,
} from "./virtio-net-hdr.ts";

/** Most segments glued into one item: an arbitrary bound on the kernel's work per write. */
export const COALESCE_MAX_SEGMENTS = 64;
/** IPv4 total length and IPv6 payload length are 16-bit fields. */
const MAX_IP_LENGTH = 65535;
/** First arena size: enough for a batch of 64 full-size (1500) packets without growing. */
const INITIAL_ARENA = 128 * 1024;

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const UDP_HEADER = 8;
const UDP_CHECKSUM = 6;
const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
const TCP_MIN_HEADER = 20;
const TCP_CHECKSUM = 16;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;

const EMPTY = new Uint8Array(0);

/**
 * One batch at a time: reset(), add() each packet in arrival order, finish(), then write
 * outputs 0..count-1, each buffer[offset..offset+length) being a vnet header and a packet.
 *
 * A TCP packet joins the most recent item of its flow (same addresses and ports) when it
 * directly follows it: IPv4 with a 20-byte header and not a fragment, or IPv6 with TCP as next
 * header; same IPv4 TOS, TTL and flags or IPv6 traffic class, flow label and hop limit; same TCP
 * header length, option bytes, ACK number and window; flags ACK or ACK|PSH only; a payload; seq
 * right after the item's last byte; IPv4 ID one more than the previous; a payload no longer than
 * the item's first (a shorter one, or PSH, closes the item); the IP length staying within 65535
 * and at most COALESCE_MAX_SEGMENTS segments. Unless `trustChecksums`, both TCP checksums (and
 * IPv4 header checksums) are verified before gluing, because the kernel trusts a CHECKSUM_PARTIAL
 * packet's payload. With `trustChecksums` (default: WONTUN_TRUST_INNER_CSUM, on) they are not:
 * a WireGuard transport packet's Poly1305 tag has already authenticated every byte the peer sent,
 * so a checksum pass over the payload can only find what the peer itself got wrong, and
 * verifying cost ~10 % of the receiving end's CPU. (wontun's plaintext protocol has no tag, but its
 * datagrams carry a UDP checksum over the same bytes that the kernel verified on receipt.)
 * Packets that cannot join anything (other protocols, SYN/FIN/RST/URG/ECE/CWR, pure ACKs, bad
 * checksums when verified) become items of their own; only-child items go out as they came, with a zero
 * vnet header written into the VNET_HDR_LEN bytes of headroom the caller leaves before each.
 * Outputs are in the order of their items' first packets.
 *
 * With `udp` (the TUN takes USO: TUN_F_USO4/6, Linux 6.2+), a UDP datagram joins the most recent
 * item of its flow under the same IP rules (IPv4 ID one more than the previous: the kernel numbers
 * the segments it cuts that way), with a payload no longer than the item's first (a shorter one
 * closes the item) and, for IPv4, a non-zero checksum (zero means "none", which a super-packet
 * cannot say). The kernel cuts the super-packet (GSO_UDP_L4) back into exactly those datagrams
 * before any socket sees them; wireguard-go does the same since 2024.
 */
export class Coalescer {
  readonly maxPackets: number;
  /** Glue segments without verifying their checksums (see above); may be changed between batches. */
  trustChecksums: boolean;
  /** Glue TCP segments; may be changed between batches. */
  tcp = true;
  /** Glue UDP datagrams too (the TUN takes GSO_UDP_L4); may be changed between batches. */
  udp = false;
  /**
   * A super-packet's payloads stay where they are: its output is a piece of headers in the arena
   * followed by one piece per segment's payload (for writev). Off, each output is one contiguous
   * piece. May be changed between batches.
   */
  gather = false;

  // Per packet, in add() order.
  private readonly packetBuffer: Uint8Array[];
  private readonly packetOffset: Int32Array;
  private readonly packetLength: Int32Array;
  private readonly packetPayload: Int32Array;
  /** Next packet of the same item, or -1. */
  private readonly packetNext: Int32Array;
  private packets = 0;

  // Per item; item i is also output i.
  private readonly itemFirst: Int32Array;
  private readonly itemLast: Int32Array;
  private readonly itemSegments: Int32Array;
  /** 4 or 6 for a TCP or UDP flow that later packets may look up; 0 for anything else. */
  private readonly itemVersion: Uint8Array;
  /** PROTO_TCP or PROTO_UDP. */
  private readonly itemProto: Uint8Array;
  private readonly itemFlowHash: Int32Array;
  /** The IP header length of the first packet: where its ports are. */
  private readonly itemIpHeader: Int32Array;
  /** TCP header length, or UDP_HEADER. */
  private readonly itemL4Header: Int32Array;
  /** 1 while packets may still be appended. */
  private readonly itemOpen: Uint8Array;
  /** Payload length of the first packet: the gso_size of the super-packet. */
  private readonly itemGsoSize: Int32Array;
  private readonly itemPayload: Int32Array;
  private readonly itemNextSeq: Uint32Array;
  private readonly itemLastId: Int32Array;
  private readonly itemPsh: Uint8Array;
  // What a joining packet must repeat, read once from the item's first packet (see inspect()).
  private readonly itemPorts: Int32Array;
  private readonly itemSrc4: Int32Array;
  private readonly itemDst4: Int32Array;
  private readonly itemIpKey: Int32Array;
  private readonly itemAck: Int32Array;
  private readonly itemWindow: Int32Array;
  private items = 0;

  // Results of finish().
  private readonly outBuffers: Uint8Array[];
  private readonly outOffsets: Int32Array;
  private readonly outLengths: Int32Array;
  /** Output i is pieces outFirstPieces[i] .. outFirstPieces[i] + outPieceCount[i] - 1. */
  private readonly outFirstPieces: Int32Array;
  private readonly outPieceCount: Int32Array;
  private readonly pieceBuffers: Uint8Array[];
  private readonly pieceOffsets: Int32Array;
  private readonly pieceLengths: Int32Array;
  private pieces = 0;
  private arena: Uint8Array = EMPTY;
  private finished = false;
  private readonly hdr = new VnetHdr();

  // What inspect() found about the packet being added (fields, so nothing is allocated).
  private curVersion = 0;
  private curIpHeader = 0;
  private curProto = 0;
  private curL4Header = 0;
  private curPayload = 0;
  private curFlowHash = 0;
  private curEligible = false;
  /** Source and destination ports as one word. */
  private curPorts = 0;
  /** IPv4 addresses as words (0 for IPv6, whose addresses are compared as bytes). */
  private curSrc4 = 0;
  private curDst4 = 0;
  /** IPv4 TOS, flags and TTL (0 for IPv6). */
  private curIpKey = 0;
  /** TCP ACK number and window (0 for UDP). */
  private curAck = 0;
  private curWindow = 0;

  constructor(maxPackets = 64, trustChecksums = envSwitch(TRUST_INNER_CSUM_ENV, true)) {
    if (!Number.isInteger(maxPackets) || maxPackets < 1) throw new RangeError(`bad maxPackets ${maxPackets}`);
    this.maxPackets = maxPackets;
    this.trustChecksums = trustChecksums;
    this.packetBuffer = new Array<Uint8Array>(maxPackets).fill(EMPTY);
    this.packetOffset = new Int32Array(maxPackets);
    this.packetLength = new Int32Array(maxPackets);
    this.packetPayload = new Int32Array(maxPackets);
    this.packetNext = new Int32Array(maxPackets);
    this.itemFirst = new Int32Array(maxPackets);
    this.itemLast = new Int32Array(maxPackets);
    this.itemSegments = new Int32Array(maxPackets);
    this.itemVersion = new Uint8Array(maxPackets);
    this.itemProto = new Uint8Array(maxPackets);
    this.itemFlowHash = new Int32Array(maxPackets);
    this.itemIpHeader = new Int32Array(maxPackets);
    this.itemL4Header = new Int32Array(maxPackets);
    this.itemOpen = new Uint8Array(maxPackets);
    this.itemGsoSize = new Int32Array(maxPackets);
    this.itemPayload = new Int32Array(maxPackets);
    this.itemNextSeq = new Uint32Array(maxPackets);
    this.itemLastId = new Int32Array(maxPackets);
    this.itemPsh = new Uint8Array(maxPackets);
    this.itemPorts = new Int32Array(maxPackets);
    this.itemSrc4 = new Int32Array(maxPackets);
    this.itemDst4 = new Int32Array(maxPackets);
    this.itemIpKey = new Int32Array(maxPackets);
    this.itemAck = new Int32Array(maxPackets);
    this.itemWindow = new Int32Array(maxPackets);
    this.outBuffers = new Array<Uint8Array>(maxPackets).fill(EMPTY);
    this.outOffsets = new Int32Array(maxPackets);
    this.outLengths = new Int32Array(maxPackets);
    this.outFirstPieces = new Int32Array(maxPackets);
    this.outPieceCount = new Int32Array(maxPackets);
    // At most one piece per packet plus one of headers per item.
    this.pieceBuffers = new Array<Uint8Array>(2 * maxPackets).fill(EMPTY);
    this.pieceOffsets = new Int32Array(2 * maxPackets);
    this.pieceLengths = new Int32Array(2 * maxPackets);
  }

  /** Starts a new batch, dropping every reference to the previous batch's packets. */
  reset(): void {
    for (let p = 0; p < this.packets; p++) this.packetBuffer[p] = EMPTY;
    for (let i = 0; i < this.items; i++) this.outBuffers[i] = EMPTY;
    for (let j = 0; j < this.pieces; j++) this.pieceBuffers[j] = EMPTY;
    this.pieces = 0;
    this.packets = 0;
    this.items = 0;
    this.finished = false;
  }

  /**
   * Adds the IP packet buf[off..off+len); buf[off-VNET_HDR_LEN..off) must be writable headroom.
   * The bytes must stay untouched until the outputs are written. Returns false, adding nothing,
   * when the batch already holds maxPackets packets: finish and write it, reset(), add again.
   */
  add(buf: Uint8Array, off: number, len: number): boolean {
    if (this.finished) throw new Error("Coalescer.add after finish(): reset() first");
    if (off < VNET_HDR_LEN || len < 0 || off + len > buf.length) {
      throw new RangeError(`packet [${off}, ${off + len}) lacks headroom or lies outside its buffer`);
    }
    if (this.packets === this.maxPackets) return false;
    const p = this.packets++;
    this.packetBuffer[p] = buf;
    this.packetOffset[p] = off;
    this.packetLength[p] = len;
    this.packetNext[p] = -1;

    const version = this.inspect(buf, off, len);
    this.packetPayload[p] = this.curPayload;
    if (version !== 0) {
      const item = this.latestItemOfFlow(buf, off);
      if (item >= 0 && this.itemOpen[item] === 1 && this.curEligible && this.canAppend(item, p)) {
        this.append(item, p);
        return true;
      }
    }
    this.newItem(p, version);
    return true;
  }

  /** Lays out the outputs of the batch and returns their number. */
  finish(): number {
    if (this.finished) return this.items;
    this.finished = true;
    const gather = this.gather;
    let arenaNeeded = 0;
    for (let i = 0; i < this.items; i++) {
      if (this.itemSegments[i] === 1) continue;
      arenaNeeded += VNET_HDR_LEN + this.itemIpHeader[i] + this.itemL4Header[i] + (gather ? 0 : this.itemPayload[i]);
    }
    if (arenaNeeded > this.arena.length) {
      this.arena = new Uint8Array(Math.max(arenaNeeded, 2 * this.arena.length, INITIAL_ARENA));
    }
    let arenaAt = 0;
    for (let i = 0; i < this.items; i++) {
      this.outFirstPieces[i] = this.pieces;
      if (this.itemSegments[i] === 1) {
        const p = this.itemFirst[i];
        const buf = this.packetBuffer[p];
        const at = this.packetOffset[p] - VNET_HDR_LEN;
        writeZeroVnetHdr(buf, at);
        this.output(i, buf, at, this.packetLength[p] + VNET_HDR_LEN);
        this.addPiece(buf, at, this.packetLength[p] + VNET_HDR_LEN);
      } else {
        const headers = this.writeHeaders(i, this.arena, arenaAt);
        if (gather) {
          this.addPiece(this.arena, arenaAt, headers);
          const skip = this.itemIpHeader[i] + this.itemL4Header[i];
          for (let p = this.itemFirst[i]; p >= 0; p = this.packetNext[p]) {
            this.addPiece(this.packetBuffer[p], this.packetOffset[p] + skip, this.packetPayload[p]);
          }
          this.output(i, this.arena, arenaAt, headers + this.itemPayload[i]);
          arenaAt += headers;
        } else {
          const length = headers + this.copyPayloads(i, this.arena, arenaAt + headers);
          this.addPiece(this.arena, arenaAt, length);
          this.output(i, this.arena, arenaAt, length);
          arenaAt += length;
        }
      }
      this.outPieceCount[i] = this.pieces - this.outFirstPieces[i];
    }
    return this.items;
  }

  private output(i: number, buf: Uint8Array, offset: number, length: number): void {
    this.outBuffers[i] = buf;
    this.outOffsets[i] = offset;
    this.outLengths[i] = length;
  }

  private addPiece(buf: Uint8Array, offset: number, length: number): void {
    const j = this.pieces++;
    this.pieceBuffers[j] = buf;
    this.pieceOffsets[j] = offset;
    this.pieceLengths[j] = length;
  }

  /** Number of outputs, valid after finish() until reset(). */
  get count(): number {
    return this.finished ? this.items : 0;
  }

  /** Number of pieces of output i: 1, or (with `gather`) 1 + its segments for a super-packet. */
  outPieces(i: number): number {
    return this.outPieceCount[i];
  }

  /** Index of output i's first piece; its others follow. */
  outFirstPiece(i: number): number {
    return this.outFirstPieces[i];
  }

  /** The buffer holding piece j; the pieces of an output, in order, are its bytes. */
  pieceBuffer(j: number): Uint8Array {
    return this.pieceBuffers[j];
  }

  pieceOffset(j: number): number {
    return this.pieceOffsets[j];
  }

  pieceLength(j: number): number {
    return this.pieceLengths[j];
  }

  /**
   * The buffer holding output i (the caller's own buffer for a packet that passed through). With
   * `gather`, a super-packet's buffer holds only its headers: write its pieces instead.
   */
  outBuffer(i: number): Uint8Array {
    return this.outBuffers[i];
  }

  /** Where output i, starting with its vnet header, begins in outBuffer(i). */
  outOffset(i: number): number {
    return this.outOffsets[i];
  }

  /** Length of output i: vnet header plus packet (with `gather`, of all its pieces together). */
  outLength(i: number): number {
    return this.outLengths[i];
  }

  /** Number of segments glued into output i (1 for a packet that passed through). */
  outSegments(i: number): number {
    return this.itemSegments[i];
  }

  /**
   * Parses the packet far enough to know whether it is TCP or UDP of a flow we can look up
   * (returns its IP version, else 0) and whether it may be coalesced; details go to the cur* fields.
   */
  private inspect(buf: Uint8Array, off: number, len: number): number {
    this.curEligible = false;
    this.curPayload = 0;
    if (len < 1) return 0;
    const version = buf[off] >> 4;
    let ipHeader: number;
    let ipLength: number;
    let proto: number;
    if (version === 4) {
      if (len < IPV4_HEADER) return 0;
      ipHeader = (buf[off] & 0x0f) * 4;
      ipLength = (buf[off + 2] << 8) | buf[off + 3];
      proto = buf[off + 9];
      // Later fragments carry no ports; the first one is not a whole segment either way.
      if ((buf[off + 6] & 0x3f) !== 0 || buf[off + 7] !== 0) return 0;
    } else if (version === 6) {
      if (len < IPV6_HEADER) return 0;
      ipHeader = IPV6_HEADER;
      ipLength = IPV6_HEADER + ((buf[off + 4] << 8) | buf[off + 5]);
      proto = buf[off + 6]; // extension headers: not worth walking
    } else {
      return 0;
    }
    if (proto === PROTO_TCP ? !this.tcp : proto !== PROTO_UDP || !this.udp) return 0;
    // Bytes past the IP length (e.g. WireGuard padding) are ignored.
    if (ipHeader < IPV4_HEADER || ipLength > len) return 0;
    const l4 = off + ipHeader;
    let l4Header: number;
    let eligible: boolean;
    if (proto === PROTO_TCP) {
      if (ipHeader + TCP_MIN_HEADER > ipLength) return 0;
      l4Header = (buf[l4 + 12] >> 4) * 4;
      if (l4Header < TCP_MIN_HEADER || ipHeader + l4Header > ipLength) return 0;
      eligible = (buf[l4 + 13] & ~TCP_PSH) === TCP_ACK;
    } else {
      l4Header = UDP_HEADER;
      if (ipHeader + UDP_HEADER > ipLength) return 0;
      if (((buf[l4 + 4] << 8) | buf[l4 + 5]) !== ipLength - ipHeader) return 0;
      eligible = version === 6 || buf[l4 + UDP_CHECKSUM] !== 0 || buf[l4 + UDP_CHECKSUM + 1] !== 0;
    }

    this.curVersion = version;
    this.curProto = proto;
    this.curIpHeader = ipHeader;
    this.curL4Header = l4Header;
    this.curPayload = ipLength - ipHeader - l4Header;
    const ports = word(buf, l4);
    this.curPorts = ports;
    if (version === 4) {
      const src = word(buf, off + 12);
      const dst = word(buf, off + 16);
      this.curSrc4 = src;
      this.curDst4 = dst;
      this.curIpKey = (buf[off + 1] << 16) | (buf[off + 6] << 8) | buf[off + 8];
      this.curFlowHash = Math.imul(Math.imul(ports ^ src, 0x9e3779b1) ^ dst, 0x9e3779b1) ^ proto;
    } else {
      // IPv6 addresses and header fields are compared as bytes (canAppend, latestItemOfFlow).
      this.curSrc4 = 0;
      this.curDst4 = 0;
      this.curIpKey = 0;
      this.curFlowHash = flowHash6(buf, off, ports) ^ proto;
    }
    if (proto === PROTO_TCP) {
      this.curAck = word(buf, l4 + 8);
      this.curWindow = (buf[l4 + 14] << 8) | buf[l4 + 15];
    } else {
      this.curAck = 0;
      this.curWindow = 0;
    }
    this.curEligible = eligible && this.curPayload > 0 && (version === 6 || ipHeader === IPV4_HEADER);
    return version;
  }

  /** The newest item of the packet's flow, or -1. Only it may grow, so a flow stays in order. */
  private latestItemOfFlow(buf: Uint8Array, off: number): number {
    const version = this.curVersion;
    const hash = this.curFlowHash;
    const ports = this.curPorts;
    for (let i = this.items - 1; i >= 0; i--) {
      if (this.itemFlowHash[i] !== hash || this.itemVersion[i] !== version || this.itemProto[i] !== this.curProto) continue;
      if (this.itemPorts[i] !== ports) continue;
      if (version === 4) {
        if (this.itemSrc4[i] === this.curSrc4 && this.itemDst4[i] === this.curDst4) return i;
        continue;
      }
      const first = this.itemFirst[i];
      if (sameBytes(this.packetBuffer[first], this.packetOffset[first] + 8, buf, off + 8, 32)) return i; // IPv6 addresses
    }
    return -1;
  }

  /** Whether eligible packet p directly continues open item i. May close i (bad checksum). */
  private canAppend(i: number, p: number): boolean {
    const first = this.itemFirst[i];
    const fbuf = this.packetBuffer[first];
    const foff = this.packetOffset[first];
    const buf = this.packetBuffer[p];
    const off = this.packetOffset[p];
    const version = this.curVersion;
    const ipHeader = this.curIpHeader;
    const l4Header = this.curL4Header;
    const payload = this.curPayload;
    if (l4Header !== this.itemL4Header[i] || payload > this.itemGsoSize[i]) return false;
    if (this.itemSegments[i] >= COALESCE_MAX_SEGMENTS) return false;
    // The glued packet's IPv4 total length / IPv6 payload length must fit its 16-bit field.
    const lengthField = (version === 4 ? ipHeader : 0) + l4Header + this.itemPayload[i] + payload;
    if (lengthField > MAX_IP_LENGTH) return false;

    if (version === 4) {
      if (this.itemIpKey[i] !== this.curIpKey) return false; // TOS, flags (DF), TTL
      const id = (buf[off + 4] << 8) | buf[off + 5];
      if (id !== ((this.itemLastId[i] + 1) & 0xffff)) return false;
    } else {
      // Version, traffic class and flow label share bytes 0..4; then the hop limit.
      if (!sameBytes(fbuf, foff, buf, off, 4) || fbuf[foff + 7] !== buf[off + 7]) return false;
    }

    if (this.curProto === PROTO_TCP && !this.continuesTcp(i, fbuf, foff + ipHeader, buf, off + ipHeader)) return false;

    // Checksums last: they cost a pass over the payload. The first packet is checked only once a
    // second one wants to join; a lone packet goes out as it came and the kernel checks it.
    if (this.trustChecksums) return true;
    const proto = this.curProto;
    if (!checksumsValid(buf, off, version, proto, ipHeader, l4Header + payload)) return false;
    if (this.itemSegments[i] === 1) {
      const firstL4Length = l4Header + this.itemGsoSize[i];
      if (!checksumsValid(fbuf, foff, version, proto, ipHeader, firstL4Length)) {
        this.itemOpen[i] = 0;
        return false;
      }
    }
    return true;
  }

  /** TCP's own conditions: seq right after item i, same ACK number, window and options. */
  private continuesTcp(i: number, fbuf: Uint8Array, ftcp: number, buf: Uint8Array, tcp: number): boolean {
    const seq = ((buf[tcp + 4] << 24) | (buf[tcp + 5] << 16) | (buf[tcp + 6] << 8) | buf[tcp + 7]) >>> 0;
    if (seq !== this.itemNextSeq[i]) return false;
    if (this.itemAck[i] !== this.curAck || this.itemWindow[i] !== this.curWindow) return false;
    const optionsLength = this.curL4Header - TCP_MIN_HEADER;
    return sameBytes(fbuf, ftcp + TCP_MIN_HEADER, buf, tcp + TCP_MIN_HEADER, optionsLength);
  }

  private append(i: number, p: number): void {
    const buf = this.packetBuffer[p];
    const off = this.packetOffset[p];
    const payload = this.curPayload;
    this.packetNext[this.itemLast[i]] = p;
    this.itemLast[i] = p;
    this.itemSegments[i]++;
    this.itemPayload[i] += payload;
    this.itemNextSeq[i] = (this.itemNextSeq[i] + payload) >>> 0;
    if (this.curVersion === 4) this.itemLastId[i] = (buf[off + 4] << 8) | buf[off + 5];
    const psh = this.curProto === PROTO_TCP && (buf[off + this.curIpHeader + 13] & TCP_PSH) !== 0;
    if (psh) this.itemPsh[i] = 1;
    // A short segment or PSH ends what the sender meant as one run of full-sized segments.
    const short = payload < this.itemGsoSize[i];
    if (psh || short || this.itemSegments[i] === COALESCE_MAX_SEGMENTS) this.itemOpen[i] = 0;
  }

  /** Starts item for packet p, of the flow inspect() found (version 4 or 6), or of none (0). */
  private newItem(p: number, version: number): void {
    const i = this.items++;
    const buf = this.packetBuffer[p];
    const off = this.packetOffset[p];
    this.itemFirst[i] = p;
    this.itemLast[i] = p;
    this.itemSegments[i] = 1;
    this.itemPsh[i] = 0;
    this.itemOpen[i] = 0;
    this.itemVersion[i] = version;
    if (version === 0) return;
    const l4 = off + this.curIpHeader;
    const tcp = this.curProto === PROTO_TCP;
    this.itemProto[i] = this.curProto;
    this.itemFlowHash[i] = this.curFlowHash;
    this.itemPorts[i] = this.curPorts;
    this.itemSrc4[i] = this.curSrc4;
    this.itemDst4[i] = this.curDst4;
    this.itemIpKey[i] = this.curIpKey;
    this.itemAck[i] = this.curAck;
    this.itemWindow[i] = this.curWindow;
    this.itemIpHeader[i] = this.curIpHeader;
    this.itemL4Header[i] = this.curL4Header;
    this.itemGsoSize[i] = this.curPayload;
    this.itemPayload[i] = this.curPayload;
    const seq = tcp ? ((buf[l4 + 4] << 24) | (buf[l4 + 5] << 16) | (buf[l4 + 6] << 8) | buf[l4 + 7]) >>> 0 : 0;
    this.itemNextSeq[i] = (seq + this.curPayload) >>> 0;
    this.itemLastId[i] = version === 4 ? (buf[off + 4] << 8) | buf[off + 5] : 0;
    if (this.curEligible && (!tcp || (buf[l4 + 13] & TCP_PSH) === 0)) this.itemOpen[i] = 1;
  }

  /**
   * Writes the vnet header and the IP and TCP/UDP headers of item i (two or more segments) at
   * out[at..], as the header of a super-packet carrying all of its payloads, and returns their
   * length. The payloads follow, copied by copyPayloads or gathered by the writer.
   */
  private writeHeaders(i: number, out: Uint8Array, at: number): number {
    const version = this.itemVersion[i];
    const ipHeader = this.itemIpHeader[i];
    const headers = ipHeader + this.itemL4Header[i];
    const udp = this.itemProto[i] === PROTO_UDP;
    const ip = at + VNET_HDR_LEN;
    const first = this.itemFirst[i];
    copyBytes(this.packetBuffer[first], this.packetOffset[first], out, ip, headers);

    const ipLength = headers + this.itemPayload[i];
    const l4Length = ipLength - ipHeader;
    if (version === 4) {
      out[ip + 2] = ipLength >>> 8;
      out[ip + 3] = ipLength & 0xff;
      ipv4HeaderChecksum(out, ip);
    } else {
      out[ip + 4] = (ipLength - IPV6_HEADER) >>> 8;
      out[ip + 5] = (ipLength - IPV6_HEADER) & 0xff;
    }
    const l4 = ip + ipHeader;
    if (udp) {
      // The super-packet's UDP length covers every datagram; the kernel gives each its own.
      out[l4 + 4] = l4Length >>> 8;
      out[l4 + 5] = l4Length & 0xff;
    } else if (this.itemPsh[i] === 1) {
      out[l4 + 13] |= TCP_PSH;
    }
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel adds the rest.
    const checksumAt = l4 + (udp ? UDP_CHECKSUM : TCP_CHECKSUM);
    const partial = fold(pseudoHeaderSum(out, ip, version === 4 ? 4 : 6, udp ? PROTO_UDP : PROTO_TCP, l4Length));
    out[checksumAt] = partial >>> 8;
    out[checksumAt + 1] = partial & 0xff;

    const hdr = this.hdr;
    hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    hdr.gsoType = udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : version === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
    hdr.hdrLen = headers;
    hdr.gsoSize = this.itemGsoSize[i];
    hdr.csumStart = ipHeader;
    hdr.csumOffset = udp ? UDP_CHECKSUM : TCP_CHECKSUM;
    hdr.write(out, at);
    return VNET_HDR_LEN + headers;
  }

  /** Copies the payloads of item i's segments, in order, to out[at..]; returns their length. */
  private copyPayloads(i: number, out: Uint8Array, at: number): number {
    const skip = this.itemIpHeader[i] + this.itemL4Header[i];
    let end = at;
    for (let p = this.itemFirst[i]; p >= 0; p = this.packetNext[p]) {
      copyBytes(this.packetBuffer[p], this.packetOffset[p] + skip, out, end, this.packetPayload[p]);
      end += this.packetPayload[p];
    }
    return end - at;
  }
}

/** Four bytes at buf[at..] as a big-endian word (an int32: compared, never used as a number). */
function word(buf: Uint8Array, at: number): number {
  return (buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3];
}

/** A cheap mix of IPv6 addresses and the ports word; equal flows hash equal, lookups then compare. */
function flowHash6(buf: Uint8Array, off: number, ports: number): number {
  let h = ports;
  for (let a = off + 8; a < off + 40; a += 4) h = Math.imul(h ^ word(buf, a), 0x9e3779b1);
  return h;
}

function sameBytes(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (a[aOff + k] !== b[bOff + k]) return false;
  return true;
}

/** The packet's TCP or UDP checksum (and IPv4 header checksum) verify. */
function checksumsValid(buf: Uint8Array, off: number, version: number, proto: number, ipHeader: number, l4Length: number): boolean {
  if (version === 4 && fold(sumBytes(buf, off, ipHeader, 0)) !== 0xffff) return false;
  const pseudo = pseudoHeaderSum(buf, off, version === 4 ? 4 : 6, proto, l4Length);
  return fold(sumBytes(buf, off + ipHeader, l4Length, pseudo)) === 0xffff;
}
