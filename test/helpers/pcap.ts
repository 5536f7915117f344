// Reading what tcpdump captured: classic pcap files (not pcapng) with Ethernet frames (and, for
// `-i any` or raw-IP captures, Linux cooked v1/v2 and raw IP), down to the UDP datagrams in them
// with their addresses and ports. Plus a small wrapper that runs tcpdump in a lab host.
//
// pcap layout (all integers in the writer's byte order, told by the magic number):
//   global header, 24 bytes: magic u32, version u16 u16, thiszone i32, sigfigs u32, snaplen u32,
//                            linktype u32
//   each record, 16 bytes:   ts_sec u32, ts_frac u32 (µs, or ns with the nanosecond magic),
//                            captured length u32, original length u32, then the captured bytes
import { readFileSync } from "node:fs";
import { waitFor, type Host, type SpawnedProcess } from "./netns.ts";

/** True when tcpdump is installed (the captures need it). */
export const hasTcpdump = Bun.which("tcpdump") !== null;

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

const MAGIC_MICRO = 0xa1b2c3d4;
const MAGIC_NANO = 0xa1b23c4d;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = [0x8100, 0x88a8, 0x9100];
const PROTO_UDP = 17;

export interface PcapRecord {
  /** Capture time in microseconds since the epoch. */
  timestampUs: number;
  /** The captured bytes (at most the snap length). */
  data: Uint8Array;
  /** The packet's length on the wire; larger than data.length if it was cut. */
  originalLength: number;
}

export interface PcapFile {
  linktype: number;
  snaplen: number;
  records: PcapRecord[];
}

export interface UdpDatagram {
  timestampUs: number;
  family: 4 | 6;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Uint8Array;
  /** The capture did not hold the whole datagram (payload is what there was). */
  truncated: boolean;
}

/** Parses a classic pcap file. Throws on anything else (pcapng, garbage); a cut last record is ignored. */
export function parsePcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < 24) throw new Error(`not a pcap file: ${bytes.length} bytes is shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let little: boolean;
  let nano: boolean;
  const magicLe = view.getUint32(0, true);
  const magicBe = view.getUint32(0, false);
  if (magicLe === MAGIC_MICRO || magicLe === MAGIC_NANO) {
    little = true;
    nano = magicLe === MAGIC_NANO;
  } else if (magicBe === MAGIC_MICRO || magicBe === MAGIC_NANO) {
    little = false;
    nano = magicBe === MAGIC_NANO;
  } else {
    throw new Error(`not a classic pcap file (magic 0x${magicBe.toString(16).padStart(8, "0")})`);
  }
  const snaplen = view.getUint32(16, little);
  // The upper bits of the link-type field carry FCS information; the type is the low 16 bits.
  const linktype = view.getUint32(20, little) & 0xffff;
  const records: PcapRecord[] = [];
  let at = 24;
  while (at + 16 <= bytes.length) {
    const sec = view.getUint32(at, little);
    const frac = view.getUint32(at + 4, little);
    const caplen = view.getUint32(at + 8, little);
    const origlen = view.getUint32(at + 12, little);
    if (at + 16 + caplen > bytes.length) break; // tcpdump was stopped mid-write
    records.push({
      timestampUs: sec * 1_000_000 + (nano ? Math.floor(frac / 1000) : frac),
      data: bytes.subarray(at + 16, at + 16 + caplen),
      originalLength: origlen,
    });
    at += 16 + caplen;
  }
  return { linktype, snaplen, records };
}

/** Where the IP packet starts in a frame of `linktype` and which version it is; null if not IP. */
function ipStart(linktype: number, frame: Uint8Array): { at: number; version: 4 | 6 } | null {
  const u16 = (at: number) => (frame[at] << 8) | frame[at + 1];
  let ethertype: number;
  let at: number;
  switch (linktype) {
    case LINKTYPE_ETHERNET: {
      if (frame.length < 14) return null;
      at = 12;
      ethertype = u16(at);
      while (ETHERTYPE_VLAN.includes(ethertype) && at + 6 <= frame.length) {
        at += 4;
        ethertype = u16(at);
      }
      at += 2;
      break;
    }
    case LINKTYPE_LINUX_SLL:
      if (frame.length < 16) return null;
      ethertype = u16(14);
      at = 16;
      break;
    case LINKTYPE_LINUX_SLL2:
      if (frame.length < 20) return null;
      ethertype = u16(0);
      at = 20;
      break;
    case LINKTYPE_RAW:
    case 12: // LINKTYPE_RAW as some systems number it (DLT_RAW)
      if (frame.length < 1) return null;
      return (frame[0] >> 4) === 4 ? { at: 0, version: 4 } : (frame[0] >> 4) === 6 ? { at: 0, version: 6 } : null;
    default:
      throw new Error(`pcap link type ${linktype} is not supported`);
  }
  if (ethertype === ETHERTYPE_IPV4) return { at, version: 4 };
  if (ethertype === ETHERTYPE_IPV6) return { at, version: 6 };
  return null;
}

function ipv4Text(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6Text(b: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[at + i] << 8) | b[at + i + 1]);
  // RFC 5952: the longest run (at least two) of zero groups becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** The UDP datagram in one frame, or null (not IP, not UDP, a non-first fragment, too short). */
export function udpOfFrame(linktype: number, record: PcapRecord): UdpDatagram | null {
  const frame = record.data;
  const ip = ipStart(linktype, frame);
  if (!ip) return null;
  let at = ip.at;
  let src: string;
  let dst: string;
  let ipEnd: number; // where the IP packet ends according to its header
  if (ip.version === 4) {
    if (at + 20 > frame.length || frame[at] >> 4 !== 4) return null;
    const headerLength = (frame[at] & 0x0f) * 4;
    const totalLength = (frame[at + 2] << 8) | frame[at + 3];
    const fragment = (frame[at + 6] << 8) | frame[at + 7];
    if ((fragment & 0x1fff) !== 0 || (fragment & 0x2000) !== 0) return null; // a fragment
    if (frame[at + 9] !== PROTO_UDP || headerLength < 20) return null;
    src = ipv4Text(frame, at + 12);
    dst = ipv4Text(frame, at + 16);
    ipEnd = at + totalLength;
    at += headerLength;
  } else {
    if (at + 40 > frame.length || frame[at] >> 4 !== 6) return null;
    const payloadLength = (frame[at + 4] << 8) | frame[at + 5];
    let next = frame[at + 6];
    src = ipv6Text(frame, at + 8);
    dst = ipv6Text(frame, at + 24);
    ipEnd = at + 40 + payloadLength;
    at += 40;
    // Hop-by-hop, routing and destination options headers may come before UDP.
    while (next === 0 || next === 43 || next === 60) {
      if (at + 2 > frame.length) return null;
      const nextHeader = frame[at];
      at += (frame[at + 1] + 1) * 8;
      next = nextHeader;
    }
    if (next !== PROTO_UDP) return null; // including fragments (44)
  }
  if (at + 8 > frame.length) return null;
  const srcPort = (frame[at] << 8) | frame[at + 1];
  const dstPort = (frame[at + 2] << 8) | frame[at + 3];
  const udpLength = (frame[at + 4] << 8) | frame[at + 5];
  if (udpLength < 8) return null;
  const wantedEnd = Math.min(at + udpLength, ipEnd);
  const end = Math.min(wantedEnd, frame.length);
  return {
    timestampUs: record.timestampUs,
    family: ip.version,
    src,
    srcPort,
    dst,
    dstPort,
    payload: frame.slice(at + 8, end),
    truncated: end < wantedEnd,
  };
}

/** Every UDP datagram in a pcap file's bytes, in capture order. */
export function udpDatagrams(bytes: Uint8Array): UdpDatagram[] {
  const pcap = parsePcap(bytes);
  const out: UdpDatagram[] = [];
  for (const record of pcap.records) {
    const d = udpOfFrame(pcap.linktype, record);
    if (d) out.push(d);
  }
  return out;
}

/** Every UDP datagram in the pcap file at `path`. */
export function readUdpDatagrams(path: string): UdpDatagram[] {
  return udpDatagrams(new Uint8Array(readFileSync(path)));
}

export interface Capture {
  proc: SpawnedProcess;
  file: string;
  /** The UDP datagrams in the file so far (every packet is handed over and written at once). */
  datagrams(): UdpDatagram[];
  /**
   * Stops tcpdump (SIGINT, so it finishes the file) and returns every UDP datagram captured.
   * Packets that arrived just before may not have made it into the file: wait for the ones a
   * test needs with datagrams() first.
   */
  stop(): Promise<UdpDatagram[]>;
}

/**
 * Runs `tcpdump -i IFNAME -w FILE FILTER` in `host` (a lab host: the lab stops it on cleanup)
 * and waits until it is listening. Immediate mode and -U: each packet is in the file as soon as
 * tcpdump sees it, not when a kernel buffer block fills or times out. `file` must be in a directory root can write to; tcpdump
 * keeps running as root (-Z root) so that it can write there.
 */
export async function startCapture(host: Host, ifname: string, file: string, filter = "udp"): Promise<Capture> {
  const proc = host.spawn([
    "tcpdump", "-i", ifname, "-w", file, "--immediate-mode", "-U", "-n", "-Z", "root", "-s", "0",
    ...filter.split(/\s+/).filter(Boolean),
  ]);
  let exited = false;
  proc.exited.then(() => (exited = true));
  await waitFor(() => {
    if (exited) throw new Error(`tcpdump exited early:\n${proc.output()}`);
    return proc.output().includes("listening on");
  }, 10_000, `tcpdump on ${host.short}/${ifname} to start`);
  const datagrams = () => {
    try {
      return readUdpDatagrams(file);
    } catch {
      return []; // not even the header written yet
    }
  };
  return {
    proc,
    file,
    datagrams,
    async stop() {
      proc.kill("SIGINT");
      await proc.exited;
      return readUdpDatagrams(file);
    },
  };
}
