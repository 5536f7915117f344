import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { toIni, toJson, toToml } from "../../src/config/dump.ts";
import { interfaceNameFromPath, type LoadOptions, loadConfig, parseConfigText } from "../../src/config/load.ts";
import { type Config, ConfigError, peerLabel } from "../../src/config/model.ts";
import { decodeKey } from "../../src/crypto/keys.ts";
import type { ConfigFormat } from "../../src/config/validate.ts";
import { parseCidr } from "../../src/net/ip.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/config");
const fixture = (name: string) => join(FIXTURES, name);

const SEED_JSON =
  '{"interface":{"name":"client-A","address":["10.10.0.3",24],"listen_port":19988},' +
  '"peers":[{"name":"server","endpoint":"172.18.0.2:19988","allowed_ips":[["10.10.0.0",24]]}]}';

/** Text from lines, so that line numbers in the tests can be counted easily. */
const lines = (...l: string[]) => `${l.join("\n")}\n`;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError, none was thrown");
}

/** Asserts the error is located at file:line and key, and its reason mentions `reason`. */
function expectError(
  text: string,
  format: ConfigFormat,
  line: number | null,
  key: string | null,
  reason: string,
): ConfigError {
  const file = format === "toml" ? "t.toml" : "t.conf";
  const err = errorOf(() => parseConfigText(text, file, format));
  const where = line === null ? file : `${file}:${line}`;
  expect(err.file).toBe(file);
  expect(err.line).toBe(line);
  expect(err.key).toBe(key);
  expect(err.message).toBe(`${where}: ${key === null ? "" : `${key}: `}${err.reason}`);
  expect(err.reason).toContain(reason);
  return err;
}

const IFACE = ["[Interface]", "Name = a", "Address = 10.0.0.1/24"];
const TIFACE = ["[interface]", 'name = "a"', 'address = "10.0.0.1/24"'];

describe("good configs", () => {
  test("the seed's example prints exactly the original wontun-conf JSON", () => {
    const config = loadConfig(fixture("seed.conf"));
    expect(toJson(config, false)).toBe(SEED_JSON);
    expect(toJson(config, true)).toBe(JSON.stringify(JSON.parse(SEED_JSON), null, 2));
  });

  test("the TOML version of the seed is the same config", () => {
    expect(toJson(loadConfig(fixture("seed.toml")), false)).toBe(SEED_JSON);
    expect(loadConfig(fixture("seed.toml"))).toEqual(loadConfig(fixture("seed.conf")));
  });

  test("defaults", () => {
    const config = parseConfigText(lines(...IFACE, "[Peer]", "Name = b"), "t.conf", "ini");
    expect(config.interface.listenPort).toBe(19988);
    expect(config.interface.mtu).toBe(1400);
    expect(config.interface.fwmark).toBe(0);
    expect(config.peers[0]).toEqual({
      name: "b", endpoint: null, allowedIps: [], persistentKeepalive: 0, publicKey: null, presharedKey: null,
    });
    expect(config.mode).toBe("wontun");
    expect(config.interface.privateKey).toBeNull();
    expect(config.warnings).toEqual([]);
  });

  test("every key, case-insensitive keys, comments, accumulating lists", () => {
    const config = loadConfig(fixture("full.conf"));
    const cidr = (text: string, keep = false) => parseCidr(text, keep);
    const noKeys = { publicKey: null, presharedKey: null };
    expect(config).toEqual({
      mode: "wontun",
      interface: {
        name: "host-1",
        addresses: [cidr("10.20.0.1/16", true), cidr("fd20::1/64", true), cidr("192.168.77.5/32", true)],
        listenPort: 51000,
        mtu: 1420,
        mtuSet: true,
        fwmark: 0x1f,
        privateKey: null,
      },
      peers: [
        {
          name: "alpha",
          endpoint: { host: "fd00::2", port: 51820 },
          allowedIps: [cidr("10.20.1.0/24"), cidr("fd20:1::/48"), cidr("10.99.0.7/32")],
          persistentKeepalive: 25,
          ...noKeys,
        },
        {
          name: "beta",
          endpoint: { host: "vpn.example.com", port: 19988 },
          allowedIps: [cidr("0.0.0.0/0")],
          persistentKeepalive: 0,
          ...noKeys,
        },
        { name: "gamma", endpoint: null, allowedIps: [], persistentKeepalive: 0, ...noKeys },
      ],
      warnings: [],
    } as Config);
    expect(loadConfig(fixture("full.toml"))).toEqual(config);
  });

  test("JSON of a config with several addresses and non-default values", () => {
    expect(JSON.parse(toJson(loadConfig(fixture("full.conf")), false))).toEqual({
      interface: {
        name: "host-1",
        address: [["10.20.0.1", 16], ["fd20::1", 64], ["192.168.77.5", 32]],
        listen_port: 51000,
        mtu: 1420,
        fwmark: 31,
      },
      peers: [
        {
          name: "alpha",
          endpoint: "[fd00::2]:51820",
          allowed_ips: [["10.20.1.0", 24], ["fd20:1::", 48], ["10.99.0.7", 32]],
          persistent_keepalive: 25,
        },
        { name: "beta", endpoint: "vpn.example.com:19988", allowed_ips: [["0.0.0.0", 0]] },
        { name: "gamma", endpoint: null, allowed_ips: [] },
      ],
    });
    // Extra keys come after the original ones.
    const text = toJson(loadConfig(fixture("full.conf")), false);
    expect(text.indexOf('"listen_port"')).toBeLessThan(text.indexOf('"mtu"'));
  });

  test("FwMark forms, keepalive off, whitespace, CRLF, BOM", () => {
    const text = "\uFEFF[Interface]\r\nName=a\r\nAddress =10.0.0.1/24\r\nFwMark= off\r\n[Peer]\r\n" +
      "  Name   =   b  \r\nPersistentKeepalive=off\r\n";
    const config = parseConfigText(text, "t.conf", "ini");
    expect(config.interface.fwmark).toBe(0);
    expect(config.peers[0].name).toBe("b");
    expect(config.peers[0].persistentKeepalive).toBe(0);
    expect(parseConfigText(lines(...IFACE, "FwMark = 4660"), "t.conf", "ini").interface.fwmark).toBe(0x1234);
    expect(parseConfigText(lines(...IFACE, "FwMark = 0xFFFFFFFF"), "t.conf", "ini").interface.fwmark)
      .toBe(0xffffffff);
  });

  test("identical networks within one list are kept once", () => {
    const config = parseConfigText(
      lines(...IFACE, "[Peer]", "Name = b", "AllowedIPs = 10.1.0.0/24, 10.1.0.5/24"), "t.conf", "ini");
    expect(toJson(config, false)).toContain('"allowed_ips":[["10.1.0.0",24]]');
  });
});

describe("round trips", () => {
  for (const name of ["seed.conf", "full.conf", "full.toml"]) {
    test(`${name}: ini → toml → ini`, () => {
      const original = loadConfig(fixture(name));
      const viaToml = parseConfigText(toToml(original), "rt.toml", "toml");
      expect(viaToml).toEqual(original);
      const viaIni = parseConfigText(toIni(viaToml), "rt.conf", "ini");
      expect(viaIni).toEqual(original);
      expect(toIni(viaIni)).toBe(toIni(original));
      expect(toJson(viaIni, true)).toBe(toJson(original, true));
    });
  }

  test("printed ini of the seed", () => {
    expect(toIni(loadConfig(fixture("seed.conf")))).toBe(lines(
      "[Interface]", "Name = client-A", "Address = 10.10.0.3/24", "ListenPort = 19988", "",
      "[Peer]", "Name = server", "Endpoint = 172.18.0.2:19988", "AllowedIPs = 10.10.0.0/24",
    ));
  });

  test("names with quotes and non-ASCII survive TOML", () => {
    const text = lines("[interface]", 'name = "hôte \\"1\\""', 'address = "fd00::1/64"', "mtu = 1280",
      "[[peers]]", "name = 'ünï'", 'endpoint = "[::1]:5"');
    const config = parseConfigText(text, "t.toml", "toml");
    expect(config.interface.name).toBe('hôte "1"');
    expect(parseConfigText(toToml(config), "t.toml", "toml")).toEqual(config);
    expect(parseConfigText(toIni(config), "t.conf", "ini")).toEqual(config);
  });
});

describe("files", () => {
  test("interface name is the file stem", () => {
    expect(interfaceNameFromPath("/etc/wontun/tun0.conf")).toBe("tun0");
    expect(interfaceNameFromPath("wg-home.toml")).toBe("wg-home");
    expect(interfaceNameFromPath("/x/plain")).toBe("plain");
  });

  test("unknown extension", () => {
    const err = errorOf(() => loadConfig("/tmp/x.yaml"));
    expect(err.message).toBe("/tmp/x.yaml: unknown config format, use .conf, .ini or .toml");
  });

  test("missing file", () => {
    const path = fixture("does-not-exist.conf");
    const err = errorOf(() => loadConfig(path));
    expect(err.message).toBe(`${path}: cannot read: ENOENT: no such file or directory`);
  });

  test("errors name the file and line", () => {
    expect(errorOf(() => loadConfig(fixture("bad-port.conf"))).message)
      .toBe(`${fixture("bad-port.conf")}:4: ListenPort: expected an integer 1-65535, got 70000`);
    expect(errorOf(() => loadConfig(fixture("bad-second-peer.toml"))).message).toBe(
      `${fixture("bad-second-peer.toml")}:11: persistent_keepalive: expected an integer 0-65535 or "off", got 70000`);
    expect(errorOf(() => loadConfig(fixture("dup-allowed.conf"))).message)
      .toBe(`${fixture("dup-allowed.conf")}:12: AllowedIPs: 10.0.0.0/24 is already allowed for peer b`);
  });
});

describe("ini errors", () => {
  test("missing [Interface]", () => {
    expectError(lines("[Peer]", "Name = b"), "ini", null, null, "missing [Interface] section");
    expectError("", "ini", null, null, "missing [Interface] section");
  });
  test("[Interface] twice", () => {
    expectError(lines(...IFACE, "[Interface]"), "ini", 4, null, "[Interface] appears twice (first on line 1)");
  });
  test("interface Name required", () => {
    expectError(lines("# c", "[Interface]", "Address = 10.0.0.1/24"), "ini", 2, "Name", "needs a Name");
  });
  test("interface Name too long", () => {
    expectError(lines("[Interface]", `Name = ${"é".repeat(51)}`), "ini", 2, "Name",
      "name is 102 bytes long, at most 100 bytes");
    // Exactly 100 bytes is fine.
    parseConfigText(lines("[Interface]", `Name = ${"x".repeat(100)}`, "Address = 10.0.0.1/24"), "t.conf", "ini");
  });
  test("peer Name required", () => {
    expectError(lines(...IFACE, "", "[Peer]", "AllowedIPs = 10.1.0.0/24"), "ini", 5, "Name", "[Peer] needs a Name");
  });
  test("peer Name too long", () => {
    expectError(lines(...IFACE, "[Peer]", `Name = ${"p".repeat(101)}`), "ini", 5, "Name", "101 bytes long");
  });
  test("duplicate peer names", () => {
    expectError(lines(...IFACE, "[Peer]", "Name = b", "[Peer]", "name = b"), "ini", 7, "name",
      'duplicate peer name "b" (first used on line 5)');
  });
  test("peer named like the interface", () => {
    expectError(lines(...IFACE, "[Peer]", "Name = a"), "ini", 5, "Name",
      'peer "a" has the same name as the interface');
  });
  test("Address required", () => {
    expectError(lines("[Interface]", "Name = a", "ListenPort = 1"), "ini", 1, "Address", "at least one Address");
  });
  test("bad CIDR in Address", () => {
    expectError(lines("[Interface]", "Name = a", "Address = 10.0.0.300/24"), "ini", 3, "Address",
      'bad address/prefix "10.0.0.300/24": "10.0.0.300" is not an IPv4 or IPv6 address');
  });
  test("bad CIDR in an accumulated AllowedIPs line", () => {
    expectError(lines(...IFACE, "[Peer]", "Name = b", "AllowedIPs = 10.1.0.0/24", "AllowedIPs = 10.2.0.0/33"),
      "ini", 7, "AllowedIPs", '"33" is not a prefix length (0-32)');
  });
  test("bad ListenPort", () => {
    expectError(lines(...IFACE, "ListenPort = 0"), "ini", 4, "ListenPort", "expected an integer 1-65535, got 0");
    expectError(lines(...IFACE, "ListenPort = x1"), "ini", 4, "ListenPort", 'expected an integer 1-65535, got "x1"');
  });
  test("bad Endpoint", () => {
    const peer = (ep: string) => lines(...IFACE, "[Peer]", "Name = b", `Endpoint = ${ep}`);
    expectError(peer("10.0.0.2"), "ini", 6, "Endpoint", "has no port");
    expectError(peer("10.0.0.2:99999"), "ini", 6, "Endpoint", '"99999" is not a port (1-65535)');
    expectError(peer("fd00::2:51820"), "ini", 6, "Endpoint", "an IPv6 endpoint is written [address]:port");
    expectError(peer("[nope]:51820"), "ini", 6, "Endpoint", '"nope" is not an IPv6 address');
    expectError(peer("10.0.0.256:1"), "ini", 6, "Endpoint", '"10.0.0.256" is not an IPv4 address');
    expectError(peer("bad_host!:1"), "ini", 6, "Endpoint", "neither an IP address nor a host name");
  });
  test("MTU range", () => {
    expectError(lines(...IFACE, "MTU = 500"), "ini", 4, "MTU", "expected an integer 576-9000, got 500");
    expectError(lines(...IFACE, "MTU = 9001"), "ini", 4, "MTU", "expected an integer 576-9000, got 9001");
  });
  test("MTU below 1280 with an IPv6 address", () => {
    expectError(lines("[Interface]", "Name = a", "Address = 10.0.0.1/24, fd00::1/64", "MTU = 1200"),
      "ini", 4, "MTU", "MTU 1200 is too small for IPv6 (address fd00::1/64): IPv6 needs at least 1280");
    // The default MTU (1400) is fine for IPv6.
    parseConfigText(lines("[Interface]", "Name = a", "Address = fd00::1/64"), "t.conf", "ini");
  });
  test("bad FwMark and PersistentKeepalive", () => {
    expectError(lines(...IFACE, "FwMark = 0x1ffffffff"), "ini", 4, "FwMark", "expected an integer 0-4294967295");
    expectError(lines(...IFACE, "FwMark = on"), "ini", 4, "FwMark", 'or "off", got "on"');
    expectError(lines(...IFACE, "[Peer]", "Name = b", "PersistentKeepalive = 65536"), "ini", 6,
      "PersistentKeepalive", 'expected an integer 0-65535 or "off", got 65536');
  });
  test("duplicate key", () => {
    expectError(lines(...IFACE, "ListenPort = 1", "listenport = 2"), "ini", 5, "listenport",
      "duplicate key (already set on line 4)");
    expectError(lines(...IFACE, "Name = z"), "ini", 4, "Name", "duplicate key (already set on line 2)");
  });
  test("key outside a section", () => {
    expectError(lines("# top", "Name = a", ...IFACE), "ini", 2, "Name", "key outside a section");
  });
  test("malformed line", () => {
    expectError(lines(...IFACE, "ListenPort 1"), "ini", 4, null, 'malformed line "ListenPort 1"');
    expectError(lines(...IFACE, "= 1"), "ini", 4, null, "no key before '='");
    expectError(lines(...IFACE, "[Peer"), "ini", 4, null, 'malformed section header "[Peer"');
  });
  test("unknown section", () => {
    expectError(lines(...IFACE, "[Peers]"), "ini", 4, null, "unknown section [Peers] (expected [Interface] or [Peer])");
  });
  test("unknown key, and a key in the wrong section", () => {
    expectError(lines(...IFACE, "PrivateKeys = abc"), "ini", 4, "PrivateKeys", "unknown key in [Interface]");
    expectError(lines(...IFACE, "PublicKey = abc"), "ini", 4, "PublicKey", "PublicKey belongs in [Peer]");
    expectError(lines(...IFACE, "listen_port = 1"), "ini", 4, "listen_port", "(did you mean ListenPort?)");
    expectError(lines(...IFACE, "Endpoint = 1.2.3.4:5"), "ini", 4, "Endpoint", "Endpoint belongs in [Peer]");
  });
  test("empty value", () => {
    expectError(lines("[Interface]", "Name =", "Address = 10.0.0.1/24"), "ini", 2, "Name", "empty value");
    expectError(lines(...IFACE, "[Peer]", "Name = b", "AllowedIPs = # none"), "ini", 6, "AllowedIPs", "empty value");
    expectError(lines(...IFACE, "[Peer]", "Name = b", "AllowedIPs = 10.1.0.0/24,,"), "ini", 6, "AllowedIPs",
      "empty item in the list");
  });
  test("the same AllowedIPs for two peers", () => {
    expectError(lines(...IFACE, "[Peer]", "Name = b", "AllowedIPs = 10.1.0.0/24", "[Peer]", "Name = c",
      "AllowedIPs = 10.2.0.0/24, 10.1.0.1/24"), "ini", 9, "AllowedIPs", "10.1.0.0/24 is already allowed for peer b");
  });
});

describe("toml errors", () => {
  test("syntax error carries smol-toml's line", () => {
    expectError(lines(...TIFACE, "listen_port = = 1"), "toml", 4, "listen_port", "invalid TOML:");
    expectError(lines("[interface", 'name = "a"'), "toml", 1, null, "invalid TOML:");
  });
  test("duplicate key", () => {
    expectError(lines(...TIFACE, 'name = "b"'), "toml", 4, "name", "invalid TOML:");
  });
  test("type errors", () => {
    expectError(lines(...TIFACE, 'listen_port = "19988"'), "toml", 4, "listen_port",
      "expected an integer 1-65535, got string");
    expectError(lines(...TIFACE, "mtu = 1400.0"), "toml", 4, "mtu", "expected an integer 576-9000, got float");
    expectError(lines("[interface]", "name = 7", 'address = "10.0.0.1/24"'), "toml", 2, "name",
      "expected a string, got integer");
    expectError(lines("[interface]", 'name = "a"', "address = [", '  "10.0.0.1/24",', "  5,", "]"), "toml", 3,
      "address", "expected a string or an array of strings, got integer");
    expectError(lines(...TIFACE, "[[peers]]", 'name = "b"', "allowed_ips = true"), "toml", 6, "allowed_ips",
      "expected a string or an array of strings, got boolean");
  });
  test("bad CIDR inside a multi-line array is located at its line", () => {
    expectError(lines("[interface]", 'name = "a"', "address = [", '  "10.0.0.1/24",', '  "fd00::1/129",', "]"),
      "toml", 5, "address", '"129" is not a prefix length (0-128)');
  });
  test("missing [interface]", () => {
    expectError(lines("[[peers]]", 'name = "b"'), "toml", null, null, "missing [interface] section");
  });
  test("interface name required", () => {
    expectError(lines("", "[interface]", 'address = "10.0.0.1/24"'), "toml", 2, "name", "[interface] needs a Name");
  });
  test("address required (an empty array is not enough)", () => {
    expectError(lines("[interface]", 'name = "a"', "address = []"), "toml", 3, "address", "at least one Address");
  });
  test("shape: [peers] as a table, [[interface]], unknown tables", () => {
    expectError(lines(...TIFACE, "[peers]", 'name = "b"'), "toml", 4, "peers",
      "expected an array of tables [[peers]], got table");
    expectError(lines("[[interface]]", 'name = "a"'), "toml", 1, "interface", "expected a table [interface], got array");
    expectError(lines(...TIFACE, "[peer]", 'name = "b"'), "toml", 4, "peer", "peers are written [[peers]]");
    expectError(lines(...TIFACE, "peers = [{ name = 'b' }]"), "toml", 4, "peers", "unknown key in [interface] (write each");
  });
  test("unknown key in the second [[peers]]", () => {
    expectError(lines(...TIFACE, "[[peers]]", 'name = "b"', "[[peers]]", 'name = "c"', "PersistentKeepalive = 5"),
      "toml", 8, "PersistentKeepalive", "unknown key in [[peers]] (did you mean persistent_keepalive?)");
  });
  test("duplicate peer name located in the second [[peers]]", () => {
    expectError(lines(...TIFACE, "", "[[peers]]", 'name = "b"', "", "[[peers]]", "  name = 'b'"), "toml", 9, "name",
      'duplicate peer name "b" (first used on line 6)');
  });
  test("empty name and forbidden characters", () => {
    expectError(lines("[interface]", 'name = ""', 'address = "10.0.0.1/24"'), "toml", 2, "name", "empty value");
    expectError(lines("[interface]", 'name = "a#1"'), "toml", 2, "name", "must not contain '#'");
    expectError(lines("[interface]", 'name = "a\\u0000"'), "toml", 2, "name", "control characters");
    expectError(lines("[interface]", 'name = " a"'), "toml", 2, "name", "whitespace");
  });
  test("the same allowed_ips for two peers, in a multi-line array", () => {
    expectError(lines(...TIFACE, "[[peers]]", 'name = "b"', 'allowed_ips = ["fd01::/64"]', "[[peers]]",
      'name = "c"', "allowed_ips = [", '  "10.9.0.0/16",', '  "fd01::1/64",', "]"), "toml", 11, "allowed_ips",
      "fd01::/64 is already allowed for peer b");
  });
  test("endpoint must be host:port", () => {
    expectError(lines(...TIFACE, "[[peers]]", 'name = "b"', "endpoint = 19988"), "toml", 6, "endpoint",
      "expected a string, got integer");
  });
});

// ---------------------------------------------------------------------------------------------
// WireGuard mode. The keys were made with `wg genkey`, `wg pubkey` and `wg genpsk`.

const KEYS = {
  serverPrivate: "gJnJwhUM+UFTfh+bSADsxHKfFOxLZj4+Wqg7aWPlBHc=",
  serverPublic: "6NaISLXHYLiQk6rJUDRWpZKubW4VIm9yLxM2TqJELXc=",
  laptopPrivate: "MLFVghLrW7BXmNxm6dUiRMZBORcmM0Yg+GSZ1UwQans=",
  laptopPublic: "msJ7rBuJBwFmE9FoW41utBg9mVINU1Uy0L5BS/8QxzQ=",
  officePublic: "oNnvT8kN6olS9TWMcgOTKJH73shIpK73POFf8mPvuCw=",
  thirdPublic: "ZjWk3/sm+3sFGs2/bFPxBtwM9lyEEpG64HSwmnFry2Q=",
  psk: "07Bu6t4iLjkwkNbnlYFTQ6cnOro+zaSSumqGSy78y98=",
};
const WG = { wireguard: true } satisfies LoadOptions;
const key = (text: string) => decodeKey(text) as Uint8Array;
const wgIni = (text: string) => parseConfigText(text, "wg0.conf", "ini", WG);
const wgToml = (text: string) => parseConfigText(text, "wg0.toml", "toml", WG);
const withoutWarnings = (config: Config): Config => ({ ...config, warnings: [] });
/** Printed configs drop wg-quick's additions (as `wg showconf` does); SaveConfig adds them back. */
const withoutHost = (config: Config): Config => ({ ...config, interface: { ...config.interface, host: undefined } });

const WG_IFACE = ["[Interface]", `PrivateKey = ${KEYS.serverPrivate}`, "Address = 10.8.0.1/24"];
const WG_TIFACE = ["[interface]", `private_key = "${KEYS.serverPrivate}"`, 'address = "10.8.0.1/24"'];

describe("WireGuard mode: good configs", () => {
  test("a wg-quick server config loads unchanged, its wg-quick additions in interface.host", () => {
    const config = loadConfig(fixture("wg0.conf"), WG);
    const cidr = (text: string, keep = false) => parseCidr(text, keep);
    expect(config).toEqual({
      mode: "wireguard",
      interface: {
        name: "",
        addresses: [cidr("10.8.0.1/24", true), cidr("fd08::1/64", true)],
        listenPort: 51820,
        mtu: 1408,
        mtuSet: false,
        fwmark: 0,
        privateKey: key(KEYS.serverPrivate),
        host: {
          dns: ["10.8.0.53", "fd08::53"],
          dnsSearch: ["corp.example"],
          table: "auto",
          saveConfig: false,
          preUp: [],
          postUp: [
            "iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE",
            "ip6tables -A FORWARD -i %i -j ACCEPT",
          ],
          preDown: [],
          postDown: ["iptables -D FORWARD -i %i -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE"],
        },
      },
      peers: [
        {
          name: "",
          endpoint: null,
          allowedIps: [cidr("10.8.0.2/32"), cidr("fd08::2/128")],
          persistentKeepalive: 0,
          publicKey: key(KEYS.laptopPublic),
          presharedKey: key(KEYS.psk),
        },
        {
          name: "",
          endpoint: { host: "2001:db8::5", port: 51820 },
          allowedIps: [cidr("10.8.0.3/32"), cidr("192.168.50.0/24")],
          persistentKeepalive: 25,
          publicKey: key(KEYS.officePublic),
          presharedKey: null,
        },
        {
          name: "",
          endpoint: { host: "vpn.example.org", port: 51820 },
          allowedIps: [cidr("10.9.0.0/16")],
          persistentKeepalive: 0,
          publicKey: key(KEYS.thirdPublic),
          presharedKey: null,
        },
      ],
      // `wontun up` acts on all of them (src/host), so none is reported.
      warnings: [],
    } as Config);
  });

  test("the TOML version is the same config", () => {
    const toml = loadConfig(fixture("wg0.toml"), WG);
    expect(toml).toEqual(loadConfig(fixture("wg0.conf"), WG));
    expect(toml.warnings).toEqual([]);
  });

  test("JSON: the original shape plus base64 keys; the private key in full, as wg showconf prints it", () => {
    expect(JSON.parse(toJson(loadConfig(fixture("wg0.conf"), WG), false))).toEqual({
      interface: {
        name: null,
        address: [["10.8.0.1", 24], ["fd08::1", 64]],
        listen_port: 51820,
        private_key: KEYS.serverPrivate,
        public_key: KEYS.serverPublic, // what `wg pubkey` says for the private key
      },
      peers: [
        {
          name: null,
          endpoint: null,
          allowed_ips: [["10.8.0.2", 32], ["fd08::2", 128]],
          public_key: KEYS.laptopPublic,
          preshared_key: KEYS.psk,
        },
        {
          name: null,
          endpoint: "[2001:db8::5]:51820",
          allowed_ips: [["10.8.0.3", 32], ["192.168.50.0", 24]],
          public_key: KEYS.officePublic,
          persistent_keepalive: 25,
        },
        { name: null, endpoint: "vpn.example.org:51820", allowed_ips: [["10.9.0.0", 16]], public_key: KEYS.thirdPublic },
      ],
    });
    expect(JSON.parse(toJson(loadConfig(fixture("wg-client.conf"), WG), false)).interface).toEqual({
      name: "laptop",
      address: [["10.8.0.2", 32], ["fd08::2", 128]],
      listen_port: 0,
      private_key: KEYS.laptopPrivate,
      public_key: KEYS.laptopPublic,
      mtu: 1380,
      fwmark: 0xca6c,
    });
  });

  test("defaults: ListenPort 0 (the kernel picks a port, as wg does), MTU 1408 (whole ChaCha20 blocks), names optional", () => {
    const config = wgIni(lines(...WG_IFACE, "[Peer]", `PublicKey = ${KEYS.laptopPublic}`));
    expect(config.mode).toBe("wireguard");
    expect(config.interface.listenPort).toBe(0);
    expect(config.interface.mtu).toBe(1408);
    expect(config.interface.name).toBe("");
    expect(config.peers[0].name).toBe("");
    expect(config.peers[0].presharedKey).toBeNull();
    expect(config.warnings).toEqual([]);
    expect(wgIni(lines(...WG_IFACE, "ListenPort = 0")).interface.listenPort).toBe(0);
    // No peers at all is fine too (a server waiting for `wg set`-style additions later).
    expect(wgIni(lines(...WG_IFACE)).peers).toEqual([]);
  });

  test("peer labels: the name if set, else the public key's first 8 base64 characters", () => {
    const config = wgIni(lines(...WG_IFACE, "[Peer]", `PublicKey = ${KEYS.laptopPublic}`,
      "[Peer]", "Name = office", `PublicKey = ${KEYS.officePublic}`));
    expect(config.peers.map(peerLabel)).toEqual(["msJ7rBuJ…", "office"]);
    expect(peerLabel(loadConfig(fixture("seed.conf")).peers[0])).toBe("server");
  });

  test("wg-quick keys: every one is read into interface.host, in both modes and formats", () => {
    const text = lines("[Interface]", "Name = a", "Address = 10.0.0.1/24", "DNS = 1.1.1.1, fd00::53, corp.example",
      "Table = off", "SaveConfig = true", "PreUp = echo a, b", "PreUp = echo c", "PostUp = x", "PreDown = y", "PostDown = z");
    const ini = parseConfigText(text, "t.conf", "ini");
    expect(ini.warnings).toEqual([]);
    expect(ini.interface.host).toEqual({
      dns: ["1.1.1.1", "fd00::53"], dnsSearch: ["corp.example"], table: "off", saveConfig: true,
      preUp: ["echo a, b", "echo c"], postUp: ["x"], preDown: ["y"], postDown: ["z"],
    });
    const toml = lines(...TIFACE, "dns = '1.1.1.1'", "table = 1234", "save_config = true", "pre_up = ['a', 'b']",
      "post_up = 'x'", "pre_down = 'y'", "post_down = 'z'");
    const parsed = parseConfigText(toml, "t.toml", "toml");
    expect(parsed.warnings).toEqual([]);
    expect(parsed.interface.host).toEqual({
      dns: ["1.1.1.1"], dnsSearch: [], table: "1234", saveConfig: true,
      preUp: ["a", "b"], postUp: ["x"], preDown: ["y"], postDown: ["z"],
    });
    expect(() => parseConfigText(lines(...IFACE, "DNS = 1.2.3"), "t.conf", "ini")).toThrow("not an IP address");
  });
});

describe("WireGuard mode: round trips", () => {
  for (const name of ["wg0.conf", "wg0.toml", "wg-client.conf"]) {
    test(`${name}: ini → toml → ini (wg-quick-only keys are dropped, as wg showconf does)`, () => {
      const original = withoutHost(withoutWarnings(loadConfig(fixture(name), WG)));
      const viaToml = wgToml(toToml(original));
      expect(viaToml).toEqual(original);
      const viaIni = wgIni(toIni(viaToml));
      expect(viaIni).toEqual(original);
      expect(toIni(viaIni)).toBe(toIni(original));
      expect(toJson(viaIni, true)).toBe(toJson(original, true));
    });
  }

  test("printed ini is what wg-quick reads: keys in base64, no Name or ListenPort unless set", () => {
    expect(toIni(loadConfig(fixture("wg0.conf"), WG))).toBe(lines(
      "[Interface]", `PrivateKey = ${KEYS.serverPrivate}`, "Address = 10.8.0.1/24, fd08::1/64", "ListenPort = 51820",
      "", "[Peer]", `PublicKey = ${KEYS.laptopPublic}`, `PresharedKey = ${KEYS.psk}`,
      "AllowedIPs = 10.8.0.2/32, fd08::2/128",
      "", "[Peer]", `PublicKey = ${KEYS.officePublic}`, "Endpoint = [2001:db8::5]:51820",
      "AllowedIPs = 10.8.0.3/32, 192.168.50.0/24", "PersistentKeepalive = 25",
      "", "[Peer]", `PublicKey = ${KEYS.thirdPublic}`, "Endpoint = vpn.example.org:51820", "AllowedIPs = 10.9.0.0/16",
    ));
    expect(toToml(loadConfig(fixture("wg-client.conf"), WG))).toBe(lines(
      "[interface]", 'name = "laptop"', `private_key = "${KEYS.laptopPrivate}"`,
      'address = ["10.8.0.2/32", "fd08::2/128"]', "mtu = 1380", "fwmark = 0xca6c",
      "", "[[peers]]", 'name = "server"', `public_key = "${KEYS.serverPublic}"`, `preshared_key = "${KEYS.psk}"`,
      'endpoint = "wg.example.com:51820"', 'allowed_ips = ["0.0.0.0/0", "::/0"]', "persistent_keepalive = 25",
    ));
  });

  test("a wontun config's dumps are unchanged by the WireGuard additions", () => {
    expect(toJson(loadConfig(fixture("seed.conf")), false)).toBe(SEED_JSON);
    expect(toToml(loadConfig(fixture("seed.conf")))).not.toContain("key");
  });
});

describe("WireGuard mode: errors", () => {
  test("commands that cannot run WireGuard refuse a WireGuard config, at its PrivateKey", () => {
    expectError(lines("# wg", ...WG_IFACE), "ini", 3, "PrivateKey", "this is a WireGuard config");
    expect(errorOf(() => loadConfig(fixture("wg0.toml"))).message)
      .toStartWith(`${fixture("wg0.toml")}:3: private_key: this is a WireGuard config`);
  });

  test("PrivateKey on the interface, a peer without PublicKey", () => {
    expectError(lines(...WG_IFACE, "[Peer]", `PublicKey = ${KEYS.laptopPublic}`, "", "[Peer]", "Name = b",
      `PresharedKey = ${KEYS.psk}`), "ini", 7, "PublicKey", "PublicKey is required when [Interface] has PrivateKey");
    expectError(lines(...WG_TIFACE, "[[peers]]", 'allowed_ips = "10.1.0.0/24"'), "toml", 4, "public_key",
      "public_key is required when [interface] has private_key");
  });

  test("a peer key without PrivateKey on the interface, reported before missing names", () => {
    const reason = "PublicKey needs PrivateKey in [Interface]; without keys wontun runs its unencrypted protocol";
    expectError(lines("[Interface]", "Address = 10.0.0.1/24", "[Peer]", "AllowedIPs = 10.1.0.0/24",
      `PublicKey = ${KEYS.laptopPublic}`), "ini", 5, "PublicKey", reason);
    expectError(lines(...IFACE, "[Peer]", "Name = b", `presharedkey = ${KEYS.psk}`), "ini", 6, "presharedkey",
      "presharedkey needs PrivateKey in [Interface]; without keys");
    expectError(lines(...TIFACE, "[[peers]]", 'name = "b"', `public_key = "${KEYS.laptopPublic}"`), "toml", 6,
      "public_key", "public_key needs private_key in [interface]; without keys wontun runs its unencrypted protocol");
  });

  test("the same PublicKey on two peers", () => {
    expectError(lines(...WG_IFACE, "[Peer]", "Name = b", `PublicKey = ${KEYS.laptopPublic}`, "[Peer]",
      `PublicKey = ${KEYS.laptopPublic}`), "ini", 8, "PublicKey", "duplicate public key: peer b (line 6) has the same one");
    expectError(lines(...WG_TIFACE, "[[peers]]", `public_key = "${KEYS.laptopPublic}"`, "[[peers]]",
      `public_key = "${KEYS.laptopPublic}"`), "toml", 7, "public_key", "peer msJ7rBuJ… (line 5) has the same one");
  });

  test("a peer with the interface's own public key", () => {
    expectError(lines(...WG_IFACE, "[Peer]", `PublicKey = ${KEYS.serverPublic}`), "ini", 5, "PublicKey",
      "this is the interface's own public key (from its PrivateKey)");
  });

  test("bad keys: wrong length, bad base64, not 32 bytes; the reason never repeats the text", () => {
    const b64 = (n: number) => Buffer.alloc(n, 7).toString("base64");
    const bad = [
      KEYS.laptopPublic.slice(0, 43), // 43 characters
      `${KEYS.laptopPublic}A`, // 45 characters
      `${KEYS.laptopPublic.slice(0, 10)}!${KEYS.laptopPublic.slice(11)}`, // not base64
      b64(31), // 44 characters, 31 bytes
      b64(33), // 44 characters, 33 bytes
      "x",
    ];
    for (const text of bad) {
      expect(typeof decodeKey(text)).toBe("string");
      const reason = decodeKey(text) as string;
      const err = expectError(lines(...IFACE.slice(0, 1), `PrivateKey = ${text}`, "Address = 10.0.0.1/24"), "ini", 2,
        "PrivateKey", reason);
      expect(err.reason).toBe(reason);
      if (text.length > 8) expect(err.message).not.toContain(text);
      expectError(lines(...WG_IFACE, "[Peer]", `PublicKey = ${text}`), "ini", 5, "PublicKey", reason);
      expectError(lines(...WG_IFACE, "[Peer]", `PublicKey = ${KEYS.laptopPublic}`, `PresharedKey = ${text}`), "ini", 6,
        "PresharedKey", reason);
      expectError(lines(...WG_TIFACE, "[[peers]]", `public_key = "${text}"`), "toml", 5, "public_key", reason);
    }
    expectError(lines("[interface]", "private_key = 5"), "toml", 2, "private_key", "expected a string, got integer");
    expectError(lines(...WG_IFACE, "[Peer]", "PublicKey ="), "ini", 5, "PublicKey", "empty value");
    expectError(lines(...WG_IFACE, "PrivateKey = x"), "ini", 4, "PrivateKey", "duplicate key (already set on line 2)");
  });

  test("bad values of wg-quick keys", () => {
    expectError(lines(...IFACE, "SaveConfig = yes"), "ini", 4, "SaveConfig", 'expected true or false, got "yes"');
    expectError(lines(...TIFACE, 'save_config = "true"'), "toml", 4, "save_config", "expected true or false, got string");
    expectError(lines(...IFACE, "Table = main table"), "ini", 4, "Table", "expected off, auto, or a routing table");
    expectError(lines(...IFACE, "DNS = 1.1.1.1,"), "ini", 4, "DNS", "empty item in the list");
    expectError(lines(...TIFACE, "post_up = 5"), "toml", 4, "post_up", "expected a string or an array of strings");
    expectError(lines(...IFACE, "Table = 1", "Table = 2"), "ini", 5, "Table", "duplicate key");
    expectError(lines(...IFACE, "PostUp = "), "ini", 4, "PostUp", "empty value");
    expectError(lines(...IFACE, "[Peer]", "Name = b", "DNS = 1.1.1.1"), "ini", 6, "DNS", "DNS belongs in [Interface]");
  });

  test("names, addresses and AllowedIPs are still checked in WireGuard mode", () => {
    const peer = (name: string, pub: string) => ["[Peer]", `Name = ${name}`, `PublicKey = ${pub}`];
    expectError(lines(...WG_IFACE, ...peer("b", KEYS.laptopPublic), ...peer("b", KEYS.officePublic)), "ini", 8,
      "Name", 'duplicate peer name "b" (first used on line 5)');
    expectError(lines("[Interface]", "Name = a", `PrivateKey = ${KEYS.serverPrivate}`, "Address = 10.0.0.1/24",
      ...peer("a", KEYS.laptopPublic)), "ini", 6, "Name", 'peer "a" has the same name as the interface');
    expectError(lines("[Interface]", `PrivateKey = ${KEYS.serverPrivate}`), "ini", 1, "Address", "at least one Address");
    expectError(lines(...WG_IFACE, "[Peer]", `PublicKey = ${KEYS.laptopPublic}`, "AllowedIPs = 10.1.0.0/24",
      "[Peer]", `PublicKey = ${KEYS.officePublic}`, "AllowedIPs = 10.1.0.0/24"), "ini", 9, "AllowedIPs",
      "10.1.0.0/24 is already allowed for peer msJ7rBuJ…");
    expectError(lines(...WG_IFACE, "ListenPort = 65536"), "ini", 4, "ListenPort", "expected an integer 0-65535");
  });
});
