// `wontun up` sizes a WireGuard tunnel without MTU from the routes to its peers, as wg-quick
// does (underlay MTU less 80), rounded down to whole 64-byte blocks; an MTU in the config wins,
// and a reload without one keeps the interface's. Namespaces and interfaces start with "h8".
import { describe, expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { canRunIntegration, waitFor, type Host } from "../helpers/netns.ts";
import { labPerTest, startWontun, stopWontun, waitForPing, type ConfigDir } from "../helpers/wontun-node.ts";
import { newKeys } from "../helpers/wireguard.ts";

const env = labPerTest();
const IF = "h8mtu0";

interface World {
  client: Host;
  server: Host;
  /** The client's end of the link. */
  clientIf: string;
  dir: ConfigDir;
  clientKeys: ReturnType<typeof newKeys>;
  serverKeys: ReturnType<typeof newKeys>;
}

/** client 192.0.2.2 --(veth, MTU `linkMtu` both ends)-- server 192.0.2.1. */
async function world(linkMtu: number): Promise<World> {
  const lab = await env.lab("host-mtu");
  const client = await lab.host("h8c");
  const server = await lab.host("h8s");
  const { aIf } = await lab.link(client, "192.0.2.2/24", server, "192.0.2.1/24", { mtu: linkMtu });
  return { client, server, clientIf: aIf, dir: env.dir(), clientKeys: newKeys(), serverKeys: newKeys() };
}

function serverConf(w: World, mtu = 1420): string {
  return w.dir.write("h8srv.conf", [
    "[Interface]", `PrivateKey = ${w.serverKeys.privateKey}`, "Address = 10.68.0.1/24", "ListenPort = 51820", `MTU = ${mtu}`,
    "", "[Peer]", `PublicKey = ${w.clientKeys.publicKey}`, "AllowedIPs = 10.68.0.2/32", "",
  ].join("\n"));
}

function clientConf(w: World, opts: { mtu?: number; v6?: boolean; preUp?: string } = {}): string {
  const file = w.dir.write(`${IF}.conf`, [
    "[Interface]", `PrivateKey = ${w.clientKeys.privateKey}`, `Address = 10.68.0.2/24${opts.v6 ? ", fd68::2/64" : ""}`,
    ...(opts.mtu ? [`MTU = ${opts.mtu}`] : []),
    ...(opts.preUp ? [`PreUp = ${opts.preUp}`] : []),
    "", "[Peer]", `PublicKey = ${w.serverKeys.publicKey}`, "Endpoint = 192.0.2.1:51820", "AllowedIPs = 10.68.0.0/24", "",
  ].join("\n"));
  chmodSync(file, 0o600);
  return file;
}

const mtuOf = async (h: Host, dev: string) => Number(/ mtu (\d+) /.exec(await h.ip(`-o link show dev ${dev}`))?.[1]);

describe.skipIf(!canRunIntegration)("wontun up: the tunnel's MTU, as wg-quick finds it", () => {
  test("from the route to the endpoint; full-sized packets cross whole; a reload keeps it, an MTU in the config wins", async () => {
    const w = await world(1400);
    await startWontun(w.server, serverConf(w));
    const c = await startWontun(w.client, clientConf(w));
    // wg-quick: 1400 - 80 = 1320; in whole 64-byte blocks: 1280.
    expect(await mtuOf(w.client, IF)).toBe(1280);
    expect(c.output()).toContain("mtu 1280: 1400 from the route to 192.0.2.1 via ");
    await waitForPing(w.client, "10.68.0.1");
    // A packet of the full 1280 bytes, DF set, crosses (its datagram of 1360 fits the 1400-byte link).
    const big = await w.client.run(["ping", "-c", "1", "-W", "2", "-M", "do", "-s", String(1280 - 28), "10.68.0.1"]);
    expect(big.code).toBe(0);

    // SIGHUP with the same config: the derived MTU stays.
    const reloads = () => c.output().split("reloaded ").length - 1;
    c.kill("SIGHUP");
    await waitFor(() => reloads() === 1, 5000, "the first reload");
    expect(await mtuOf(w.client, IF)).toBe(1280);
    // MTU in the config: applied on reload.
    clientConf(w, { mtu: 1300 });
    c.kill("SIGHUP");
    await waitFor(() => reloads() === 2, 5000, "the second reload");
    expect(await mtuOf(w.client, IF)).toBe(1300);
    // Above what the running data path carries (started at 1280: packets of up to 1500 bytes):
    // refused with a warning until a restart.
    clientConf(w, { mtu: 9000 });
    c.kill("SIGHUP");
    await waitFor(() => reloads() === 3, 5000, "the third reload");
    expect(c.output()).toContain("reload: MTU 9000 needs a restart (the data path carries packets of up to 1500 bytes); MTU stays 1300");
    expect(await mtuOf(w.client, IF)).toBe(1300);
    // And taken out again: the interface keeps what it has, as wg-quick's syncconf leaves it.
    clientConf(w);
    c.kill("SIGHUP");
    await waitFor(() => reloads() === 4, 5000, "the fourth reload");
    expect(await mtuOf(w.client, IF)).toBe(1300);
    await waitForPing(w.client, "10.68.0.1");
    expect(await stopWontun(c)).toBe(0);
  }, 30_000);

  test("a route's own mtu counts, one that PreUp adds too; an IPv6 address keeps the tunnel at 1280 at least", async () => {
    const w = await world(1500);
    await startWontun(w.server, serverConf(w));
    // PreUp runs before the MTU is read, as in wg-quick; it leaves the route in place.
    let c = await startWontun(w.client, clientConf(w, { preUp: `ip route add 192.0.2.1/32 dev ${w.clientIf} mtu 1000` }));
    // 1000 - 80 = 920; in whole 64-byte blocks: 896.
    expect(await mtuOf(w.client, IF)).toBe(896);
    expect(c.output()).toContain("(its mtu)");
    await waitForPing(w.client, "10.68.0.1");
    expect(await stopWontun(c)).toBe(0);
    // With an IPv6 tunnel address, 896 would take IPv6 off the interface: 1280 (the outer
    // packets are then fragmented), and the address is there.
    c = await startWontun(w.client, clientConf(w, { v6: true }));
    expect(await mtuOf(w.client, IF)).toBe(1280);
    expect(await w.client.ip(`-6 addr show dev ${IF}`)).toContain("fd68::2/64");
    await waitForPing(w.client, "10.68.0.1");
    expect(await stopWontun(c)).toBe(0);
  }, 30_000);

  test("jumbo frames: full-sized packets of 8896 bytes cross; an endpoint given by name counts as the default route; an MTU in the config is used as written", async () => {
    const w = await world(9000);
    await startWontun(w.server, serverConf(w, 8896));
    let c = await startWontun(w.client, clientConf(w));
    // 9000 - 80 = 8920; in whole 64-byte blocks: 8896.
    expect(await mtuOf(w.client, IF)).toBe(8896);
    await waitForPing(w.client, "10.68.0.1");
    const big = await w.client.run(["ping", "-c", "1", "-W", "2", "-M", "do", "-s", String(8896 - 28), "10.68.0.1"]);
    expect(big.code).toBe(0);
    expect(await stopWontun(c)).toBe(0);
    // A name is resolved later, by the device (this one never): the default route stands in.
    await w.client.ip("route add default via 192.0.2.1");
    const conf = w.dir.write(`${IF}.conf`, [
      "[Interface]", `PrivateKey = ${w.clientKeys.privateKey}`, "Address = 10.68.0.2/24",
      "", "[Peer]", `PublicKey = ${w.serverKeys.publicKey}`, "Endpoint = unreachable.invalid:51820", "AllowedIPs = 10.68.0.0/24", "",
    ].join("\n"));
    chmodSync(conf, 0o600);
    c = await startWontun(w.client, conf);
    expect(await mtuOf(w.client, IF)).toBe(8896);
    expect(c.output()).toContain("from the default route's interface");
    expect(await stopWontun(c)).toBe(0);
    c = await startWontun(w.client, clientConf(w, { mtu: 1420 }));
    expect(await mtuOf(w.client, IF)).toBe(1420);
    expect(c.output()).not.toContain("in whole 64-byte blocks");
    await waitForPing(w.client, "10.68.0.1");
    expect(await stopWontun(c)).toBe(0);
  }, 30_000);
});
