// The seed's VPN between real hosts: network namespaces joined by veth, real TUN devices, real
// UDP, checked with ping, nc and traceroute.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { canRunIntegration, netem, type Host } from "../helpers/netns.ts";
import {
  CLIENT_CONF,
  COMPILED,
  REPO,
  SERVER_CONF,
  ConfigDir,
  ncExchange,
  ping,
  startWontun,
  stopWontun,
  waitForPing,
  labPerTest,
} from "../helpers/wontun-node.ts";

const env = labPerTest();

async function twoHosts(): Promise<{ server: Host; client: Host; serverConf: string; clientConf: string; serverIf: string; clientIf: string }> {
  const lab = await env.lab("wontun-pair");
  const dir = env.dir();
  const server = await lab.host("srv");
  const client = await lab.host("cli");
  const { aIf, bIf } = await lab.link(server, "192.0.2.1/24", client, "192.0.2.2/24");
  return {
    server,
    client,
    serverConf: dir.write("wt0.conf", SERVER_CONF),
    clientConf: dir.write("wt1.conf", CLIENT_CONF),
    serverIf: aIf,
    clientIf: bIf,
  };
}

async function helloWorld(server: Host, client: Host): Promise<void> {
  // Client dials the server...
  const one = await ncExchange(server, client, "10.10.0.1", "Hello?", "World!");
  expect(one.listenerGot).toContain("Hello?");
  expect(one.dialerGot).toContain("World!");
  // ...and the server dials the client.
  const two = await ncExchange(client, server, "10.10.0.3", "Hello?", "World!");
  expect(two.listenerGot).toContain("Hello?");
  expect(two.dialerGot).toContain("World!");
}

describe.skipIf(!canRunIntegration)("wontun tunnel between namespaces", () => {
  test("(a) two hosts: nc says Hello? and World! both ways", async () => {
    const { server, client, serverConf, clientConf } = await twoHosts();
    const s = await startWontun(server, serverConf);
    const c = await startWontun(client, clientConf);
    await waitForPing(client, "10.10.0.1");
    await helloWorld(server, client);
    expect(await server.ip("addr show dev wt0")).toContain("10.10.0.1/24");
    expect(await server.ip("link show dev wt0")).toContain("mtu 1400");
    expect(await stopWontun(c)).toBe(0);
    expect(await stopWontun(s)).toBe(0);
    // Interface removed on exit.
    expect((await server.run(["ip", "link", "show", "wt0"])).code).not.toBe(0);
    expect(s.output()).toContain("client-A: handshake-received -> connected");
  });

  test("(b) three hosts: client-A reaches client-B through the server; traceroute shows the hop", async () => {
    const lab = await env.lab("wontun-three");
    const dir = env.dir();
    const server = await lab.host("srv");
    const a = await lab.host("a");
    const b = await lab.host("b");
    await lab.link(server, "192.0.2.1/24", a, "192.0.2.3/24");
    await lab.link(server, "198.51.100.1/24", b, "198.51.100.2/24");
    // The server relays client-to-client packets back out of the same TUN. ICMP redirects for that are
    // useless on a tunnel and use up the per-host ICMP budget that traceroute's replies need.
    await server.run(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0"]);
    const serverConf = dir.write("wt0.conf", `[Interface]
Name=server
Address=10.10.0.1/24

[Peer]
Name=client-B
AllowedIPs=10.10.0.2/32

[Peer]
Name=client-A
AllowedIPs=10.10.0.3/32
`);
    const aConf = dir.write("wta.conf", CLIENT_CONF);
    const bConf = dir.write("wtb.conf", `[Interface]
Name=client-B
Address=10.10.0.2/24

[Peer]
Name=server
Endpoint=198.51.100.1:19988
AllowedIPs=10.10.0.0/24
`);
    await startWontun(server, serverConf);
    await startWontun(a, aConf);
    await startWontun(b, bConf);
    await waitForPing(a, "10.10.0.1");
    await waitForPing(b, "10.10.0.1");
    await waitForPing(a, "10.10.0.2");
    const tr = await a.run(["traceroute", "-n", "-w", "2", "-q", "3", "-m", "5", "10.10.0.2"], { timeoutMs: 20_000 });
    expect(tr.code).toBe(0);
    const hops = tr.stdout.split("\n").filter((l) => /^\s*\d+\s/.test(l));
    expect(hops[0]).toContain("10.10.0.1");
    expect(hops[1]).toContain("10.10.0.2");
    const nc = await ncExchange(b, a, "10.10.0.2", "Hello?", "World!");
    expect(nc.listenerGot).toContain("Hello?");
    expect(nc.dialerGot).toContain("World!");
  });

  test("(c) restart the server, then the client: traffic resumes by itself", async () => {
    const { server, client, serverConf, clientConf } = await twoHosts();
    let s = await startWontun(server, serverConf);
    let c = await startWontun(client, clientConf);
    await waitForPing(client, "10.10.0.1");

    expect(await stopWontun(s)).toBe(0);
    s = await startWontun(server, serverConf);
    await waitForPing(client, "10.10.0.1", 20_000);
    expect(await ping(server, "10.10.0.3")).toBe(true);

    expect(await stopWontun(c)).toBe(0);
    c = await startWontun(client, clientConf);
    await waitForPing(client, "10.10.0.1", 20_000);
    await waitForPing(server, "10.10.0.3", 20_000);
  });

  test("(d) 30% datagram loss on the underlay: the handshake still completes", async () => {
    const { server, client, serverConf, clientConf, serverIf, clientIf } = await twoHosts();
    await netem(server, serverIf, "loss 30%");
    await netem(client, clientIf, "loss 30%");
    const s = await startWontun(server, serverConf);
    const c = await startWontun(client, clientConf);
    // The first Init or Response is likely lost; retries with backoff must get through.
    await waitForPing(client, "10.10.0.1", 45_000);
    expect(c.output()).toMatch(/server: handshake-sent -> connected/);
    expect(s.output()).toMatch(/client-A: none -> handshake-received/);
  }, 90_000);

  test("(e) garbage at the UDP port: the daemon stays up and the tunnel still works", async () => {
    const { server, client, serverConf, clientConf } = await twoHosts();
    const s = await startWontun(server, serverConf);
    const c = await startWontun(client, clientConf);
    await waitForPing(client, "10.10.0.1");
    const flood = [process.execPath, `${REPO}/test/fixtures/udp-garbage.ts`];
    // From a stranger's port and address (the client namespace, another port), at both daemons.
    const r1 = await client.run([...flood, "192.0.2.1", "19988", "3000"], { timeoutMs: 30_000 });
    const r2 = await server.run([...flood, "192.0.2.2", "19988", "3000"], { timeoutMs: 30_000 });
    expect(r1.code).toBe(0);
    expect(r2.code).toBe(0);
    expect(r1.stdout).toContain("sent");
    expect(s.proc.exitCode).toBeNull();
    expect(c.proc.exitCode).toBeNull();
    expect(await ping(client, "10.10.0.1", 3)).toBe(true);
    await helloWorld(server, client);
    expect(s.output()).not.toMatch(/TypeError|RangeError|uncaught/i);
  });

  test.skipIf(!existsSync(COMPILED))("(f) the compiled dist/wontun passes (a)", async () => {
    const { server, client, serverConf, clientConf } = await twoHosts();
    const s = await startWontun(server, serverConf, { binary: COMPILED });
    const c = await startWontun(client, clientConf, { binary: COMPILED });
    await waitForPing(client, "10.10.0.1");
    await helloWorld(server, client);
    expect(await stopWontun(c)).toBe(0);
    expect(await stopWontun(s)).toBe(0);
  });
});
