// A persistent TUN made beforehand (`ip tuntap add`): `wontun up` refuses it with one clear line
// and leaves it exactly as it was (IFF_TUN_EXCL: the kernel refuses before touching it); a
// multi-queue one is named as such. The wireguard-go invocation (`wontun -f IFACE`) attaches to a
// single-queue one as wireguard-go does, configures nothing on it, and leaves it behind on exit.
import { describe, expect, test } from "bun:test";
import { canRunIntegration, waitFor, type Host } from "../helpers/netns.ts";
import { labPerTest, SERVER_CONF, wontunCommand } from "../helpers/wontun-node.ts";

const env = labPerTest();

async function host(tag: string): Promise<Host> {
  const lab = await env.lab(tag, "h9");
  return lab.host("h9");
}

/** Everything wontun could change: the link (flags, MTU, tun details), addresses, routes of every table. */
async function snapshot(h: Host, iface: string): Promise<string> {
  const parts = await Promise.all([
    h.run(["ip", "-d", "link", "show", "dev", iface]),
    h.run(["ip", "addr", "show", "dev", iface]),
    h.run(["ip", "-4", "route", "show", "table", "all"]),
    h.run(["ip", "-6", "route", "show", "table", "all"]),
    h.run(["ip", "rule", "show"]),
    h.run(["cat", `/sys/class/net/${iface}/tun_flags`]),
  ]);
  for (const p of parts) expect(p.code).toBe(0);
  return parts.map((p) => p.stdout).join("\n");
}

/** A persistent TUN with an address and a route of its own, as a user would have set it up. */
async function persistentTun(h: Host, iface: string, extra: string[] = []): Promise<void> {
  await h.ip(`tuntap add dev ${iface} mode tun ${extra.join(" ")}`);
  await h.ip(`addr add 10.99.0.1/24 dev ${iface}`);
  await h.ip(`link set ${iface} up`);
  await h.ip(`route add 10.98.0.0/16 dev ${iface}`);
}

describe.skipIf(!canRunIntegration)("a persistent TUN made beforehand", () => {
  test("wontun up refuses it: exit 1, one line naming it, the interface exactly as found", async () => {
    const h = await host("persistent-tun");
    await persistentTun(h, "h9p");
    const before = await snapshot(h, "h9p");
    const file = env.dir().write("h9p.conf", SERVER_CONF);
    const r = await h.run([...wontunCommand(), "up", file, "--interface", "h9p"]);
    expect(r.code).toBe(1);
    // The log lines before it are timestamped; the error is one line of its own.
    const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("wontun:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("interface h9p is a persistent TUN device");
    expect(lines[0]).toContain("ip tuntap del dev h9p mode tun");
    expect(lines[0]).not.toContain("not a TUN device");
    expect(await snapshot(h, "h9p")).toBe(before);
    // The config's address and route never reached it.
    expect(before).not.toContain("10.10.0.1");
  });

  test("a multi-queue one is named as such, for up and for the wireguard-go invocation", async () => {
    const h = await host("persistent-tun-mq");
    await persistentTun(h, "h9m", ["multi_queue"]);
    const before = await snapshot(h, "h9m");
    const file = env.dir().write("h9m.conf", SERVER_CONF);
    const up = await h.run([...wontunCommand(), "up", file, "--interface", "h9m"]);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain("interface h9m is a persistent multi-queue TUN device");
    expect(up.stderr).toContain("ip tuntap del dev h9m mode tun multi_queue");
    expect(up.stderr).not.toContain("not a TUN device");
    const userspace = await h.run([...wontunCommand(), "-f", "h9m"], { timeoutMs: 10_000 });
    expect(userspace.code).toBe(1);
    expect(userspace.stderr).toContain("interface h9m is a persistent multi-queue TUN device; wontun attaches only to a single-queue one");
    expect(await snapshot(h, "h9m")).toBe(before);
  });

  test("a TAP device or another kind of interface is named for what it is", async () => {
    const h = await host("persistent-tap");
    await h.ip("tuntap add dev h9t mode tap");
    await h.ip("link add h9d type veth peer name h9d2");
    const file = env.dir().write("h9.conf", SERVER_CONF);
    const tap = await h.run([...wontunCommand(), "up", file, "--interface", "h9t"]);
    expect(tap.code).toBe(1);
    expect(tap.stderr).toContain("interface h9t exists and is a TAP device, not a TUN device");
    const dummy = await h.run([...wontunCommand(), "up", file, "--interface", "h9d"]);
    expect(dummy.code).toBe(1);
    expect(dummy.stderr).toContain("interface h9d exists and is not a TUN device");
  });

  test("wontun -f IFACE (wireguard-go's invocation) attaches as wireguard-go does and leaves it behind", async () => {
    const h = await host("persistent-tun-wg");
    await persistentTun(h, "h9w");
    const sockets = env.dir().path;
    const proc = h.spawn([...wontunCommand(), "-f", "h9w"], { env: { WONTUN_SOCKET_DIR: sockets } });
    let exited = false;
    proc.exited.then(() => (exited = true));
    await waitFor(() => {
      if (exited) throw new Error(`wontun exited early:\n${proc.output()}`);
      return proc.output().includes("running");
    }, 10_000, `wontun -f h9w to start:\n${proc.output()}`);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    // Still there, with the user's address and route (wontun configured nothing on it).
    const after = await snapshot(h, "h9w");
    expect(after).toContain("10.99.0.1/24");
    expect(after).toContain("10.98.0.0/16 dev h9w");
    expect(after).toContain("persist on");
  });
});
