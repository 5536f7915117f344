// `wontun up` sets the host up as wg-quick does: a full-tunnel client behind an ISP router,
// Table, hooks, SaveConfig, leftovers of a killed daemon, DNS in a private mount namespace,
// sd_notify readiness. Every namespace and interface name starts with "h4".
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { ptr } from "bun:ffi";
import { canRunIntegration, waitFor, type Host } from "../helpers/netns.ts";
import { labPerTest, startWontun, stopWontun, waitForPing, wontunCommand, type ConfigDir } from "../helpers/wontun-node.ts";
import { newKeys } from "../helpers/wireguard.ts";
import { libc } from "../../src/sys/libc.ts";
import { loadConfig } from "../../src/config/load.ts";

const env = labPerTest();
const IF = "h4wg0";

interface World {
  client: Host;
  router: Host;
  server: Host;
  dir: ConfigDir;
  clientKeys: ReturnType<typeof newKeys>;
  serverKeys: ReturnType<typeof newKeys>;
}

/** client --(192.0.2.0/24)-- router --(203.0.113.0/24)-- server; the server's endpoint is not on the client's link. */
async function world(defaultMetric = 100): Promise<World> {
  const lab = await env.lab("host-full-tunnel");
  const client = await lab.host("h4c");
  const router = await lab.host("h4r");
  const server = await lab.host("h4s");
  await lab.link(client, "192.0.2.2/24", router, "192.0.2.1/24");
  await lab.link(router, "203.0.113.1/24", server, "203.0.113.2/24");
  await router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await client.ip(`route add default via 192.0.2.1 metric ${defaultMetric}`);
  await server.ip("route add default via 203.0.113.1");
  // An address only the server has: reachable from the client only through the tunnel.
  await server.ip("addr add 10.99.0.1/32 dev lo");
  await server.ip("addr add fd99::1/128 dev lo");
  return { client, router, server, dir: env.dir(), clientKeys: newKeys(), serverKeys: newKeys() };
}

function serverConf(w: World): string {
  return w.dir.write("h4srv.conf", [
    "[Interface]", `PrivateKey = ${w.serverKeys.privateKey}`, "Address = 10.66.0.1/24, fd66::1/64", "ListenPort = 51820",
    "", "[Peer]", `PublicKey = ${w.clientKeys.publicKey}`, "AllowedIPs = 10.66.0.2/32, fd66::2/128", "",
  ].join("\n"));
}

function clientConf(w: World, allowed: string, extra: string[] = [], name = `${IF}.conf`): string {
  const file = w.dir.write(name, [
    "[Interface]", `PrivateKey = ${w.clientKeys.privateKey}`, "Address = 10.66.0.2/24, fd66::2/64", ...extra,
    "", "[Peer]", `PublicKey = ${w.serverKeys.publicKey}`, "Endpoint = 203.0.113.2:51820", `AllowedIPs = ${allowed}`,
    "PersistentKeepalive = 1", "",
  ].join("\n"));
  chmodSync(file, 0o600);
  return file;
}

/** Everything routing-related the host has, to compare before and after. */
async function snapshot(h: Host): Promise<string> {
  const parts = await Promise.all([
    h.ip("-4 rule show"), h.ip("-6 rule show"), h.ip("-4 route show table all"), h.ip("-6 route show table all"),
  ]);
  const nft = await h.run(["nft", "list", "ruleset"]);
  return [...parts, nft.stdout].join("\n---\n");
}

const routeGet = async (h: Host, addr: string, extra: string[] = []) =>
  (await h.run(["ip", "route", "get", addr, ...extra])).stdout;

describe.skipIf(!canRunIntegration)("wontun up: the host, as wg-quick sets it", () => {
  test("full tunnel (0.0.0.0/0) behind a router: everything goes through the tunnel, SIGTERM restores rules and routes", async () => {
    const w = await world(100);
    await startWontun(w.server, serverConf(w));
    const before = await snapshot(w.client);
    const c = await startWontun(w.client, clientConf(w, "0.0.0.0/0"));
    await waitForPing(w.client, "10.99.0.1");
    expect(await routeGet(w.client, "198.51.100.77")).toContain(`dev ${IF}`);
    // The tunnel's own packets (fwmark 51820) still leave through the router.
    expect(await routeGet(w.client, "203.0.113.2", ["mark", "51820"])).toContain("via 192.0.2.1");
    const rules = await w.client.ip("-4 rule show");
    expect(rules).toContain("not from all fwmark 0xca6c lookup 51820");
    expect(rules).toContain("from all lookup main suppress_prefixlength 0");
    expect(await w.client.ip("route show table 51820")).toContain(`default dev ${IF}`);
    const nft = (await w.client.run(["nft", "list", "table", "ip", `wontun-${IF}`])).stdout;
    expect(nft).toContain(`iifname != "${IF}" ip daddr 10.66.0.2 fib saddr type != local drop`);
    expect(readFileSync(`/proc/sys/net/ipv4/conf/all/src_valid_mark`, "utf8")).toBeDefined();
    expect((await w.client.run(["cat", `/proc/sys/net/ipv4/conf/${IF}/send_redirects`, "/proc/sys/net/ipv4/conf/all/send_redirects", "/proc/sys/net/ipv4/conf/all/src_valid_mark"])).stdout)
      .toBe("0\n0\n1\n");
    expect(await stopWontun(c)).toBe(0);
    expect(await snapshot(w.client)).toBe(before);
  }, 30_000);

  test("the full tunnel survives a rekey: after 120 s a new handshake, and pings never stop", async () => {
    const w = await world(100);
    await startWontun(w.server, serverConf(w));
    const c = await startWontun(w.client, clientConf(w, "0.0.0.0/0"));
    await waitForPing(w.client, "10.99.0.1");
    const handshake = async () => Number((await w.client.run(["wg", "show", IF, "latest-handshakes"])).stdout.trim().split("\t")[1]);
    const first = await handshake();
    expect(first).toBeGreaterThan(0);
    // One ping a second across REKEY_AFTER_TIME (120 s): the initiator rekeys while data flows.
    const r = await w.client.run(["ping", "-c", "135", "-i", "1", "-W", "1", "10.99.0.1"], { timeoutMs: 150_000 });
    const received = Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
    expect(received).toBeGreaterThanOrEqual(133);
    expect(await handshake()).toBeGreaterThan(first);
    // The rekeyed session still carries the tunnel's packets, marked ones still go via the router.
    await waitForPing(w.client, "10.99.0.1");
    expect(await routeGet(w.client, "203.0.113.2", ["mark", "51820"])).toContain("via 192.0.2.1");
    expect(await stopWontun(c)).toBe(0);
  }, 200_000);

  test("::/0 as well, with a metric-0 default route already there", async () => {
    const w = await world(0);
    await startWontun(w.server, serverConf(w));
    const before = await snapshot(w.client);
    const c = await startWontun(w.client, clientConf(w, "0.0.0.0/0, ::/0"));
    await waitForPing(w.client, "10.99.0.1");
    await waitForPing(w.client, "fd99::1");
    expect(await routeGet(w.client, "198.51.100.77")).toContain(`dev ${IF}`);
    expect(await routeGet(w.client, "2001:db8:5::1")).toContain(`dev ${IF}`);
    expect(await w.client.ip("-6 rule show")).toContain("not from all fwmark 0xca6c lookup 51820");
    expect(await stopWontun(c)).toBe(0);
    expect(await snapshot(w.client)).toBe(before);
  }, 30_000);

  test("Table = 1234 and hooks with %i, in wg-quick's order; Table = off adds no routes", async () => {
    const w = await world();
    await startWontun(w.server, serverConf(w));
    const log = `${w.dir.path}/hooks.log`;
    const hooks = ["PreUp", "PostUp", "PreDown", "PostDown"].map((h) => `${h} = echo ${h} %i >> ${log}`);
    hooks.push("PostUp = echo hello from %i");
    const before = await snapshot(w.client);
    const c = await startWontun(w.client, clientConf(w, "10.99.0.0/24, 0.0.0.0/0", ["Table = 1234", ...hooks]));
    const table = await w.client.ip("route show table 1234");
    expect(table).toContain(`default dev ${IF}`);
    expect(table).toContain(`10.99.0.0/24 dev ${IF}`);
    expect(await w.client.ip("rule show")).not.toContain("51820");
    expect(await stopWontun(c)).toBe(0);
    expect(readFileSync(log, "utf8")).toBe(`PreUp ${IF}\nPostUp ${IF}\nPreDown ${IF}\nPostDown ${IF}\n`);
    expect(c.output()).toContain(`[PostUp] hello from ${IF}`);
    expect(await snapshot(w.client)).toBe(before);

    const off = await startWontun(w.client, clientConf(w, "10.99.0.0/24, 0.0.0.0/0", ["Table = off"]));
    expect(await w.client.ip("-4 route show table all")).not.toContain("10.99.0.0/24");
    expect(await w.client.ip("rule show")).not.toContain("51820");
    expect(await stopWontun(off)).toBe(0);
  }, 30_000);

  test("a failing PostUp undoes start-up: exit 1, interface, rules, routes and nft table gone", async () => {
    const w = await world();
    const before = await snapshot(w.client);
    const c = await startWontun(w.client, clientConf(w, "0.0.0.0/0", ["PostUp = echo about to fail; exit 3"]), { wait: false });
    expect(await c.exited).toBe(1);
    expect(c.output()).toContain("PostUp `echo about to fail; exit 3` failed with exit status 3");
    expect(c.output()).toContain("[PostUp] about to fail");
    expect((await w.client.run(["ip", "link", "show", IF])).code).not.toBe(0);
    expect(await snapshot(w.client)).toBe(before);
  }, 30_000);

  test("a SIGKILLed daemon's rules and nft table are removed by the next start", async () => {
    const w = await world();
    await startWontun(w.server, serverConf(w));
    const before = await snapshot(w.client);
    const conf = clientConf(w, "0.0.0.0/0");
    const killed = await startWontun(w.client, conf);
    killed.kill("SIGKILL");
    await killed.exited;
    expect(await w.client.ip("rule show")).toContain("lookup 51820"); // left behind
    const again = await startWontun(w.client, conf);
    expect(again.output()).toContain("did not clean up");
    expect((await w.client.ip("-4 rule show")).match(/lookup 51820/g)?.length).toBe(1);
    await waitForPing(w.client, "10.99.0.1");
    expect(await stopWontun(again)).toBe(0);
    expect(await snapshot(w.client)).toBe(before);
  }, 30_000);

  test("SaveConfig = true writes the running config back, mode 0600, and it loads to the same config", async () => {
    const w = await world();
    const conf = clientConf(w, "10.99.0.0/24", ["SaveConfig = true", "Table = off", "PostUp = true", "DNS = 10.66.0.1, corp.example"]);
    chmodSync(conf, 0o644);
    const original = loadConfig(conf, { wireguard: true });
    const c = await startWontun(w.client, conf);
    expect(await stopWontun(c)).toBe(0);
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    const saved = loadConfig(conf, { wireguard: true });
    expect({ ...saved, warnings: [] }).toEqual({ ...original, warnings: [] });
    expect(readFileSync(conf, "utf8")).toContain("SaveConfig = true");
  }, 30_000);

  test("DNS in a private mount namespace: resolvconf -a on start, -d on exit; the real /etc/resolv.conf untouched", async () => {
    const w = await world();
    const realResolv = readFileSync("/etc/resolv.conf", "utf8");
    const bin = `${w.dir.path}/bin`;
    const calls = `${w.dir.path}/resolvconf.calls`;
    Bun.spawnSync(["mkdir", "-p", bin]);
    // A stand-in for the host's resolvconf: records its arguments and input, writes the mounted file.
    writeFileSync(`${bin}/resolvconf`, `#!/bin/sh\necho "$@" >> ${calls}\nif [ "$1" = -a ]; then cat > /etc/resolv.conf; else : > /etc/resolv.conf; fi\n`, { mode: 0o755 });
    const fake = w.dir.write("resolv.conf", "nameserver 192.0.2.53\n");
    const conf = clientConf(w, "10.99.0.0/24", ["DNS = 10.66.0.1, fd66::1, corp.example"]);
    const script = `mount --bind ${fake} /etc/resolv.conf && exec "$@"`;
    const proc = w.client.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", ...wontunCommand(), "up", conf],
      { env: { PATH: `${bin}:${process.env.PATH}` } });
    await waitFor(() => proc.output().includes("running"), 10_000, `wontun to start:\n${proc.output()}`);
    expect(readFileSync(fake, "utf8")).toBe("nameserver 10.66.0.1\nnameserver fd66::1\nsearch corp.example\n");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(readFileSync(calls, "utf8")).toBe(`-a ${IF} -m 0 -x\n-d ${IF} -f\n`);
    expect(readFileSync(fake, "utf8")).toBe("");
    expect(readFileSync("/etc/resolv.conf", "utf8")).toBe(realResolv);
  }, 30_000);

  test("a route that already exists is an error naming it, and nothing is left behind", async () => {
    const w = await world();
    await w.client.ip("route add 10.99.0.0/24 via 192.0.2.1");
    const before = await snapshot(w.client);
    const c = await startWontun(w.client, clientConf(w, "10.99.0.0/24"), { wait: false });
    expect(await c.exited).toBe(1);
    expect(c.output()).toContain("route 10.99.0.0/24 already exists in table main");
    expect(await snapshot(w.client)).toBe(before);
  }, 30_000);

  test("a hub relays between two clients with only ip_forward=1 set: traceroute shows the hub first", async () => {
    const lab = await env.lab("host-hub");
    const dir = env.dir();
    const hub = await lab.host("h4hub");
    const a = await lab.host("h4a");
    const b = await lab.host("h4b");
    await lab.link(hub, "192.0.2.1/24", a, "192.0.2.3/24");
    await lab.link(hub, "198.51.100.1/24", b, "198.51.100.2/24");
    await hub.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    const peer = (name: string, allowed: string, endpoint?: string) =>
      ["", "[Peer]", `Name=${name}`, `AllowedIPs=${allowed}`, ...(endpoint ? [`Endpoint=${endpoint}`] : [])];
    const hubConf = dir.write("h4hub.conf", ["[Interface]", "Name=hub", "Address=10.10.0.1/24",
      ...peer("b", "10.10.0.2/32"), ...peer("a", "10.10.0.3/32"), ""].join("\n"));
    const aConf = dir.write("h4a.conf", ["[Interface]", "Name=a", "Address=10.10.0.3/24", ...peer("hub", "10.10.0.0/24", "192.0.2.1:19988"), ""].join("\n"));
    const bConf = dir.write("h4b.conf", ["[Interface]", "Name=b", "Address=10.10.0.2/24", ...peer("hub", "10.10.0.0/24", "198.51.100.1:19988"), ""].join("\n"));
    await startWontun(hub, hubConf);
    await startWontun(a, aConf);
    await startWontun(b, bConf);
    await waitForPing(b, "10.10.0.1");
    await waitForPing(a, "10.10.0.2");
    expect((await hub.run(["cat", "/proc/sys/net/ipv4/conf/all/send_redirects", "/proc/sys/net/ipv4/conf/h4hub/send_redirects"])).stdout).toBe("0\n0\n");
    const tr = await a.run(["traceroute", "-n", "-w", "2", "-q", "3", "-m", "5", "10.10.0.2"], { timeoutMs: 20_000 });
    const hops = tr.stdout.split("\n").filter((l) => /^\s*\d+\s/.test(l));
    expect(hops[0]).toContain("10.10.0.1");
    expect(hops[1]).toContain("10.10.0.2");
  }, 40_000);

  test("sd_notify: READY=1 reaches the NOTIFY_SOCKET once the interface is up", async () => {
    const w = await world();
    const path = `${w.dir.path}/notify.sock`;
    const fd = libc.socket(1, 2 | 0o4000 /* SOCK_NONBLOCK */, 0);
    const addr = new Uint8Array(110);
    new DataView(addr.buffer).setUint16(0, 1, true);
    addr.set(new TextEncoder().encode(path), 2);
    expect(libc.bind(fd, ptr(addr), 110)).toBe(0);
    const buf = new Uint8Array(4096);
    const messages: string[] = [];
    const receive = () => {
      for (;;) {
        const n = libc.recvfrom(fd, ptr(buf), buf.length, 0, null, null);
        if (n <= 0) return;
        messages.push(new TextDecoder().decode(buf.subarray(0, n)));
      }
    };
    try {
      const c = w.client.spawn([...wontunCommand(), "up", clientConf(w, "10.99.0.0/24")], { env: { NOTIFY_SOCKET: path } });
      await waitFor(() => { receive(); return messages.some((m) => m.includes("READY=1")); }, 10_000, `READY=1:\n${c.output()}`);
      expect(c.output()).toContain("running");
      expect((await w.client.run(["ip", "link", "show", IF])).stdout).toContain("UP");
      // The daemon started itself again in place with Bun's GC timer off (src/daemon/bun-runtime.ts):
      // the pid systemd started is the one that is running, under its own name.
      expect(readFileSync(`/proc/${c.proc.pid}/environ`, "latin1").split("\0")).toContain("BUN_GC_TIMER_DISABLE=1");
      c.kill("SIGTERM");
      expect(await c.exited).toBe(0);
      receive();
      expect(messages.some((m) => m.includes("STOPPING=1"))).toBe(true);
    } finally {
      libc.close(fd);
    }
  }, 30_000);
});

describe("contrib/systemd/wontun@.service", () => {
  const analyze = Bun.which("systemd-analyze");
  test.skipIf(analyze === null)("passes systemd-analyze verify (skipped when systemd-analyze is not installed)", () => {
    const unit = readFileSync(`${import.meta.dir}/../../contrib/systemd/wontun@.service`, "utf8");
    const dir = `${require("node:os").tmpdir()}/h4-unit-${process.pid}`;
    Bun.spawnSync(["mkdir", "-p", dir]);
    // verify checks that ExecStart's binary exists: point it at one that does.
    const binary = existsSync(`${import.meta.dir}/../../dist/wontun`) ? `${import.meta.dir}/../../dist/wontun` : "/bin/true";
    writeFileSync(`${dir}/wontun@h4test.service`, unit.replaceAll("/usr/local/bin/wontun", require("node:path").resolve(binary)));
    const r = Bun.spawnSync([analyze!, "verify", "--man=no", `${dir}/wontun@h4test.service`]);
    Bun.spawnSync(["rm", "-rf", dir]);
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });
});

