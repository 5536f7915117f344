// Config files as control-plane changes: start-up takes the whole file, reload only the difference.
import { describe, expect, test } from "bun:test";
import { parseConfigText } from "../../src/config/load.ts";
import { changeFromConfig, reloadChange, type EndpointResolver } from "../../src/control/config-change.ts";
import { encodeKey } from "../../src/crypto/keys.ts";
import { formatCidr, parseIp } from "../../src/net/ip.ts";
import { formatEndpoint } from "../../src/net/endpoint.ts";

const PRIV_A = "qE9/xklX3tHhERzKZ3lh2niscH6cz2RkZwZ1PcvCbmc=";
const PRIV_B = "YEX6ExqMWPWCs6OKAFbTXEIaeSTBHFKR/nNDL1mIHWM=";
const PEER_1 = "mLP7oRfwIuoBgn2j3BCErqRjvynsyf3Bkj+qQN2UmVs=";
const PEER_2 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

const literal: EndpointResolver = (ep) => {
  const address = parseIp(ep.host);
  return address ? { address, port: ep.port } : null;
};

function wg(text: string) {
  return parseConfigText(text, "t.conf", "ini", { wireguard: true });
}

const base = `[Interface]
PrivateKey = ${PRIV_A}
ListenPort = 51820
Address = 10.0.0.100/24

[Peer]
PublicKey = ${PEER_1}
Endpoint = 192.0.2.1:51820
AllowedIPs = 10.0.0.1/32

[Peer]
PublicKey = ${PEER_2}
AllowedIPs = 10.0.0.2/32
PersistentKeepalive = 25
`;

describe("config as a change", () => {
  test("start-up: every peer with every setting, replacing whatever ran", () => {
    const change = changeFromConfig(wg(base), literal);
    expect(change.replacePeers).toBe(true);
    expect(change.listenPort).toBeUndefined(); // the device binds it when it opens
    expect(encodeKey(change.privateKey!)).toBe(PRIV_A);
    expect(change.peers.map((p) => encodeKey(p.publicKey!))).toEqual([PEER_1, PEER_2]);
    expect(formatEndpoint(change.peers[0].endpoint!)).toBe("192.0.2.1:51820");
    expect(change.peers[1].endpoint).toBeUndefined();
    expect(change.peers[1].persistentKeepalive).toBe(25);
    expect(change.peers.every((p) => p.replaceAllowedIps)).toBe(true);
  });

  test("reload of the same file changes no interface setting and sets no endpoint", () => {
    const change = reloadChange(wg(base), wg(base), literal);
    expect(change.privateKey).toBeUndefined();
    expect(change.listenPort).toBeUndefined();
    expect(change.fwmark).toBeUndefined();
    expect(change.peers.some((p) => p.endpoint !== undefined)).toBe(false);
  });

  test("reload: a removed peer is left out, a new one comes with its endpoint, a moved endpoint is set", () => {
    const next = base
      .replace(`PublicKey = ${PEER_2}\nAllowedIPs = 10.0.0.2/32`, `PublicKey = ${PEER_2}\nEndpoint = 198.51.100.9:4000\nAllowedIPs = 10.0.0.2/32, 10.9.0.0/16`)
      .replace("192.0.2.1:51820", "192.0.2.7:51820")
      .replace("ListenPort = 51820", "ListenPort = 51821\nFwMark = 0x10");
    const change = reloadChange(wg(base), wg(next), literal);
    expect(change.listenPort).toBe(51821);
    expect(change.fwmark).toBe(16);
    expect(formatEndpoint(change.peers[0].endpoint!)).toBe("192.0.2.7:51820");
    expect(formatEndpoint(change.peers[1].endpoint!)).toBe("198.51.100.9:4000");
    expect(change.peers[1].allowedIps.map(formatCidr)).toEqual(["10.0.0.2/32", "10.9.0.0/16"]);

    const fewer = reloadChange(wg(base), wg(base.slice(0, base.indexOf("[Peer]", base.indexOf("[Peer]") + 1))), literal);
    expect(fewer.replacePeers).toBe(true);
    expect(fewer.peers.map((p) => encodeKey(p.publicKey!))).toEqual([PEER_1]);
  });

  test("reload: a new private key is part of the change", () => {
    const change = reloadChange(wg(base), wg(base.replace(PRIV_A, PRIV_B)), literal);
    expect(encodeKey(change.privateKey!)).toBe(PRIV_B);
  });

  test("an endpoint that cannot be resolved is left out rather than guessed", () => {
    const text = base.replace("192.0.2.1:51820", "no-such-host.invalid:51820");
    const change = changeFromConfig(wg(text), literal);
    expect(change.peers[0].endpoint).toBeUndefined();
  });
});
