// The offloads (src/device/offloads.ts), each on its own and all together, between two wontun
// hosts in WireGuard mode and once in plaintext mode: bulk TCP both ways over IPv4 and IPv6
// inside the tunnel must arrive intact. TSO hands wontun 64 KiB super-packets to cut up, GRO
// glues segments back together before the TUN write, UDP GSO sends runs of datagrams at once
// and UDP GRO receives them at once; a mistake in any of them corrupts or stalls these streams.
// USO glues a batch's UDP datagrams into one super-packet for the TUN write: bursts of datagrams
// must arrive intact, in fewer TUN writes than datagrams.
import { describe, expect, test } from "bun:test";
import { canRunIntegration, waitFor, type Host } from "../helpers/netns.ts";
import { labPerTest, startWontun, waitForPing } from "../helpers/wontun-node.ts";
import { newKeys, transfer, wgQuickConfig } from "../helpers/wireguard.ts";

const env = labPerTest();

async function twoHosts(offload: string, mode: "wireguard" | "plaintext"): Promise<{ a: Host; b: Host; logs: () => string }> {
  const lab = await env.lab("offload");
  const dir = env.dir();
  const a = await lab.host("a");
  const b = await lab.host("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  let confA: string;
  let confB: string;
  if (mode === "wireguard") {
    const ka = newKeys();
    const kb = newKeys();
    confA = wgQuickConfig({ keys: ka, addresses: ["10.60.0.1/24", "fd60::1/64"], listenPort: 51820,
      peers: [{ publicKey: kb.publicKey, allowedIps: ["10.60.0.2/32", "fd60::2/128"], endpoint: "192.0.2.2:51820" }] });
    confB = wgQuickConfig({ keys: kb, addresses: ["10.60.0.2/24", "fd60::2/64"], listenPort: 51820,
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.60.0.1/32", "fd60::1/128"] }] });
  } else {
    confA = "[Interface]\nName=a\nAddress=10.60.0.1/24\nAddress=fd60::1/64\nListenPort=19988\n\n" +
      "[Peer]\nName=b\nEndpoint=192.0.2.2:19988\nAllowedIPs=10.60.0.2/32\nAllowedIPs=fd60::2/128\n";
    confB = "[Interface]\nName=b\nAddress=10.60.0.2/24\nAddress=fd60::2/64\nListenPort=19988\n\n" +
      "[Peer]\nName=a\nAllowedIPs=10.60.0.1/32\nAllowedIPs=fd60::1/128\n";
  }
  const args = ["--offload", offload];
  const pa = await startWontun(a, dir.write("ofa.conf", confA), { args });
  const pb = await startWontun(b, dir.write("ofb.conf", confB), { args });
  await waitForPing(a, "10.60.0.2");
  return { a, b, logs: () => pa.output() + pb.output() };
}

const BURSTS = 40;
const PER_BURST = 50;
const DATAGRAM = 300;

/** Byte i of datagram number seq (its first 4 bytes hold seq). */
const RECEIVER = `
const [port, total] = [Number(process.argv[1]), Number(process.argv[2])];
let received = 0, bad = 0, last = 0;
const sock = await Bun.udpSocket({ port, hostname: "::", socket: { data(_s, buf) {
  const seq = buf.readUInt32BE(0);
  for (let i = 4; i < buf.length; i++) if (buf[i] !== ((seq * 31 + i) & 255)) { bad++; break; }
  if (buf.length !== ${DATAGRAM}) bad++;
  received++; last = Date.now();
} } });
console.log("LISTENING");
const start = Date.now();
while (received < total && (last === 0 ? Date.now() - start < 20000 : Date.now() - last < 1500)) await Bun.sleep(50);
console.log(JSON.stringify({ received, bad }));
sock.close();
`;
const SENDER = `
const [address, port] = [process.argv[1], Number(process.argv[2])];
const sock = await Bun.udpSocket({ hostname: address.includes(":") ? "::" : "0.0.0.0" });
for (let b = 0; b < ${BURSTS}; b++) {
  for (let k = 0; k < ${PER_BURST}; k++) {
    const seq = b * ${PER_BURST} + k;
    const buf = Buffer.alloc(${DATAGRAM});
    buf.writeUInt32BE(seq, 0);
    for (let i = 4; i < buf.length; i++) buf[i] = (seq * 31 + i) & 255;
    sock.send(buf, port, address);
  }
  await Bun.sleep(20);
}
sock.close();
`;

/** Bursts of datagrams from `sender` to `receiver`; how many arrived, how many were damaged, and
 *  how many packets the receiver's TUN took (fewer than datagrams when they were glued). */
async function udpBursts(sender: Host, receiver: Host, receiverTun: string, address: string, port: number): Promise<{ received: number; bad: number; tunWrites: number }> {
  const tunPackets = async () => {
    const r = await receiver.run(["cat", `/sys/class/net/${receiverTun}/statistics/rx_packets`]);
    return Number(r.stdout.trim());
  };
  const before = await tunPackets();
  const sink = receiver.spawn([process.execPath, "-e", RECEIVER, String(port), String(BURSTS * PER_BURST)]);
  await waitFor(() => sink.output().includes("LISTENING"), 10_000, "UDP receiver");
  const sent = await sender.run([process.execPath, "-e", SENDER, address, String(port)], { timeoutMs: 30_000 });
  if (sent.code !== 0) throw new Error(`UDP sender failed: ${sent.stderr.slice(-600)}`);
  await sink.exited;
  const line = sink.output().split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`UDP receiver said: ${sink.output()}`);
  return { ...JSON.parse(line), tunWrites: (await tunPackets()) - before };
}

describe.skipIf(!canRunIntegration)("offloads", () => {
  for (const offload of ["none", "tso", "gro", "udp-gso", "udp-gro", "uso", "all"]) {
    test(`WireGuard mode, --offload ${offload}: bulk TCP both ways, IPv4 and IPv6 inside, arrives intact`, async () => {
      const { a, b, logs } = await twoHosts(offload, "wireguard");
      const expected = offload === "all" ? "tso,gro,udp-gso,udp-gro,uso" : offload;
      expect(logs()).toContain(`offloads ${expected}`);
      const up = await transfer(a, b, "10.60.0.2", 12, 9101);
      expect(up.received).toBe(up.sent);
      const down = await transfer(b, a, "10.60.0.1", 12, 9102);
      expect(down.received).toBe(down.sent);
      const v6 = await transfer(a, b, "fd60::2", 6, 9103);
      expect(v6.received).toBe(v6.sent);
      expect(logs()).not.toContain("write to TUN failed");
      expect(logs()).not.toContain("UDP GSO refused");
    });
  }

  test("plaintext wontun mode, all offloads (udp-gro is left out): bulk TCP both ways arrives intact", async () => {
    const { a, b, logs } = await twoHosts("all", "plaintext");
    expect(logs()).toContain("offloads tso,gro,udp-gso,uso (udp-gro needs WireGuard mode)");
    const up = await transfer(a, b, "10.60.0.2", 12, 9104);
    expect(up.received).toBe(up.sent);
    const down = await transfer(b, a, "fd60::1", 6, 9105);
    expect(down.received).toBe(down.sent);
    expect(logs()).not.toContain("write to TUN failed");
  });

  test("WireGuard mode, --offload uso: bursts of UDP datagrams, IPv4 and IPv6 inside, arrive intact in fewer TUN writes", async () => {
    const { a, b, logs } = await twoHosts("uso", "wireguard");
    expect(logs()).toContain("offloads uso");
    for (const [address, port] of [["10.60.0.2", 9201], ["fd60::2", 9202]] as const) {
      const r = await udpBursts(a, b, "ofb", address, port);
      expect(r.bad).toBe(0);
      expect(r.received).toBeGreaterThan(0.9 * BURSTS * PER_BURST);
      expect(r.tunWrites).toBeLessThan(r.received / 2);
    }
    expect(logs()).not.toContain("write to TUN failed");
  });
});
