// wg-quick with WG_QUICK_USERSPACE_IMPLEMENTATION pointing at the implementation under test
// (UAPI_IMPL: wontun by default, or wireguard-go): wg-quick starts it the way it starts any
// userspace WireGuard (`IMPL IFACE`, which daemonizes), configures it over the control socket,
// owns addresses, routes and, for a full tunnel, fwmark policy routing and nftables; `wg-quick
// down` deletes the link, and the daemon must then exit and remove its socket.
// wg-quick only runs inside lab namespaces, in a private mount namespace (see wgQuick).
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { canRunIntegration, waitFor, type Host } from "../helpers/netns.ts";
import { ping, waitForPing } from "../helpers/wontun-node.ts";
import { newKeys, type WgKeys } from "../helpers/wireguard.ts";
import {
  IMPL,
  WIREGUARD_GO,
  dump,
  hasWgTools,
  pidsIn,
  startNode,
  uapiSocket,
  wg,
  wgLabPerTest,
  wgQuick,
  waitForSocket,
  type WgEnv,
} from "../helpers/wg-tools.ts";

const env: WgEnv = wgLabPerTest();
// With the kernel module loaded, wg-quick makes a kernel interface and never runs a userspace
// implementation: nothing of the implementation under test would be exercised.
const ready = canRunIntegration && hasWgTools && !existsSync("/sys/module/wireguard");
// A full tunnel needs nftables (or iptables) for wg-quick's mark rules.
const hasNft = Bun.which("nft") !== null;

/** A wg-quick config file named IFACE.conf (wg-quick names the interface after the file), mode 600. */
function quickConfig(iface: string, keys: WgKeys, addresses: string[], peer: { publicKey: string; endpoint: string; allowedIps: string[] }): string {
  const text = `[Interface]
PrivateKey = ${keys.privateKey}
Address = ${addresses.join(", ")}

[Peer]
PublicKey = ${peer.publicKey}
Endpoint = ${peer.endpoint}
AllowedIPs = ${peer.allowedIps.join(", ")}
`;
  const file = env.dir().write(`${iface}.conf`, text);
  chmodSync(file, 0o600); // else wg-quick warns that it is world accessible
  return file;
}

/** Runs wg-quick and fails with its transcript if it does not exit 0. */
async function quick(host: Host, action: "up" | "down", config: string): Promise<string> {
  const r = await wgQuick(host, env.dir(), action, config);
  if (r.code !== 0) throw new Error(`wg-quick ${action} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stderr; // wg-quick logs the commands it runs ("[#] ...") on stderr
}

/** After `wg-quick down`: the interface, the socket and the daemon are gone. */
async function expectGone(host: Host, iface: string, daemons: number[]): Promise<void> {
  expect((await host.run(["ip", "link", "show", iface])).code).not.toBe(0);
  await waitFor(async () => !existsSync(uapiSocket(iface)) && (await pidsIn(host)).length === 0, 3000,
    `${IMPL.name} to exit and remove ${uapiSocket(iface)} after wg-quick down`);
  for (const pid of daemons) expect({ pid, running: running(pid) }).toEqual({ pid, running: false });
}

/** Whether `pid` is alive. A daemon whose parent has exited may linger as a zombie until our
 * runner (or init) reaps it: that one has exited. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

/** The routing state wg-quick may change (rules, every table, nftables), to compare before/after. */
async function routingSnapshot(host: Host): Promise<string> {
  const parts: string[] = [];
  for (const cmd of [
    ["ip", "-4", "rule", "show"], ["ip", "-6", "rule", "show"],
    ["ip", "-4", "route", "show", "table", "all"], ["ip", "-6", "route", "show", "table", "all"],
    ["nft", "list", "ruleset"], ["sysctl", "net.ipv4.conf.all.src_valid_mark"],
  ]) {
    const r = await host.run(cmd);
    parts.push(`$ ${cmd.join(" ")}\n${r.stdout}`);
  }
  return parts.join("\n");
}

describe.skipIf(!canRunIntegration || !hasWgTools)(`${IMPL.name} started the way wg-quick starts a userspace implementation`, () => {
  test("`IMPL IFACE` returns once the control socket answers, and the daemon exits and removes its socket when the link is deleted", async () => {
    const lab = await env.lab("wgq-daemon");
    const a = await lab.host("a");
    const iface = env.iface("d");
    // LOG_LEVEL unset: a daemon keeps no pipe of ours open, so run() returns when the parent exits.
    // As wg-quick runs it: its WG_QUICK_USERSPACE_IMPLEMENTATION is in the environment.
    const r = await a.run(["env", "-u", "LOG_LEVEL", "-u", "WG_PROCESS_FOREGROUND", `WG_QUICK_USERSPACE_IMPLEMENTATION=${IMPL.binary}`, IMPL.binary, iface]);
    if (r.code !== 0) throw new Error(`\`${IMPL.binary} ${iface}\` exited ${r.code}: ${r.stderr}`);
    // Ready means ready: wg-quick's very next step is `wg setconf`.
    expect(existsSync(uapiSocket(iface))).toBe(true);
    expect((await wg(a, ["show", iface, "listen-port"])).trim()).toMatch(/^\d+$/);
    expect(await a.ip(`-o link show dev ${iface}`)).toContain(iface);
    const daemons = await pidsIn(a);
    expect(daemons.length).toBe(1);
    await a.ip(`link del ${iface}`);
    await expectGone(a, iface, daemons);
  }, 20_000);

  for (const [how, args, extraEnv] of [
    ["-f", ["-f"], {}],
    ["--foreground", ["--foreground"], {}],
    ["WG_PROCESS_FOREGROUND=1", [], { WG_PROCESS_FOREGROUND: "1" }],
  ] as const) {
    const invocation = args.length ? `\`IMPL ${how} IFACE\`` : `\`IMPL IFACE\` with ${how}`;
    test(`${invocation} stays in the foreground; SIGTERM removes link and socket`, async () => {
      const lab = await env.lab("wgq-fg");
      const a = await lab.host("a");
      const iface = env.iface("f");
      const proc = a.spawn([IMPL.binary, ...args, iface], { env: { ...extraEnv } });
      await waitForSocket(a, iface, proc);
      expect(proc.proc.exitCode).toBeNull(); // still ours: it did not fork away
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      expect((await a.run(["ip", "link", "show", iface])).code).not.toBe(0);
      expect(existsSync(uapiSocket(iface))).toBe(false);
    }, 20_000);
  }
});

describe.skipIf(!ready)(`wg-quick with WG_QUICK_USERSPACE_IMPLEMENTATION=${IMPL.name}`, () => {
  test("up: the daemon runs, the link has its address and peer, a wireguard-go peer answers; down: link, socket and process are gone", async () => {
    const lab = await env.lab("wgq-simple");
    const a = await lab.host("a");
    const b = await lab.host("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    const ifA = env.iface("q"); // wg-quick's interface, named after the config file
    const ifB = env.iface("b");
    const keysA = newKeys();
    const keysB = newKeys();
    await startNode(WIREGUARD_GO, b, env.dir(), ifB, {
      keys: keysB, listenPort: 51820, addresses: ["10.80.0.2/24"],
      peers: [{ publicKey: keysA.publicKey, allowedIps: ["10.80.0.1/32", "10.80.1.0/24"] }],
    });
    const config = quickConfig(ifA, keysA, ["10.80.0.1/24"], {
      publicKey: keysB.publicKey, endpoint: "192.0.2.2:51820", allowedIps: ["10.80.0.2/32", "10.80.2.0/24"],
    });

    const log = await quick(a, "up", config);
    expect(log).toContain(`[#] ${IMPL.binary} ${ifA}`); // the userspace path, with our binary
    // wg-quick returned, so the implementation daemonized: it runs on in A's namespace.
    const daemons = await pidsIn(a);
    expect(daemons.length).toBeGreaterThan(0);
    expect(existsSync(uapiSocket(ifA))).toBe(true);
    expect(await a.ip(`-4 -o addr show dev ${ifA}`)).toContain("inet 10.80.0.1/24");
    expect(await a.ip(`-o link show dev ${ifA}`)).toMatch(/[<,]UP[,>].* mtu 1420 /);
    expect(await a.ip("route show 10.80.2.0/24")).toContain(`dev ${ifA}`); // outside the interface's prefix: wg-quick adds it
    const d = await dump(a, ifA);
    expect(d.publicKey).toBe(keysA.publicKey);
    expect(d.fwmark).toBe("off");
    expect([...d.peers.values()].map((p) => [p.publicKey, p.endpoint, p.allowedIps])).toEqual([
      [keysB.publicKey, "192.0.2.2:51820", "10.80.0.2/32,10.80.2.0/24"],
    ]);
    await waitForPing(a, "10.80.0.2");
    expect(await ping(b, "10.80.0.1", 1)).toBe(true);

    const down = await quick(a, "down", config);
    expect(down).toContain(`[#] ip link delete dev ${ifA}`);
    await expectGone(a, ifA, daemons);
  }, 30_000);

  test("jumbo frames: wg-quick sets 8920 from the 9000-byte link once the daemon runs, and packets of that size cross", async () => {
    const lab = await env.lab("wgq-jumbo");
    const a = await lab.host("a");
    const b = await lab.host("b");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24", { mtu: 9000 });
    const ifA = env.iface("j");
    const ifB = env.iface("k");
    const keysA = newKeys();
    const keysB = newKeys();
    await startNode(WIREGUARD_GO, b, env.dir(), ifB, {
      keys: keysB, listenPort: 51820, addresses: ["10.81.0.2/24"],
      peers: [{ publicKey: keysA.publicKey, allowedIps: ["10.81.0.1/32"] }],
    });
    await b.ip(`link set dev ${ifB} mtu 8920`);
    const config = quickConfig(ifA, keysA, ["10.81.0.1/24"], {
      publicKey: keysB.publicKey, endpoint: "192.0.2.2:51820", allowedIps: ["10.81.0.2/32"],
    });
    await quick(a, "up", config);
    const daemons = await pidsIn(a);
    expect(await a.ip(`-o link show dev ${ifA}`)).toMatch(/ mtu 8920 /);
    await waitForPing(a, "10.81.0.2");
    // Full-sized, DF set, both ways: the daemon was started before the MTU and still carries them.
    for (const [from, to] of [[a, "10.81.0.2"], [b, "10.81.0.1"]] as const) {
      const r = await from.run(["ping", "-c", "2", "-W", "2", "-M", "do", "-s", String(8920 - 28), to]);
      expect({ from: from.short, code: r.code, out: r.stdout }).toMatchObject({ code: 0 });
    }
    await quick(a, "down", config);
    await expectGone(a, ifA, daemons);
  }, 30_000);

  test.skipIf(!hasNft)("full tunnel (AllowedIPs 0.0.0.0/0, ::/0) through a router: fwmark policy routing reaches an address only the server has; down restores rules and routes", async () => {
    // client (192.0.2.2) — router — server (198.51.100.2): the server's endpoint is off the
    // client's link, reached through the client's default route, which the tunnel takes over.
    const lab = await env.lab("wgq-full");
    const client = await lab.host("client");
    const router = await lab.host("router");
    const server = await lab.host("server");
    const { aIf: clientUplink } = await lab.link(client, "192.0.2.2/24", router, "192.0.2.1/24");
    await lab.link(router, "198.51.100.1/24", server, "198.51.100.2/24");
    await router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await client.ip("route add default via 192.0.2.1");
    await server.ip("route add default via 198.51.100.1");
    // Addresses only the server has: the router has no route to them, so only the tunnel reaches them.
    await server.ip("addr add 203.0.113.77/32 dev lo");
    await server.ip("addr add 2001:db8:77::77/128 dev lo");
    const ifC = env.iface("q");
    const ifS = env.iface("s");
    const keysC = newKeys();
    const keysS = newKeys();
    await startNode(WIREGUARD_GO, server, env.dir(), ifS, {
      keys: keysS, listenPort: 51820, addresses: ["10.81.0.1/24", "fd81::1/64"],
      peers: [{ publicKey: keysC.publicKey, allowedIps: ["10.81.0.2/32", "fd81::2/128"] }],
    });
    const config = quickConfig(ifC, keysC, ["10.81.0.2/24", "fd81::2/64"], {
      publicKey: keysS.publicKey, endpoint: "198.51.100.2:51820", allowedIps: ["0.0.0.0/0", "::/0"],
    });
    // Before: the tunnel address is unreachable (the router drops it), and the state to restore.
    expect(await ping(client, "203.0.113.77", 1)).toBe(false);
    await waitFor(async () => !(await client.ip("-6 addr")).includes("tentative"), 3000, "IPv6 link-local addresses to settle");
    const before = await routingSnapshot(client);

    const log = await quick(client, "up", config);
    const daemons = await pidsIn(client);
    expect(log).toContain(`[#] ${IMPL.binary} ${ifC}`);
    // wg-quick picked fwmark 51820 (0xca6c) for the implementation's socket and routes by it.
    expect(log).toContain(`[#] wg set ${ifC} fwmark 51820`);
    expect(log).toContain("[#] nft -f");
    expect((await wg(client, ["show", ifC, "fwmark"])).trim()).toBe("0xca6c");
    expect(await client.ip("-4 rule show")).toMatch(/not from all fwmark 0xca6c lookup 51820/);
    expect(await client.ip("-6 rule show")).toMatch(/not from all fwmark 0xca6c lookup 51820/);
    expect(await client.ip("route get 203.0.113.99")).toContain(`dev ${ifC}`);
    expect(await client.ip("-6 route get 2001:db8:77::99")).toContain(`dev ${ifC}`);
    // Marked packets (the implementation's own UDP) still take the underlay.
    expect(await client.ip("route get 198.51.100.2 mark 51820")).toContain(`dev ${clientUplink}`);

    await waitForPing(client, "203.0.113.77");
    expect(await ping(client, "2001:db8:77::77", 1)).toBe(true);
    // The server saw the client's handshake come from the router's side, i.e. through the underlay.
    const peer = (await dump(server, ifS)).peers.get(keysC.publicKey)!;
    expect(peer.endpoint).toMatch(/^192\.0\.2\.2:\d+$/);
    expect(peer.rx).toBeGreaterThan(0);

    await quick(client, "down", config);
    await expectGone(client, ifC, daemons);
    // src_valid_mark stays as wg-quick set it (it never resets it); everything else is as before.
    const after = await routingSnapshot(client);
    expect(after.replace(/src_valid_mark = 1/, "src_valid_mark = 0")).toBe(before);
    expect(await ping(client, "203.0.113.77", 1)).toBe(false);
  }, 40_000);
});
