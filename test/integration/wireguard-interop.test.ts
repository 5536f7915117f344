// wontun's WireGuard mode against stock wireguard-go, and against itself: both roles, IPv4 and
// IPv6 underlays, with and without a preshared key; roaming, wrong keys, heavy loss.
import { describe, expect, test } from "bun:test";
import { canRunIntegration, netem, type Host, type Lab } from "../helpers/netns.ts";
import { ConfigDir, ping, startWontun, waitForPing, labPerTest } from "../helpers/wontun-node.ts";
import {
  hasWireguardGo,
  newKeys,
  newPsk,
  startWireguardGo,
  transfer,
  wgGoInterface,
  wgQuickConfig,
  type WgKeys,
} from "../helpers/wireguard.ts";

const env = labPerTest();

const OVERLAY = { wontun: ["10.30.0.1/24", "fd30::1/64"], go: ["10.30.0.2/24", "fd30::2/64"] };
const UNDERLAY = {
  4: { wontun: "192.0.2.1/24", go: "192.0.2.2/24", ep: (a: string) => `${a.split("/")[0]}:51820` },
  6: { wontun: "2001:db8::1/64", go: "2001:db8::2/64", ep: (a: string) => `[${a.split("/")[0]}]:51820` },
} as const;

interface Setup {
  lab: Lab;
  wontunHost: Host;
  goHost: Host;
  wontunIf: string;
  goIf: string;
  wontunKeys: WgKeys;
  goKeys: WgKeys;
}

async function wontunAndGo(opts: { initiator: "wontun" | "go"; family: 4 | 6; psk: boolean }): Promise<Setup> {
  const lab = await env.lab("wg-interop");
  const dir = env.dir();
  const wontunHost = await lab.host("wontun");
  const goHost = await lab.host("go");
  const u = UNDERLAY[opts.family];
  const { aIf: wontunIf, bIf: goIf } = await lab.link(wontunHost, u.wontun, goHost, u.go);
  const wontunKeys = newKeys();
  const goKeys = newKeys();
  const psk = opts.psk ? newPsk() : undefined;
  await startWontun(wontunHost, dir.write("wgw0.conf", wgQuickConfig({
    keys: wontunKeys,
    addresses: OVERLAY.wontun,
    listenPort: 51820,
    peers: [{
      publicKey: goKeys.publicKey,
      allowedIps: ["10.30.0.2/32", "fd30::2/128"],
      endpoint: opts.initiator === "wontun" ? u.ep(u.go) : undefined,
      psk,
    }],
  })));
  await startWireguardGo(goHost, dir, wgGoInterface(lab, "g"), {
    keys: goKeys,
    addresses: OVERLAY.go,
    listenPort: 51820,
    peers: [{
      publicKey: wontunKeys.publicKey,
      allowedIps: ["10.30.0.1/32", "fd30::1/128"],
      endpoint: opts.initiator === "go" ? u.ep(u.wontun) : undefined,
      psk,
    }],
  });
  return { lab, wontunHost, goHost, wontunIf, goIf, wontunKeys, goKeys };
}

describe.skipIf(!canRunIntegration || !hasWireguardGo)("WireGuard mode against wireguard-go", () => {
  for (const initiator of ["wontun", "go"] as const) {
    for (const family of [4, 6] as const) {
      for (const psk of [false, true]) {
        test(`${initiator} initiates, IPv${family} underlay, ${psk ? "with" : "no"} PSK: ping both ways, IPv4 and IPv6 inside`, async () => {
          const s = await wontunAndGo({ initiator, family, psk });
          const [first, other] = initiator === "wontun" ? [s.wontunHost, s.goHost] : [s.goHost, s.wontunHost];
          const firstTarget = initiator === "wontun" ? "10.30.0.2" : "10.30.0.1";
          await waitForPing(first, firstTarget);
          expect(await ping(other, initiator === "wontun" ? "10.30.0.1" : "10.30.0.2", 2)).toBe(true);
          expect(await ping(s.wontunHost, "fd30::2", 2)).toBe(true);
          expect(await ping(s.goHost, "fd30::1", 2)).toBe(true);
        });
      }
    }
  }

  for (const initiator of ["wontun", "go"] as const) {
    test(`${initiator} initiates: 20 MB each way arrive intact (sha256)`, async () => {
      const s = await wontunAndGo({ initiator, family: 4, psk: initiator === "go" });
      await waitForPing(initiator === "wontun" ? s.wontunHost : s.goHost, initiator === "wontun" ? "10.30.0.2" : "10.30.0.1");
      const up = await transfer(s.wontunHost, s.goHost, "10.30.0.2", 20, 9001);
      expect(up.received).toBe(up.sent);
      const down = await transfer(s.goHost, s.wontunHost, "10.30.0.1", 20, 9002);
      expect(down.received).toBe(down.sent);
      const v6 = await transfer(s.goHost, s.wontunHost, "fd30::1", 5, 9003);
      expect(v6.received).toBe(v6.sent);
    });
  }

  test("roaming: the wontun host moves to another underlay address mid-transfer; traffic continues", async () => {
    const s = await wontunAndGo({ initiator: "wontun", family: 4, psk: false });
    await waitForPing(s.wontunHost, "10.30.0.2");
    const moving = transfer(s.wontunHost, s.goHost, "10.30.0.2", 40, 9004);
    await Bun.sleep(150);
    // Move: new address first, then the old one goes (as DHCP renumbering would). Without
    // promote_secondaries, deleting the primary address would take the new one with it.
    await s.wontunHost.run(["sysctl", "-qw", `net.ipv4.conf.${s.wontunIf}.promote_secondaries=1`]);
    await s.wontunHost.ip(`addr add 192.0.2.9/24 dev ${s.wontunIf}`);
    await s.wontunHost.ip(`addr del 192.0.2.1/24 dev ${s.wontunIf}`);
    const result = await moving;
    expect(result.received).toBe(result.sent);
    await waitForPing(s.goHost, "10.30.0.1");
    const shown = await s.goHost.run(["wg", "show", wgGoInterface(s.lab, "g"), "endpoints"]);
    expect(shown.stdout).toContain("192.0.2.9:51820");
  });

  // A handshake needs its initiation and its response through: at 40% loss each way one attempt
  // (every 5 s + jitter) succeeds with p = 0.36, so 16 attempts in 80 s all fail with p < 0.1%.
  // (At 50% that was ~1%: seen once in CI-like runs, with nothing wrong.)
  test("40% datagram loss both ways: the handshake completes by retrying", async () => {
    const s = await wontunAndGo({ initiator: "wontun", family: 4, psk: false });
    await netem(s.wontunHost, s.wontunIf, "loss 40%");
    await netem(s.goHost, s.goIf, "loss 40%");
    await waitForPing(s.wontunHost, "10.30.0.2", 80_000);
  }, 100_000);
});

describe.skipIf(!canRunIntegration)("WireGuard mode between wontun hosts", () => {
  test("two wontun hosts talk; a third host with a wrong key gets no packet through and no response", async () => {
    const lab = await env.lab("wg-wontun");
    const dir = env.dir();
    const a = await lab.host("a");
    const b = await lab.host("b");
    const m = await lab.host("m");
    await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
    const { bIf: mIf } = await lab.link(a, "198.51.100.1/24", m, "198.51.100.3/24");
    const ka = newKeys(), kb = newKeys(), km = newKeys(), impostor = newKeys();
    // a knows b and m's *real* key; m uses another key, as a stolen config with a wrong key would.
    await startWontun(a, dir.write("wga.conf", wgQuickConfig({
      keys: ka, addresses: ["10.40.0.1/24"], listenPort: 51820,
      peers: [
        { publicKey: kb.publicKey, allowedIps: ["10.40.0.2/32"] },
        { publicKey: km.publicKey, allowedIps: ["10.40.0.3/32"] },
      ],
    })));
    await startWontun(b, dir.write("wgb.conf", wgQuickConfig({
      keys: kb, addresses: ["10.40.0.2/24"], listenPort: 51820,
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.40.0.0/24"], endpoint: "192.0.2.1:51820" }],
    })));
    const capture = m.spawn(["tcpdump", "-n", "-l", "-i", mIf, "udp and src host 198.51.100.1"]);
    const mw = await startWontun(m, dir.write("wgm.conf", wgQuickConfig({
      keys: impostor, addresses: ["10.40.0.3/24"], listenPort: 51820,
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.40.0.0/24"], endpoint: "198.51.100.1:51820" }],
    })));
    await waitForPing(b, "10.40.0.1");
    expect(await ping(a, "10.40.0.2", 2)).toBe(true);
    expect(await ping(m, "10.40.0.1", 3)).toBe(false);
    expect(await ping(a, "10.40.0.3", 1)).toBe(false);
    await Bun.sleep(1000);
    capture.kill("SIGINT");
    await capture.exited;
    expect(mw.output()).toContain("handshake initiation sent");
    expect(capture.output()).not.toMatch(/198\.51\.100\.1\.51820 > /);
  }, 60_000);
});
