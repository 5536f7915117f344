import { describe, expect, test } from "bun:test";
import { answerSetRequest, parseSetRequest } from "../../src/control/uapi-set.ts";
import { formatGetResponse, formatStatusResponse, parseStatusResponse } from "../../src/control/uapi-get.ts";
import { parseRequestHead } from "../../src/control/uapi-request.ts";
import { errnoLine, keyToHex } from "../../src/control/uapi-values.ts";
import {
  ControlError,
  blankPeerStatus,
  UAPI_EINVAL,
  UAPI_EPROTO,
  type DeviceStatus,
  type PeerStatus,
} from "../../src/control/model.ts";
import { formatCidr, parseCidr, type Cidr } from "../../src/net/ip.ts";
import { parseEndpoint, type Endpoint } from "../../src/net/endpoint.ts";

const PRIV = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";
const PUB1 = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33";
const PUB2 = "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376";
const PSK = "188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52";
const ZERO = "0".repeat(64);

function hex(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, "hex"));
}
function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (typeof c === "string") throw new Error(c);
  return c;
}
function ep(text: string): Endpoint {
  const e = parseEndpoint(text);
  if (typeof e === "string") throw new Error(e);
  return e;
}
/** Runs parseSetRequest and returns the errno it throws (0 if it does not). */
function setErrno(body: string, mode: "wireguard" | "wontun" = "wireguard"): number {
  try {
    parseSetRequest(body, mode);
    return 0;
  } catch (e) {
    if (!(e instanceof ControlError)) throw e;
    return e.errno;
  }
}

describe("parseSetRequest, WireGuard dialect", () => {
  test("the xplatform example: interface keys, two peers", () => {
    const body = [
      `private_key=${PRIV}`,
      "listen_port=12912",
      "fwmark=0",
      "replace_peers=true",
      `public_key=${PUB1}`,
      `preshared_key=${PSK}`,
      "replace_allowed_ips=true",
      "allowed_ip=192.168.4.4/32",
      "protocol_version=1",
      "endpoint=[abcd:23::33%2]:51820".replace("%2", ""),
      "persistent_keepalive_interval=25",
      `public_key=${PUB2}`,
      "endpoint=182.122.22.19:3233",
      "persistent_keepalive_interval=111",
      "replace_allowed_ips=true",
      "allowed_ip=192.168.4.10/32",
      "allowed_ip=192.168.4.11/32",
      "allowed_ip=fd00::1:2:3/64",
      "",
    ].join("\n");
    const change = parseSetRequest(body, "wireguard");
    expect(change.privateKey).toEqual(hex(PRIV)); // already clamped
    expect(change.listenPort).toBe(12912);
    expect(change.fwmark).toBe(0);
    expect(change.replacePeers).toBe(true);
    expect(change.peers).toHaveLength(2);
    const [a, b] = change.peers;
    expect(a).toEqual({
      publicKey: hex(PUB1),
      name: "",
      remove: false,
      updateOnly: false,
      presharedKey: hex(PSK),
      endpoint: ep("[abcd:23::33]:51820"),
      persistentKeepalive: 25,
      replaceAllowedIps: true,
      allowedIps: [cidr("192.168.4.4/32")],
    });
    expect(b.publicKey).toEqual(hex(PUB2));
    expect(b.presharedKey).toBeUndefined();
    expect(b.endpoint).toEqual(ep("182.122.22.19:3233"));
    expect(b.persistentKeepalive).toBe(111);
    expect(b.allowedIps).toEqual([cidr("192.168.4.10/32"), cidr("192.168.4.11/32"), cidr("fd00::/64")]);
  });

  test("empty body, lone newline and a body without its final newline", () => {
    expect(parseSetRequest("", "wireguard")).toEqual({ replacePeers: false, peers: [] });
    expect(parseSetRequest("\n", "wireguard")).toEqual({ replacePeers: false, peers: [] });
    expect(parseSetRequest("listen_port=1", "wireguard")).toEqual({ replacePeers: false, peers: [], listenPort: 1 });
  });

  test("unchanged fields stay undefined", () => {
    const change = parseSetRequest(`public_key=${PUB1}\n`, "wireguard");
    expect(change.privateKey).toBeUndefined();
    expect(change.listenPort).toBeUndefined();
    expect(change.fwmark).toBeUndefined();
    const p = change.peers[0];
    expect(p.presharedKey).toBeUndefined();
    expect(p.endpoint).toBeUndefined();
    expect(p.persistentKeepalive).toBeUndefined();
    expect(p.allowedIps).toEqual([]);
  });

  test("all-zero private and preshared keys mean none (null)", () => {
    const change = parseSetRequest(`private_key=${ZERO}\npublic_key=${PUB1}\npreshared_key=${ZERO}\n`, "wireguard");
    expect(change.privateKey).toBeNull();
    expect(change.peers[0].presharedKey).toBeNull();
  });

  test("private key is clamped, uppercase hex accepted", () => {
    const change = parseSetRequest(`private_key=${"FF".repeat(32)}\n`, "wireguard");
    const k = change.privateKey!;
    expect(k[0]).toBe(0xf8);
    expect(k[31]).toBe(0x7f);
  });

  test("remove, update_only, ports at the edges, keepalive 0", () => {
    const change = parseSetRequest(
      `listen_port=65535\nfwmark=4294967295\npublic_key=${PUB1}\nremove=true\npublic_key=${PUB2}\nupdate_only=true\npersistent_keepalive_interval=0\n`,
      "wireguard",
    );
    expect(change.listenPort).toBe(65535);
    expect(change.fwmark).toBe(4294967295);
    expect(change.peers[0].remove).toBe(true);
    expect(change.peers[1].updateOnly).toBe(true);
    expect(change.peers[1].persistentKeepalive).toBe(0);
    expect(parseSetRequest("listen_port=0\n", "wireguard").listenPort).toBe(0);
    expect(parseSetRequest("listen_port=00080\n", "wireguard").listenPort).toBe(80);
  });

  test("host bits of allowed_ip are cleared", () => {
    const change = parseSetRequest(`public_key=${PUB1}\nallowed_ip=10.1.2.3/8\nallowed_ip=::1/0\n`, "wireguard");
    expect(change.peers[0].allowedIps).toEqual([cidr("10.0.0.0/8"), cidr("::/0")]);
  });

  test("replace_allowed_ips drops prefixes named before it (as wireguard-go clears at that line)", () => {
    const change = parseSetRequest(
      `public_key=${PUB1}\nallowed_ip=10.0.0.0/8\nreplace_allowed_ips=true\nallowed_ip=10.9.0.0/16\n`,
      "wireguard",
    );
    expect(change.peers[0].replaceAllowedIps).toBe(true);
    expect(change.peers[0].allowedIps).toEqual([cidr("10.9.0.0/16")]);
  });

  test("allowed_ip=-PREFIX takes a prefix away; lines apply in order", () => {
    const c = parseSetRequest(`public_key=${PUB1}\nallowed_ip=10.1.0.0/16\nallowed_ip=-10.2.0.0/16\nallowed_ip=-10.1.0.0/16\nallowed_ip=10.2.0.0/16\n`, "wireguard");
    expect(c.peers[0].allowedIps.map(formatCidr)).toEqual(["10.2.0.0/16"]);
    expect(c.peers[0].removeAllowedIps!.map(formatCidr)).toEqual(["10.1.0.0/16"]);
  });

  test("the same peer twice gives two changes, in order", () => {
    const change = parseSetRequest(`public_key=${PUB1}\nallowed_ip=10.0.0.1/32\npublic_key=${PUB1}\nremove=true\n`, "wireguard");
    expect(change.peers.map((p) => p.remove)).toEqual([false, true]);
  });

  const invalid: [string, string, number][] = [
    ["a line without =", "listen_port\n", UAPI_EPROTO],
    ["a blank line inside the body", "listen_port=1\n\nfwmark=1\n", UAPI_EPROTO],
    ["bad hex in private_key", `private_key=${"zz".repeat(32)}\n`, UAPI_EINVAL],
    ["short private_key", `private_key=${PRIV.slice(0, 62)}\n`, UAPI_EINVAL],
    ["long private_key", `private_key=${PRIV}00\n`, UAPI_EINVAL],
    ["empty private_key", "private_key=\n", UAPI_EINVAL],
    ["bad public_key", `public_key=${PUB1.slice(1)}\n`, UAPI_EINVAL],
    ["base64 public_key", "public_key=uFmW/sycfx/G0lcqdu2hHVm80gvo5UOxXOS9hajnWjM=\n", UAPI_EINVAL],
    ["bad preshared_key", `public_key=${PUB1}\npreshared_key=xyz\n`, UAPI_EINVAL],
    ["listen_port not a number", "listen_port=abc\n", UAPI_EINVAL],
    ["listen_port > 65535", "listen_port=65536\n", UAPI_EINVAL],
    ["listen_port negative", "listen_port=-1\n", UAPI_EINVAL],
    ["listen_port with a sign", "listen_port=+1\n", UAPI_EINVAL],
    ["listen_port with blanks", "listen_port= 1\n", UAPI_EINVAL],
    ["listen_port empty", "listen_port=\n", UAPI_EINVAL],
    ["listen_port huge", `listen_port=${"9".repeat(400)}\n`, UAPI_EINVAL],
    ["fwmark > 2^32-1", "fwmark=4294967296\n", UAPI_EINVAL],
    ["fwmark in hex", "fwmark=0x10\n", UAPI_EINVAL],
    ["replace_peers=false", "replace_peers=false\n", UAPI_EINVAL],
    ["unknown device key", "mtu=1420\n", UAPI_EINVAL],
    ["key with a different case", "Listen_Port=1\n", UAPI_EINVAL],
    ["interface key after a peer", `public_key=${PUB1}\nlisten_port=1\n`, UAPI_EINVAL],
    ["private_key after a peer", `public_key=${PUB1}\nprivate_key=${PRIV}\n`, UAPI_EINVAL],
    ["replace_peers after a peer", `public_key=${PUB1}\nreplace_peers=true\n`, UAPI_EINVAL],
    ["update_only without a peer", "update_only=true\n", UAPI_EINVAL],
    ["remove without a peer", "remove=true\n", UAPI_EINVAL],
    ["allowed_ip without a peer", "allowed_ip=10.0.0.0/8\n", UAPI_EINVAL],
    ["endpoint without a peer", "endpoint=1.2.3.4:5\n", UAPI_EINVAL],
    ["unknown peer key", `public_key=${PUB1}\nfoo=bar\n`, UAPI_EINVAL],
    ["name= in WireGuard mode", `public_key=${PUB1}\nname=x\n`, UAPI_EINVAL],
    ["protocol_version=2", `public_key=${PUB1}\nprotocol_version=2\n`, UAPI_EINVAL],
    ["protocol_version=0", `public_key=${PUB1}\nprotocol_version=0\n`, UAPI_EINVAL],
    ["remove=false", `public_key=${PUB1}\nremove=false\n`, UAPI_EINVAL],
    ["update_only=1", `public_key=${PUB1}\nupdate_only=1\n`, UAPI_EINVAL],
    ["replace_allowed_ips=yes", `public_key=${PUB1}\nreplace_allowed_ips=yes\n`, UAPI_EINVAL],
    ["endpoint without port", `public_key=${PUB1}\nendpoint=1.2.3.4\n`, UAPI_EINVAL],
    ["endpoint with port 70000", `public_key=${PUB1}\nendpoint=1.2.3.4:70000\n`, UAPI_EINVAL],
    ["endpoint hostname", `public_key=${PUB1}\nendpoint=example.com:51820\n`, UAPI_EINVAL],
    ["endpoint IPv6 without brackets", `public_key=${PUB1}\nendpoint=fd00::1:51820\n`, UAPI_EINVAL],
    ["endpoint bad IPv4", `public_key=${PUB1}\nendpoint=1.2.3.256:1\n`, UAPI_EINVAL],
    ["endpoint empty", `public_key=${PUB1}\nendpoint=\n`, UAPI_EINVAL],
    ["keepalive > 65535", `public_key=${PUB1}\npersistent_keepalive_interval=65536\n`, UAPI_EINVAL],
    ["keepalive not a number", `public_key=${PUB1}\npersistent_keepalive_interval=off\n`, UAPI_EINVAL],
    ["allowed_ip without prefix", `public_key=${PUB1}\nallowed_ip=10.0.0.1\n`, UAPI_EINVAL],
    ["allowed_ip prefix too long", `public_key=${PUB1}\nallowed_ip=10.0.0.0/33\n`, UAPI_EINVAL],
    ["allowed_ip v6 prefix too long", `public_key=${PUB1}\nallowed_ip=::/129\n`, UAPI_EINVAL],
    ["allowed_ip not an address", `public_key=${PUB1}\nallowed_ip=10.0.0/8\n`, UAPI_EINVAL],
    ["allowed_ip removal without a prefix length", `public_key=${PUB1}\nallowed_ip=-10.0.0.1\n`, UAPI_EINVAL],
    ["a truncated key line", `public_key=${PUB1.slice(0, 20)}`, UAPI_EINVAL],
    ["a CR at the line end", "listen_port=1\r\n", UAPI_EINVAL],
  ];
  for (const [what, body, errno] of invalid) {
    test(`refuses ${what} with errno ${errno}`, () => {
      expect(setErrno(body)).toBe(errno);
    });
  }
});

describe("parseSetRequest, wontun dialect", () => {
  test("name= starts a peer; the shared keys work the same", () => {
    const change = parseSetRequest(
      "listen_port=19988\nfwmark=7\nreplace_peers=true\nname=server\nendpoint=192.0.2.1:19988\n" +
        "persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.10.0.0/24\n" +
        "name=client-B\nupdate_only=true\nname=old\nremove=true\n",
      "wontun",
    );
    expect(change.listenPort).toBe(19988);
    expect(change.fwmark).toBe(7);
    expect(change.replacePeers).toBe(true);
    expect(change.peers).toEqual([
      {
        publicKey: null,
        name: "server",
        remove: false,
        updateOnly: false,
        endpoint: ep("192.0.2.1:19988"),
        persistentKeepalive: 25,
        replaceAllowedIps: true,
        allowedIps: [cidr("10.10.0.0/24")],
      },
      { publicKey: null, name: "client-B", remove: false, updateOnly: true, replaceAllowedIps: false, allowedIps: [] },
      { publicKey: null, name: "old", remove: true, updateOnly: false, replaceAllowedIps: false, allowedIps: [] },
    ]);
  });

  const invalid: [string, string][] = [
    ["private_key", `private_key=${PRIV}\n`],
    ["public_key", `public_key=${PUB1}\n`],
    ["preshared_key", `name=a\npreshared_key=${PSK}\n`],
    ["protocol_version", "name=a\nprotocol_version=1\n"],
    ["an empty name", "name=\n"],
    ["a name over 100 bytes", `name=${"é".repeat(51)}\n`],
    ["a name with blanks around it", "name= a\n"],
    ["a name with a control character", "name=a\tb\n"],
    ["an interface key after a peer", "name=a\nlisten_port=1\n"],
    ["an unknown key", "name=a\nstate=up\n"],
  ];
  for (const [what, body] of invalid) {
    test(`refuses ${what}`, () => {
      expect(setErrno(body, "wontun")).toBe(UAPI_EINVAL);
    });
  }
  test("a 100-byte name is fine", () => {
    expect(parseSetRequest(`name=${"é".repeat(50)}\n`, "wontun").peers[0].name).toBe("é".repeat(50));
  });
});

describe("answerSetRequest", () => {
  test("errno=0 when applied, the negated errno otherwise, apply not called on a bad body", () => {
    let applied = 0;
    expect(answerSetRequest("listen_port=1\n", "wireguard", () => applied++)).toBe("errno=0\n\n");
    expect(answerSetRequest("listen_port=x\n", "wireguard", () => applied++)).toBe("errno=-22\n\n");
    expect(answerSetRequest("junk\n", "wireguard", () => applied++)).toBe("errno=-71\n\n");
    expect(applied).toBe(1);
    expect(
      answerSetRequest("listen_port=1\n", "wireguard", () => {
        throw new ControlError(98, "port in use");
      }),
    ).toBe("errno=-98\n\n");
    expect(() => answerSetRequest("", "wireguard", () => { throw new TypeError("bug"); })).toThrow(TypeError);
  });
  test("errnoLine", () => {
    expect(errnoLine(0)).toBe("errno=0\n\n");
    expect(errnoLine(22)).toBe("errno=-22\n\n");
  });
});

describe("parseRequestHead", () => {
  test("the three operations", () => {
    expect(parseRequestHead("get=1")).toBe("get");
    expect(parseRequestHead("get=wontun")).toBe("status");
    expect(parseRequestHead("set=1")).toBe("set");
  });
  for (const line of ["", "get=2", "set=0", "get=1 ", "GET=1", "get", "x".repeat(1000)]) {
    test(`refuses ${JSON.stringify(line.slice(0, 12))} with EPROTO`, () => {
      try {
        parseRequestHead(line);
        throw new Error("accepted");
      } catch (e) {
        expect(e).toBeInstanceOf(ControlError);
        expect((e as ControlError).errno).toBe(UAPI_EPROTO);
        expect((e as ControlError).message.length).toBeLessThan(80);
      }
    });
  }
});

function peer(over: Partial<PeerStatus>): PeerStatus {
  return { ...blankPeerStatus(0), state: "no session", ...over };
}

const wgStatus: DeviceStatus = {
  mode: "wireguard",
  interfaceName: "wg0",
  privateKey: hex(PRIV),
  publicKey: hex(PUB2),
  name: "",
  listenPort: 51820,
  fwmark: 0,
  peers: [
    peer({
      id: 3,
      name: "laptop",
      publicKey: hex(PUB1),
      presharedKey: hex(PSK),
      endpoint: ep("[2001:db8::1]:51820"),
      persistentKeepalive: 25,
      allowedIps: [cidr("10.0.0.2/32"), cidr("fd00::2/128")],
      lastHandshake: { sec: 1700000000, nsec: 123456789 },
      rxBytes: 1234,
      txBytes: 5678,
      state: "up",
    }),
    peer({ id: 4, publicKey: hex(PUB2) }),
  ],
  drops: { no_peer: 3, replay: 0 },
};

const wontunStatus: DeviceStatus = {
  mode: "wontun",
  interfaceName: "tun0",
  privateKey: null,
  publicKey: null,
  name: "client-A",
  listenPort: 19988,
  fwmark: 0x20,
  peers: [
    peer({
      id: 1,
      name: "server",
      endpoint: ep("192.0.2.1:19988"),
      allowedIps: [cidr("10.10.0.0/24")],
      lastHandshake: { sec: 1700000100, nsec: 5 },
      rxBytes: 10,
      txBytes: 20,
      state: "Connected",
    }),
  ],
  drops: {},
};

describe("formatGetResponse", () => {
  test("WireGuard mode, byte for byte as wireguard-go", () => {
    expect(formatGetResponse(wgStatus)).toBe(
      `private_key=${PRIV}\n` +
        "listen_port=51820\n" +
        `public_key=${PUB1}\n` +
        `preshared_key=${PSK}\n` +
        "protocol_version=1\n" +
        "endpoint=[2001:db8::1]:51820\n" +
        "last_handshake_time_sec=1700000000\n" +
        "last_handshake_time_nsec=123456789\n" +
        "tx_bytes=5678\n" +
        "rx_bytes=1234\n" +
        "persistent_keepalive_interval=25\n" +
        "allowed_ip=10.0.0.2/32\n" +
        "allowed_ip=fd00::2/128\n" +
        `public_key=${PUB2}\n` +
        `preshared_key=${ZERO}\n` +
        "protocol_version=1\n" +
        "last_handshake_time_sec=0\n" +
        "last_handshake_time_nsec=0\n" +
        "tx_bytes=0\n" +
        "rx_bytes=0\n" +
        "persistent_keepalive_interval=0\n" +
        "errno=0\n\n",
    );
  });

  test("no private key, port 0, fwmark set, no peers", () => {
    const s: DeviceStatus = { ...wgStatus, privateKey: null, listenPort: 0, fwmark: 51820, peers: [] };
    expect(formatGetResponse(s)).toBe("fwmark=51820\nerrno=0\n\n");
    expect(formatGetResponse({ ...s, privateKey: new Uint8Array(32), fwmark: 0 })).toBe("errno=0\n\n");
  });

  test("wontun mode", () => {
    expect(formatGetResponse(wontunStatus)).toBe(
      "own_name=client-A\n" +
        "listen_port=19988\n" +
        "fwmark=32\n" +
        "name=server\n" +
        "endpoint=192.0.2.1:19988\n" +
        "state=Connected\n" +
        "last_handshake_time_sec=1700000100\n" +
        "last_handshake_time_nsec=5\n" +
        "tx_bytes=20\n" +
        "rx_bytes=10\n" +
        "persistent_keepalive_interval=0\n" +
        "allowed_ip=10.10.0.0/24\n" +
        "errno=0\n\n",
    );
  });

  test("a newline in a name never splits a line", () => {
    const s: DeviceStatus = { ...wontunStatus, peers: [peer({ name: "a\nb" })] };
    expect(formatGetResponse(s)).toContain("name=a?b\n");
  });
});

describe("formatStatusResponse / parseStatusResponse", () => {
  test("WireGuard mode transcript", () => {
    expect(formatStatusResponse(wgStatus)).toBe(
      "mode=wireguard\n" +
        "interface=wg0\n" +
        `private_key=${PRIV}\n` +
        `own_public_key=${PUB2}\n` +
        "listen_port=51820\n" +
        "fwmark=0\n" +
        "drop_no_peer=3\n" +
        "drop_replay=0\n" +
        `public_key=${PUB1}\n` +
        "id=3\n" +
        "name=laptop\n" +
        `preshared_key=${PSK}\n` +
        "protocol_version=1\n" +
        "endpoint=[2001:db8::1]:51820\n" +
        "state=up\n" +
        "last_handshake_time_sec=1700000000\n" +
        "last_handshake_time_nsec=123456789\n" +
        "tx_bytes=5678\n" +
        "rx_bytes=1234\n" +
        "persistent_keepalive_interval=25\n" +
        "allowed_ip=10.0.0.2/32\n" +
        "allowed_ip=fd00::2/128\n" +
        `public_key=${PUB2}\n` +
        "id=4\n" +
        `preshared_key=${ZERO}\n` +
        "protocol_version=1\n" +
        "state=no session\n" +
        "last_handshake_time_sec=0\n" +
        "last_handshake_time_nsec=0\n" +
        "tx_bytes=0\n" +
        "rx_bytes=0\n" +
        "persistent_keepalive_interval=0\n" +
        "errno=0\n\n",
    );
  });

  test("wontun mode transcript", () => {
    expect(formatStatusResponse(wontunStatus)).toBe(
      "mode=wontun\n" +
        "interface=tun0\n" +
        "own_name=client-A\n" +
        "listen_port=19988\n" +
        "fwmark=32\n" +
        "name=server\n" +
        "id=1\n" +
        "endpoint=192.0.2.1:19988\n" +
        "state=Connected\n" +
        "last_handshake_time_sec=1700000100\n" +
        "last_handshake_time_nsec=5\n" +
        "tx_bytes=20\n" +
        "rx_bytes=10\n" +
        "persistent_keepalive_interval=0\n" +
        "allowed_ip=10.10.0.0/24\n" +
        "errno=0\n\n",
    );
  });

  test("round trip status -> text -> status", () => {
    expect(parseStatusResponse(formatStatusResponse(wgStatus))).toEqual(wgStatus);
    expect(parseStatusResponse(formatStatusResponse(wontunStatus))).toEqual(wontunStatus);
    const empty: DeviceStatus = { ...wontunStatus, name: "", peers: [], drops: { x: 1 } };
    expect(parseStatusResponse(formatStatusResponse(empty))).toEqual(empty);
  });

  test("unknown keys are skipped (a newer daemon)", () => {
    const text = formatStatusResponse(wontunStatus).replace("fwmark=32\n", "fwmark=32\nfuture=1\n").replace("state=Connected\n", "state=Connected\nmtu=1400\n");
    expect(parseStatusResponse(text)).toEqual(wontunStatus);
  });

  test("a nonzero errno becomes a ControlError with that (positive) errno", () => {
    try {
      parseStatusResponse("errno=-22\n\n");
      throw new Error("accepted");
    } catch (e) {
      expect((e as ControlError).errno).toBe(22);
    }
  });

  const good = formatStatusResponse(wgStatus);
  const garbage: [string, string, RegExp][] = [
    ["empty text", "", /truncated/],
    ["no blank line at the end", good.slice(0, -1), /truncated/],
    ["no errno line", "mode=wontun\ninterface=x\n\n", /errno/],
    ["only errno", "errno=0\n\n", /empty/],
    ["no mode first", "interface=x\nmode=wontun\nerrno=0\n\n", /mode=/],
    ["an unknown mode", "mode=ipsec\ninterface=x\nerrno=0\n\n", /mode=/],
    ["no interface", "mode=wontun\nlisten_port=1\nerrno=0\n\n", /interface=/],
    ["a line without =", "mode=wontun\ninterface=x\nhello\nerrno=0\n\n", /line 3.*not key=value/],
    ["a bad port", "mode=wontun\ninterface=x\nlisten_port=99999\nerrno=0\n\n", /listen_port/],
    ["a bad counter", "mode=wontun\ninterface=x\nname=a\nrx_bytes=-1\nerrno=0\n\n", /rx_bytes/],
    ["a bad key", "mode=wireguard\ninterface=x\npublic_key=abc\nerrno=0\n\n", /public_key/],
    ["a bad endpoint", "mode=wontun\ninterface=x\nname=a\nendpoint=nowhere\nerrno=0\n\n", /endpoint/],
    ["a bad allowed_ip", "mode=wontun\ninterface=x\nname=a\nallowed_ip=10.0.0.1\nerrno=0\n\n", /allowed_ip/],
    ["a bad nsec", "mode=wontun\ninterface=x\nname=a\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", /nsec/],
    ["binary noise", "\u0000\u0001\u0002\n\n", /errno/],
  ];
  for (const [what, text, message] of garbage) {
    test(`garbage: ${what}`, () => {
      try {
        parseStatusResponse(text);
        throw new Error("accepted");
      } catch (e) {
        expect(e).toBeInstanceOf(ControlError);
        expect((e as ControlError).errno).toBe(UAPI_EPROTO);
        expect((e as Error).message).toMatch(message);
      }
    });
  }

  test("keyToHex is lowercase", () => {
    expect(keyToHex(hex(PRIV.toUpperCase()))).toBe(PRIV);
  });
});
