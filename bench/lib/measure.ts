// One measurement each: iperf3 TCP/UDP runs and a ping series between two lab hosts.
import type { Host } from "./lab.ts";
import { quantile } from "./stats.ts";

export interface IperfOptions {
  seconds: number;
  reverse?: boolean;
  parallel?: number;
  /** UDP with this payload size (-u -l N), as fast as iperf3 can send unless udpBitrate. */
  udpPayload?: number;
  /** iperf3's -b for UDP (payload bits per second, e.g. "10M"); default "0": no limit. */
  udpBitrate?: string;
  port?: number;
}

export interface TcpResult {
  /** Receiver-side goodput. */
  gbps: number;
  retransmits: number;
}

export interface UdpResult {
  /** Datagrams the receiver got per second. */
  receivedPps: number;
  sentPps: number;
  lossPercent: number;
}

/** Runs the iperf3 client in `client` against a server (`iperf3 -s`) at `address`. */
async function iperf(client: Host, address: string, o: IperfOptions): Promise<any> {
  const args = ["iperf3", "-c", address, "-p", String(o.port ?? 5201), "-t", String(o.seconds), "-J"];
  if (o.reverse) args.push("-R");
  if (o.parallel && o.parallel > 1) args.push("-P", String(o.parallel));
  if (o.udpPayload) args.push("-u", "-l", String(o.udpPayload), "-b", o.udpBitrate ?? "0");
  let last = "";
  // The server takes a moment to be ready again after a test ("the server is busy"): retry.
  for (let attempt = 0; attempt < 4; attempt++) {
    const r = await client.run(args, { timeoutMs: (o.seconds + 20) * 1000 });
    let json: any;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      last = `exit ${r.code}: ${r.stderr.trim() || r.stdout.slice(0, 300)}`;
      await Bun.sleep(500);
      continue;
    }
    if (!json.error) return json;
    last = json.error;
    await Bun.sleep(500 + attempt * 500);
  }
  throw new Error(`iperf3 ${args.slice(1).join(" ")} failed: ${last}`);
}

export async function iperfTcp(client: Host, address: string, o: IperfOptions): Promise<TcpResult> {
  const j = await iperf(client, address, o);
  const received = j.end.sum_received;
  return { gbps: received.bits_per_second / 1e9, retransmits: j.end.sum_sent?.retransmits ?? 0 };
}

export async function iperfUdp(client: Host, address: string, o: IperfOptions): Promise<UdpResult> {
  const j = await iperf(client, address, { ...o, udpPayload: o.udpPayload ?? 64 });
  const sent = j.end.sum_sent ?? j.end.sum;
  const received = j.end.sum_received ?? j.end.sum;
  const got = received.packets - received.lost_packets;
  return {
    receivedPps: got / received.seconds,
    sentPps: sent.packets / sent.seconds,
    lossPercent: received.packets > 0 ? (received.lost_packets / received.packets) * 100 : 100,
  };
}

export interface PingResult {
  medianMs: number;
  p90Ms: number;
  received: number;
  sent: number;
}

/** `count` pings at `intervalMs` (root may go below 200 ms); median and 90th percentile RTT. */
export async function pingSeries(from: Host, address: string, count: number, intervalMs = 10): Promise<PingResult> {
  const r = await from.run(["ping", "-n", "-c", String(count), "-i", String(intervalMs / 1000), "-W", "1", address], {
    timeoutMs: count * intervalMs + 10_000,
  });
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length === 0) throw new Error(`ping ${address} from ${from.short}: no replies\n${r.stdout}${r.stderr}`);
  return { medianMs: quantile(times, 0.5), p90Ms: quantile(times, 0.9), received: times.length, sent: count };
}
