// The offloads (src/device/offloads.ts), each on its own and all together, between two wontun
// hosts in WireGuard mode and once in plaintext mode: bulk TCP both ways over IPv4 and IPv6
// inside the tunnel must arrive intact. TSO hands wontun 64 KiB super-packets to cut up, GRO
// glues segments back together before the TUN write, UDP GSO sends runs of datagrams at once
// and UDP GRO receives them at once; a mistake in any of them corrupts or stalls these streams.
import { describe, expect, test } from "bun:test";
import { canRunIntegration, type Host } from "../helpers/netns.ts";
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

describe.skipIf(!canRunIntegration)("offloads", () => {
  for (const offload of ["none", "tso", "gro", "udp-gso", "udp-gro", "all"]) {
    test(`WireGuard mode, --offload ${offload}: bulk TCP both ways, IPv4 and IPv6 inside, arrives intact`, async () => {
      const { a, b, logs } = await twoHosts(offload, "wireguard");
      const expected = offload === "all" ? "tso,gro,udp-gso,udp-gro" : offload;
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
    expect(logs()).toContain("offloads tso,gro,udp-gso (udp-gro needs WireGuard mode)");
    const up = await transfer(a, b, "10.60.0.2", 12, 9104);
    expect(up.received).toBe(up.sent);
    const down = await transfer(b, a, "fd60::1", 6, 9105);
    expect(down.received).toBe(down.sent);
    expect(logs()).not.toContain("write to TUN failed");
  });
});
