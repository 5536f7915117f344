import { describe, expect, test } from "bun:test";
import { renderDump, renderShow, showJson, sortPeers } from "../../src/control/status-render.ts";
import { blankPeerStatus, type DeviceStatus, type PeerStatus } from "../../src/control/model.ts";
import { parseCidr, type Cidr } from "../../src/net/ip.ts";
import { parseEndpoint, type Endpoint } from "../../src/net/endpoint.ts";

const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const PRIV = "6EtabScXwQA6E7QxVwNT26ypFGzxUMX4V1aA/rpSAno=";
const PUB = "uFmW/sycfx/G0lcqdu2hHVm80gvo5UOxXOS9hajnWjM=";
const PEER1 = "WEAuaVuhdyscyTCXVfBDJR6nf9zxD75jmJzrfhkyE3Y=";
const PEER2 = "GIUVCT6VL18i6GXO8wEucvi18LWYrAMJ1drM47cPz1I=";
const PSK = "JSpjZ+1iMG0riW1THOxR1j9SHmdRJU61TqV+wYHBhEw=";
const NOW = 1_700_000_000;

function cidr(t: string): Cidr {
  return parseCidr(t) as Cidr;
}
function ep(t: string): Endpoint {
  return parseEndpoint(t) as Endpoint;
}
function peer(over: Partial<PeerStatus>): PeerStatus {
  return { ...blankPeerStatus(0), ...over };
}

const wg: DeviceStatus = {
  mode: "wireguard",
  interfaceName: "wg0",
  privateKey: b64(PRIV),
  publicKey: b64(PUB),
  name: "",
  listenPort: 51820,
  fwmark: 0xca6c,
  peers: [
    peer({ id: 1, publicKey: b64(PEER2), allowedIps: [], state: "no session" }),
    peer({
      id: 2,
      name: "laptop",
      publicKey: b64(PEER1),
      presharedKey: b64(PSK),
      endpoint: ep("[2001:db8::1]:51820"),
      allowedIps: [cidr("10.0.0.2/32"), cidr("fd00::/64")],
      lastHandshake: { sec: NOW - 65, nsec: 0 },
      rxBytes: 1260,
      txBytes: 4781506,
      persistentKeepalive: 25,
      state: "up",
    }),
  ],
  drops: { no_peer: 3, replay: 0, bad_mac: 1 },
};

const wontun: DeviceStatus = {
  mode: "wontun",
  interfaceName: "tun0",
  privateKey: null,
  publicKey: null,
  name: "client-A",
  listenPort: 19988,
  fwmark: 0,
  peers: [
    peer({
      id: 7,
      name: "server",
      endpoint: ep("192.0.2.1:19988"),
      allowedIps: [cidr("10.10.0.0/24")],
      lastHandshake: { sec: NOW - (366 * 86400 + 3600 + 1), nsec: 0 },
      rxBytes: 512,
      txBytes: 1024 ** 3 * 3,
      state: "Connected",
    }),
  ],
  drops: {},
};

describe("renderShow", () => {
  test("WireGuard device without color, as wg show prints it plus wontun lines", () => {
    expect(renderShow([wg], { color: false, now: NOW })).toBe(
      "interface: wg0\n" +
        `  public key: ${PUB}\n` +
        "  private key: (hidden)\n" +
        "  listening port: 51820\n" +
        "  fwmark: 0xca6c\n" +
        "  mode: wireguard\n" +
        "  dropped: 3 no peer, 1 bad mac\n" +
        "\n" +
        `peer: ${PEER1}\n` +
        "  name: laptop\n" +
        "  preshared key: (hidden)\n" +
        "  endpoint: [2001:db8::1]:51820\n" +
        "  allowed ips: 10.0.0.2/32, fd00::/64\n" +
        "  latest handshake: 1 minute, 5 seconds ago\n" +
        "  transfer: 1.23 KiB received, 4.56 MiB sent\n" +
        "  persistent keepalive: every 25 seconds\n" +
        "  state: up\n" +
        "\n" +
        `peer: ${PEER2}\n` +
        "  allowed ips: (none)\n" +
        "  state: no session\n",
    );
  });

  test("wontun device: peers by name, no keys, long times and sizes", () => {
    expect(renderShow([wontun], { color: false, now: NOW })).toBe(
      "interface: tun0\n" +
        "  listening port: 19988\n" +
        "  mode: wontun (plaintext)\n" +
        "  name: client-A\n" +
        "\n" +
        "peer: server\n" +
        "  endpoint: 192.0.2.1:19988\n" +
        "  allowed ips: 10.10.0.0/24\n" +
        "  latest handshake: 1 year, 1 day, 1 hour, 1 second ago\n" +
        "  transfer: 512 B received, 3.00 GiB sent\n" +
        "  state: Connected\n",
    );
  });

  test("several devices are separated by a blank line; a device without peers has no trailing blank", () => {
    const bare: DeviceStatus = { ...wontun, interfaceName: "tun1", name: "", peers: [] };
    expect(renderShow([bare, bare], { color: false, now: NOW })).toBe(
      "interface: tun1\n  listening port: 19988\n  mode: wontun (plaintext)\n\n" +
        "interface: tun1\n  listening port: 19988\n  mode: wontun (plaintext)\n",
    );
    expect(renderShow([], { color: false, now: NOW })).toBe("");
  });

  test("Now, a clock wound backward, TiB", () => {
    const at = (sec: number, tx = 0): DeviceStatus => ({
      ...wontun,
      peers: [peer({ name: "p", lastHandshake: { sec, nsec: 0 }, txBytes: tx, rxBytes: 1 })],
    });
    expect(renderShow([at(NOW)], { color: false, now: NOW })).toContain("  latest handshake: Now\n");
    expect(renderShow([at(NOW + 5)], { color: false, now: NOW })).toContain(
      "  latest handshake: (System clock wound backward; connection problems may ensue.)\n",
    );
    expect(renderShow([at(NOW, 5 * 1024 ** 4)], { color: false, now: NOW })).toContain(
      "  transfer: 1 B received, 5.00 TiB sent\n",
    );
    // %.2f rounds an exact tie to even: 1.125 KiB -> 1.12, 1.375 KiB -> 1.38.
    expect(renderShow([at(NOW, 1152)], { color: false, now: NOW })).toContain("1.12 KiB sent");
    expect(renderShow([at(NOW, 1408)], { color: false, now: NOW })).toContain("1.38 KiB sent");
  });

  test("color uses wg's escapes, and removing them gives the plain text", () => {
    const colored = renderShow([wg], { color: true, now: NOW });
    expect(colored.startsWith("\x1b[0m\x1b[32m\x1b[1minterface\x1b[0m: \x1b[32mwg0\x1b[0m\n")).toBe(true);
    expect(colored).toContain(`\x1b[33m\x1b[1mpeer\x1b[0m: \x1b[33m${PEER1}\x1b[0m\n`);
    expect(colored).toContain("  \x1b[1mallowed ips\x1b[0m: 10.0.0.2\x1b[36m/\x1b[0m32, fd00::\x1b[36m/\x1b[0m64\n");
    expect(colored).toContain("1 \x1b[36mminute\x1b[0m, 5 \x1b[36mseconds\x1b[0m ago");
    expect(colored.replace(/\x1b\[[0-9;]*m/g, "")).toBe(renderShow([wg], { color: false, now: NOW }));
    expect(renderShow([wg], { color: false, now: NOW })).not.toContain("\x1b");
  });
});

describe("sortPeers", () => {
  test("latest handshake first (nsec breaks ties), never last, otherwise stable", () => {
    const ps = [
      peer({ id: 1 }),
      peer({ id: 2, lastHandshake: { sec: 10, nsec: 0 } }),
      peer({ id: 3 }),
      peer({ id: 4, lastHandshake: { sec: 20, nsec: 0 } }),
      peer({ id: 5, lastHandshake: { sec: 10, nsec: 9 } }),
    ];
    expect(sortPeers(ps).map((p) => p.id)).toEqual([4, 5, 2, 1, 3]);
  });
});

describe("showJson", () => {
  test("schema version 1, exactly", () => {
    expect(showJson([wg, wontun], NOW)).toEqual({
      version: 1,
      interfaces: [
        {
          interface: "wg0",
          mode: "wireguard",
          name: null,
          publicKey: PUB,
          hasPrivateKey: true,
          listenPort: 51820,
          fwmark: 0xca6c,
          drops: { no_peer: 3, replay: 0, bad_mac: 1 },
          peers: [
            {
              publicKey: PEER2,
              name: null,
              hasPresharedKey: false,
              endpoint: null,
              allowedIps: [],
              latestHandshake: null,
              latestHandshakeAgo: null,
              rxBytes: 0,
              txBytes: 0,
              persistentKeepalive: 0,
              state: "no session",
            },
            {
              publicKey: PEER1,
              name: "laptop",
              hasPresharedKey: true,
              endpoint: "[2001:db8::1]:51820",
              allowedIps: ["10.0.0.2/32", "fd00::/64"],
              latestHandshake: NOW - 65,
              latestHandshakeAgo: 65,
              rxBytes: 1260,
              txBytes: 4781506,
              persistentKeepalive: 25,
              state: "up",
            },
          ],
        },
        {
          interface: "tun0",
          mode: "wontun",
          name: "client-A",
          publicKey: null,
          hasPrivateKey: false,
          listenPort: 19988,
          fwmark: 0,
          drops: {},
          peers: [
            {
              publicKey: null,
              name: "server",
              hasPresharedKey: false,
              endpoint: "192.0.2.1:19988",
              allowedIps: ["10.10.0.0/24"],
              latestHandshake: NOW - (366 * 86400 + 3600 + 1),
              latestHandshakeAgo: 366 * 86400 + 3600 + 1,
              rxBytes: 512,
              txBytes: 3 * 1024 ** 3,
              persistentKeepalive: 0,
              state: "Connected",
            },
          ],
        },
      ],
    });
  });

  test("no secret in the JSON text", () => {
    const text = JSON.stringify(showJson([wg], NOW));
    expect(text).not.toContain(PRIV);
    expect(text).not.toContain(PSK);
  });
});

describe("renderDump", () => {
  test("wg show all dump format", () => {
    expect(renderDump([wg, wontun], true)).toBe(
      `wg0\t${PRIV}\t${PUB}\t51820\t0xca6c\n` +
        `wg0\t${PEER2}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n` +
        `wg0\t${PEER1}\t${PSK}\t[2001:db8::1]:51820\t10.0.0.2/32,fd00::/64\t${NOW - 65}\t1260\t4781506\t25\n` +
        "tun0\t(none)\t(none)\t19988\toff\n" +
        `tun0\tserver\t(none)\t192.0.2.1:19988\t10.10.0.0/24\t${NOW - (366 * 86400 + 3600 + 1)}\t512\t${3 * 1024 ** 3}\toff\n`,
    );
  });
  test("one device, no interface column", () => {
    expect(renderDump([{ ...wontun, peers: [] }], false)).toBe("(none)\t(none)\t19988\toff\n");
  });
});
