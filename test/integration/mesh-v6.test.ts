// The mesh on an IPv6 network (fd70::/64), over an IPv6 underlay: two nodes claim /128s and
// ping each other. Every namespace and interface name starts with "h13".
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { canRunIntegration, Lab, waitFor, type Host } from "../helpers/netns.ts";
import { ConfigDir, startWontun } from "../helpers/wontun-node.ts";
import { newKeys } from "../helpers/wireguard.ts";
import { meshScratchPerTest, meshSwitch, plugIn } from "../helpers/mesh-lab.ts";
import { hasEtcd, startEtcd } from "../helpers/etcd.ts";

let lab: Lab | null = null;
let dir: ConfigDir | null = null;
let data: string | null = null;

const scratch = meshScratchPerTest("h13");

describe.skipIf(!canRunIntegration || !hasEtcd)("mesh on IPv6", () => {
  test("two nodes on fd70::/64 over a v6 underlay", async () => {
    ({ lab, dir, data } = await scratch.open("mesh-v6"));
    const sw = await meshSwitch(lab, "h13");
    const attach = (host: Host, i: number, v4: string, v6: string) => plugIn(sw, host, "h13", i, [v4, `${v6}/64`]);
    const e = await lab.host("e");
    await attach(e, 0, "192.0.2.100", "2001:db8::100");
    const hosts = [await lab.host("n1"), await lab.host("n2")];
    await attach(hosts[0], 1, "192.0.2.1", "2001:db8::1");
    await attach(hosts[1], 2, "192.0.2.2", "2001:db8::2");
    await startEtcd(e, "192.0.2.100", data);
    const addresses: string[] = [];
    for (const [i, h] of hosts.entries()) {
      const config = dir.write(`h13w${i + 1}.conf`, `[Interface]
PrivateKey = ${newKeys().privateKey}
ListenPort = 51820

[Mesh]
Store = http://192.0.2.100:2379
Network = fd70::/64
Endpoint = [2001:db8::${i + 1}]:51820
Cache = ${join(data, `n${i}.mesh.json`)}
`);
      const proc = await startWontun(h, config);
      const m = /mesh: joined as \S+ with (\S+)/.exec(proc.output());
      expect(m?.[1]).toMatch(/^fd70::/);
      addresses.push(m![1]);
    }
    expect(addresses[0]).not.toBe(addresses[1]);
    await waitFor(async () => (await hosts[0].run(["ping", "-6", "-c", "1", "-W", "1", addresses[1]])).code === 0, 8000, "n1 → n2 over v6");
    await waitFor(async () => (await hosts[1].run(["ping", "-6", "-c", "1", "-W", "1", addresses[0]])).code === 0, 8000, "n2 → n1 over v6");
  }, 60_000);
});
