// rtnetlink interface setup, checked from outside with `ip -n NS ...`, plus the lab itself.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Lab, canRunIntegration, clearNetem, netem, waitFor, type Host, type SpawnedProcess } from "../helpers/netns.ts";

const BUN = process.execPath;
const PROBE = `${import.meta.dir}/../fixtures/netlink-probe.ts`;

interface IpAddrInfo { family: string; local: string; prefixlen: number; flags?: string[]; nodad?: boolean }
interface IpLink { ifname: string; mtu: number; flags: string[]; operstate: string; addr_info?: IpAddrInfo[] }
interface IpRoute { dst: string; dev: string; scope?: string; protocol?: string }

async function json<T>(host: Host, args: string): Promise<T> {
  return JSON.parse(await host.ip(`-j ${args}`)) as T;
}

async function waitForLine(p: SpawnedProcess, line: string): Promise<void> {
  let code: number | undefined;
  void p.exited.then((c) => { code = c; });
  await waitFor(() => {
    if (code !== undefined) throw new Error(`probe exited with ${code}:\n${p.output()}`);
    return p.output().split("\n").includes(line);
  }, 15_000, `"${line}" from the probe; output so far:\n${p.output()}`);
}

describe.skipIf(!canRunIntegration)("rtnetlink interface setup", () => {
  let lab: Lab;
  beforeAll(async () => { lab = await Lab.create("netlink"); });
  afterAll(async () => { await lab.cleanup(); });

  test("configures MTU, addresses, up and routes on a TUN; all gone when its fd closes", async () => {
    const ns = await lab.host("tun");
    const probe = ns.spawn([BUN, PROBE, "tun", "wtprobe0"]);
    await waitForLine(probe, "ready");
    const resultLine = probe.output().split("\n").find((l) => l.startsWith("result "))!;
    const result = JSON.parse(resultLine.slice("result ".length));

    const [link] = await json<IpLink[]>(ns, "link show dev wtprobe0");
    expect(link.mtu).toBe(1400);
    expect(link.flags).toContain("UP");
    expect(result.index).toBeGreaterThan(0);

    const [addrs] = await json<IpLink[]>(ns, "addr show dev wtprobe0");
    const global = addrs.addr_info!.filter((a) => !a.local.startsWith("fe80:"));
    expect(global.map((a) => `${a.local}/${a.prefixlen}`).sort()).toEqual(["10.99.0.1/24", "fd00:99::1/64"]);
    // NODAD: the IPv6 address is usable at once, never "tentative".
    const v6 = global.find((a) => a.family === "inet6")!;
    expect(v6.flags ?? []).not.toContain("tentative");
    expect((await ns.ip("-6 addr show dev wtprobe0")).includes("tentative")).toBe(false);

    const routes4 = await json<IpRoute[]>(ns, "-4 route show dev wtprobe0");
    const r4 = routes4.find((r) => r.dst === "10.98.0.0/16");
    expect(r4).toBeDefined();
    expect(r4!.scope).toBe("link");
    expect(routes4.some((r) => r.dst === "10.99.0.0/24")).toBe(true); // the kernel's prefix route
    expect(routes4.some((r) => r.dst === "10.97.0.0/16")).toBe(false); // added and deleted
    const routes6 = await json<IpRoute[]>(ns, "-6 route show dev wtprobe0");
    expect(routes6.map((r) => r.dst)).toContain("fd00:98::/48");
    expect(routes6.map((r) => r.dst)).not.toContain("fd00:97::/48");

    expect(result).toMatchObject({
      readdAddress4: false, readdAddress6: false, readdRoute4: false, readdRoute6: false,
      addTemp: true, deleteTemp: true, deleteTempAgain: false, addTemp6: true, deleteTemp6: true,
    });
    expect(result.badIndex).toMatch(/^add address 10\.0\.0\.1\/24 to #999999: no such device \(ENODEV\)/);
    expect(result.missingName).toContain(`look up interface "nosuch0": no such device (ENODEV)`);

    probe.kill("SIGTERM");
    await probe.exited;
    await waitFor(async () => (await ns.run(["ip", "link", "show", "dev", "wtprobe0"])).code !== 0, 3000,
      "wtprobe0 to disappear");
    expect(await ns.ip("-4 route show")).not.toContain("10.98.0.0");
    expect(await ns.ip("-6 route show")).not.toContain("fd00:98::");
  });

  test("setDown and deleteLink on a veth pair", async () => {
    const a = await lab.host("a");
    const b = await lab.host("b");
    const { aIf, bIf } = await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    expect((await a.run(["ping", "-c", "1", "-W", "2", "192.0.2.2"])).code).toBe(0);

    const down = await a.run([BUN, PROBE, "down", aIf]);
    expect(down.stderr).toBe("");
    expect(down.code).toBe(0);
    const [link] = await json<IpLink[]>(a, `link show dev ${aIf}`);
    expect(link.flags).not.toContain("UP");

    const del = await a.run([BUN, PROBE, "delete", aIf]);
    expect(del.code).toBe(0);
    expect((await a.run(["ip", "link", "show", "dev", aIf])).code).not.toBe(0);
    expect((await b.run(["ip", "link", "show", "dev", bIf])).code).not.toBe(0); // the peer goes too
  });

  test.skipIf(!Bun.which("setpriv"))("without CAP_NET_ADMIN the error says so", async () => {
    const ns = await lab.host("nocap");
    const r = await ns.run([
      "setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", BUN, PROBE, "mtu", "lo", "1400",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("set MTU 1400 on lo: operation not permitted (EPERM): needs CAP_NET_ADMIN");
  });
});

describe.skipIf(!canRunIntegration)("Lab", () => {
  test("cleanup stops processes and removes namespaces, also after a failure", async () => {
    const lab = await Lab.create("lab-self-test");
    let cleaned = false;
    try {
      const a = await lab.host("a");
      const b = await lab.host("b");
      const { aIf, bIf } = await lab.link(a, "198.51.100.1/24", b, "198.51.100.2/24");
      expect([aIf, bIf]).toEqual(["to-b", "to-a"]);
      expect((await lab.link(a, "", b, "")).aIf).toBe("to-b1");

      // A process that ignores SIGTERM must still be gone after cleanup.
      const stubborn = a.spawn(["sh", "-c", "trap '' TERM; echo started; while :; do sleep 0.1; done"]);
      await waitFor(() => stubborn.output().includes("started"), 5000, "the shell to start");
      expect((await a.run(["sh", "-c", "cat; echo err >&2; exit 3"], { stdin: "in" }))).toEqual({
        code: 3, stdout: "in", stderr: "err\n",
      });
      const slow = await a.run(["sleep", "5"], { timeoutMs: 200 });
      expect(slow.code).not.toBe(0);

      await lab.cleanup();
      cleaned = true;
      await lab.cleanup(); // idempotent
      expect(await stubborn.exited).not.toBe(0);
      const left = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString();
      expect(left).not.toContain(lab.id);
    } finally {
      if (!cleaned) await lab.cleanup();
    }
  });

  test("netem (or its loss-only fallback) drops about the asked share of packets", async () => {
    const lab = await Lab.create("netem");
    try {
      const a = await lab.host("a");
      const b = await lab.host("b");
      const { aIf } = await lab.link(a, "203.0.113.1/24", b, "203.0.113.2/24");
      expect((await a.run(["ping", "-c", "1", "-W", "2", "203.0.113.2"])).code).toBe(0);
      const method = await netem(a, aIf, "loss 30%");
      expect(["netem", "bpf-drop"]).toContain(method);
      const r = await a.run(["ping", "-c", "300", "-i", "0.005", "-W", "1", "-q", "203.0.113.2"], { timeoutMs: 20_000 });
      const loss = Number(/([\d.]+)% packet loss/.exec(r.stdout)?.[1]);
      // Echo requests only are dropped (ARP too, but the neighbour is cached): ~30%.
      expect(loss).toBeGreaterThan(15);
      expect(loss).toBeLessThan(45);
      await clearNetem(a, aIf);
      const clean = await a.run(["ping", "-c", "50", "-i", "0.005", "-W", "1", "-q", "203.0.113.2"]);
      expect(clean.stdout).toContain(" 0% packet loss");
    } finally {
      await lab.cleanup();
    }
  });
});
