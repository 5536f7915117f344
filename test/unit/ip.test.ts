import { describe, expect, test } from "bun:test";
import {
  cidrContains,
  familyOf,
  formatCidr,
  formatIp,
  ipEquals,
  maskAddress,
  parseCidr,
  parseIp,
  parseIpv4,
  parseIpv6,
  type Cidr,
} from "../../src/net/ip.ts";
import { endpointEquals, formatEndpoint, parseEndpoint, splitHostPort, type Endpoint } from "../../src/net/endpoint.ts";
import {
  IPV4_DST_OFFSET,
  IPV4_SRC_OFFSET,
  IPV6_DST_OFFSET,
  IPV6_SRC_OFFSET,
  formatPacketSummary,
  ipTotalLength,
  ipVersion,
} from "../../src/net/ip-packet.ts";

function bytes(...b: number[]): Uint8Array {
  return new Uint8Array(b);
}

function v6(text: string): Uint8Array {
  const a = parseIpv6(text);
  if (!a) throw new Error(`bad ${text}`);
  return a;
}

function okCidr(text: string, keepHostBits = false): Cidr {
  const c = parseCidr(text, keepHostBits);
  if (typeof c === "string") throw new Error(c);
  return c;
}

describe("IPv4 parse/format", () => {
  test("valid addresses", () => {
    expect(parseIpv4("0.0.0.0")).toEqual(bytes(0, 0, 0, 0));
    expect(parseIpv4("255.255.255.255")).toEqual(bytes(255, 255, 255, 255));
    expect(parseIpv4("10.1.20.199")).toEqual(bytes(10, 1, 20, 199));
    expect(parseIp("192.168.0.1")).toEqual(bytes(192, 168, 0, 1));
    expect(formatIp(bytes(10, 0, 0, 1))).toBe("10.0.0.1");
    expect(formatIp(bytes(0, 0, 0, 0))).toBe("0.0.0.0");
  });

  test("invalid addresses", () => {
    for (const text of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "1.2.3.-1",
      "01.2.3.4", // leading zeros (octal in some parsers) are rejected
      "1.2.3.04",
      "1.2.3.4 ",
      " 1.2.3.4",
      "1..3.4",
      "1.2.3.",
      "a.b.c.d",
      "0x1.2.3.4",
      "1.2.3.4\n",
      "1e2.0.0.0",
      "１.2.3.4",
    ]) {
      expect(parseIpv4(text)).toBeNull();
      expect(parseIp(text)).toBeNull();
    }
  });
});

describe("IPv6 parse", () => {
  test("full, compressed and mixed forms", () => {
    expect(parseIpv6("::")).toEqual(new Uint8Array(16));
    expect(parseIpv6("::1")).toEqual(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
    expect(parseIpv6("1::")).toEqual(bytes(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    expect(parseIpv6("2001:db8:0:0:0:0:0:1")).toEqual(v6("2001:db8::1"));
    expect(parseIpv6("2001:0db8:0000:0000:0000:0000:0000:0001")).toEqual(v6("2001:db8::1"));
    expect(parseIpv6("2001:DB8::ABCD")).toEqual(v6("2001:db8::abcd"));
    expect(parseIpv6("1:2:3:4:5:6:7::")).toEqual(v6("1:2:3:4:5:6:7:0"));
    expect(parseIpv6("::2:3:4:5:6:7:8")).toEqual(v6("0:2:3:4:5:6:7:8"));
    expect(parseIpv6("1:2:3::6:7:8")).toEqual(v6("1:2:3:0:0:6:7:8"));
    expect(parseIpv6("::ffff:1.2.3.4")).toEqual(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4));
    expect(parseIpv6("1:2:3:4:5:6:1.2.3.4")).toEqual(v6("1:2:3:4:5:6:102:304"));
    expect(parseIpv6("::1.2.3.4")).toEqual(v6("::102:304"));
    expect(parseIp("fe80::1")).toEqual(v6("fe80::1"));
  });

  test("invalid forms", () => {
    for (const text of [
      ":",
      ":::",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      "1::2::3",
      ":1::2",
      "1::2:",
      "1:2:3:4:5:6:7:",
      ":1:2:3:4:5:6:7",
      "12345::",
      "g::1",
      "::1 ",
      "fe80::1%eth0",
      "::ffff:1.2.3",
      "::ffff:256.1.1.1",
      "1.2.3.4::", // an embedded IPv4 part must come last
      "1.2.3.4::1",
      "::1.2.3.4:1",
      "1:2:3:4:5:6:7:1.2.3.4", // 9 groups' worth
      "[::1]",
      "::-1",
      "::+1",
    ]) {
      expect(parseIpv6(text)).toBeNull();
      expect(parseIp(text)).toBeNull();
    }
  });
});

describe("IPv6 format (RFC 5952)", () => {
  const cases: Array<[string, string]> = [
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"], // 4.1 leading zeros dropped
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"], // 4.3 lower case
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // 4.2.2 a single 0 group is not "::"
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // 4.2.3 first of equal runs
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // 4.2.3 longest run
    ["0:0:1:0:0:0:1:0", "0:0:1::1:0"],
    ["1:0:0:0:1:0:0:0", "1::1:0:0:0"],
    ["0:0:0:1:0:0:0:0", "0:0:0:1::"], // the longer run wins even when it comes second
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["fe80:0:0:0:0:0:0:ffff", "fe80::ffff"],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["0:0:0:0:0:0:1.2.3.4", "::102:304"],
  ];
  for (const [input, want] of cases) {
    test(`${input} -> ${want}`, () => {
      expect(formatIp(v6(input))).toBe(want);
      // The canonical text parses back to the same bytes.
      expect(parseIpv6(want)).toEqual(v6(input));
    });
  }
});

describe("helpers", () => {
  test("familyOf, ipEquals", () => {
    expect(familyOf(bytes(1, 2, 3, 4))).toBe(4);
    expect(familyOf(v6("::1"))).toBe(6);
    expect(ipEquals(bytes(1, 2, 3, 4), bytes(1, 2, 3, 4))).toBe(true);
    expect(ipEquals(bytes(1, 2, 3, 4), bytes(1, 2, 3, 5))).toBe(false);
    expect(ipEquals(bytes(0, 0, 0, 0), new Uint8Array(16))).toBe(false);
  });

  test("maskAddress clears host bits and leaves the input alone", () => {
    const a = bytes(10, 255, 255, 255);
    expect(maskAddress(a, 8)).toEqual(bytes(10, 0, 0, 0));
    expect(maskAddress(a, 13)).toEqual(bytes(10, 248, 0, 0));
    expect(maskAddress(a, 0)).toEqual(bytes(0, 0, 0, 0));
    expect(maskAddress(a, 32)).toEqual(a);
    expect(a).toEqual(bytes(10, 255, 255, 255));
    expect(formatIp(maskAddress(v6("2001:db8:ffff:ffff::1"), 36))).toBe("2001:db8:f000::");
  });

  test("cidrContains", () => {
    expect(cidrContains(okCidr("10.0.0.0/8"), bytes(10, 9, 8, 7))).toBe(true);
    expect(cidrContains(okCidr("10.0.0.0/8"), bytes(11, 0, 0, 0))).toBe(false);
    expect(cidrContains(okCidr("0.0.0.0/0"), bytes(1, 2, 3, 4))).toBe(true);
    expect(cidrContains(okCidr("0.0.0.0/0"), v6("::1"))).toBe(false);
    expect(cidrContains(okCidr("10.0.0.0/13"), bytes(10, 7, 0, 0))).toBe(true);
    expect(cidrContains(okCidr("10.0.0.0/13"), bytes(10, 8, 0, 0))).toBe(false);
    expect(cidrContains(okCidr("1.2.3.4/32"), bytes(1, 2, 3, 4))).toBe(true);
    expect(cidrContains(okCidr("1.2.3.4/32"), bytes(1, 2, 3, 5))).toBe(false);
    expect(cidrContains(okCidr("2001:db8::/33"), v6("2001:db8:7fff::1"))).toBe(true);
    expect(cidrContains(okCidr("2001:db8::/33"), v6("2001:db8:8000::1"))).toBe(false);
  });
});

describe("CIDR parse/format", () => {
  test("valid", () => {
    expect(okCidr("10.0.0.0/8")).toEqual({ address: bytes(10, 0, 0, 0), prefix: 8 });
    expect(okCidr("0.0.0.0/0")).toEqual({ address: bytes(0, 0, 0, 0), prefix: 0 });
    expect(okCidr("1.2.3.4")).toEqual({ address: bytes(1, 2, 3, 4), prefix: 32 });
    expect(okCidr("::1")).toEqual({ address: v6("::1"), prefix: 128 });
    expect(okCidr("::/0")).toEqual({ address: new Uint8Array(16), prefix: 0 });
    expect(formatCidr(okCidr("2001:DB8::/32"))).toBe("2001:db8::/32");
    expect(formatCidr(okCidr("10.0.0.0/8"))).toBe("10.0.0.0/8");
  });

  test("host bits are cleared unless asked to keep them", () => {
    expect(formatCidr(okCidr("10.1.2.3/8"))).toBe("10.0.0.0/8");
    expect(formatCidr(okCidr("10.1.2.3/24", true))).toBe("10.1.2.3/24");
    expect(formatCidr(okCidr("2001:db8::1/64"))).toBe("2001:db8::/64");
    expect(formatCidr(okCidr("fd00::5/64", true))).toBe("fd00::5/64");
    expect(formatCidr(okCidr("255.255.255.255/0"))).toBe("0.0.0.0/0");
  });

  test("errors name what was wrong", () => {
    const err = (text: string): string => {
      const c = parseCidr(text);
      expect(typeof c).toBe("string");
      return c as string;
    };
    expect(err("10.0.0.0/33")).toContain("0-32");
    expect(err("::/129")).toContain("0-128");
    expect(err("10.0.0.0/")).toContain("prefix length");
    expect(err("10.0.0.0/-1")).toContain("prefix length");
    expect(err("10.0.0.0/8/8")).toContain("prefix length");
    expect(err("10.0.0.0/ 8")).toContain("prefix length");
    expect(err("10.0.0.0/1000")).toContain("prefix length");
    expect(err("10.0.0.0/x")).toContain("prefix length");
    expect(err("10.0.0/8")).toContain("not an IPv4 or IPv6 address");
    expect(err("/8")).toContain("not an IPv4 or IPv6 address");
    expect(err("")).toContain("not an IPv4 or IPv6 address");
    expect(err("example.com/8")).toContain('"example.com"');
    expect(err("fe80::1%eth0/64")).toContain("not an IPv4 or IPv6 address");
  });
});

describe("endpoints", () => {
  test("parse and format", () => {
    expect(parseEndpoint("1.2.3.4:51820")).toEqual({ address: bytes(1, 2, 3, 4), port: 51820 });
    expect(parseEndpoint("[::1]:51820")).toEqual({ address: v6("::1"), port: 51820 });
    expect(parseEndpoint("[2001:DB8::1]:1")).toEqual({ address: v6("2001:db8::1"), port: 1 });
    expect(parseEndpoint("10.0.0.1:65535")).toEqual({ address: bytes(10, 0, 0, 1), port: 65535 });
    expect(formatEndpoint({ address: bytes(1, 2, 3, 4), port: 51820 })).toBe("1.2.3.4:51820");
    expect(formatEndpoint({ address: v6("2001:db8::1"), port: 443 })).toBe("[2001:db8::1]:443");
    expect(formatEndpoint({ address: new Uint8Array(16), port: 1 })).toBe("[::]:1");
  });

  test("round trip", () => {
    for (const text of ["1.2.3.4:51820", "[::1]:51820", "[2001:db8::2:1]:9", "0.0.0.0:1"]) {
      const ep = parseEndpoint(text);
      expect(typeof ep).not.toBe("string");
      expect(formatEndpoint(ep as Endpoint)).toBe(text);
    }
  });

  test("invalid endpoints", () => {
    const cases: Array<[string, string]> = [
      ["1.2.3.4:0", "not a port"],
      ["1.2.3.4:65536", "not a port"],
      ["1.2.3.4:123456", "not a port"],
      ["1.2.3.4:", "not a port"],
      ["1.2.3.4:-1", "not a port"],
      ["1.2.3.4:8o", "not a port"],
      ["1.2.3.4", "no port"],
      ["[::1]", "[address]:port"],
      ["[::1]51820", "[address]:port"],
      ["[::1:51820", "[address]:port"],
      ["[::1]:", "not a port"],
      ["::1:51820", "[address]:port"],
      ["2001:db8::1", "[address]:port"],
      [":51820", "no host"],
      ["[]:51820", "no host"],
      ["example.com:51820", "not an IP address"],
      ["1.2.3:51820", "not an IP address"],
      ["[fe80::1%eth0]:51820", "not an IP address"],
    ];
    for (const [text, message] of cases) {
      const r = parseEndpoint(text);
      expect(typeof r).toBe("string");
      expect(r as string).toContain(message);
    }
  });

  test("splitHostPort keeps names for later resolution", () => {
    expect(splitHostPort("vpn.example.com:51820")).toEqual({ host: "vpn.example.com", port: 51820 });
    expect(splitHostPort("[::1]:7")).toEqual({ host: "::1", port: 7 });
    expect(typeof splitHostPort("vpn.example.com")).toBe("string");
  });

  test("endpointEquals", () => {
    const a = { address: bytes(1, 2, 3, 4), port: 1 };
    expect(endpointEquals(a, { address: bytes(1, 2, 3, 4), port: 1 })).toBe(true);
    expect(endpointEquals(a, { address: bytes(1, 2, 3, 4), port: 2 })).toBe(false);
    expect(endpointEquals(a, { address: bytes(1, 2, 3, 5), port: 1 })).toBe(false);
    expect(endpointEquals(a, { address: v6("::102:304"), port: 1 })).toBe(false);
    expect(endpointEquals(a, null)).toBe(false);
    expect(endpointEquals(null, a)).toBe(false);
    expect(endpointEquals(null, null)).toBe(true);
  });
});

// ---- ip-packet.ts ----

function ipv4Packet(src: string, dst: string, proto: number, total: number): Uint8Array {
  const p = new Uint8Array(total);
  p[0] = 0x45;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[8] = 64;
  p[9] = proto;
  p.set(parseIp(src)!, IPV4_SRC_OFFSET);
  p.set(parseIp(dst)!, IPV4_DST_OFFSET);
  return p;
}

function ipv6Packet(src: string, dst: string, next: number, payload: number): Uint8Array {
  const p = new Uint8Array(40 + payload);
  p[0] = 0x60;
  p[4] = payload >> 8;
  p[5] = payload & 0xff;
  p[6] = next;
  p[7] = 64;
  p.set(parseIp(src)!, IPV6_SRC_OFFSET);
  p.set(parseIp(dst)!, IPV6_DST_OFFSET);
  return p;
}

describe("ip-packet", () => {
  test("ipVersion", () => {
    const p4 = ipv4Packet("10.0.0.1", "10.0.0.2", 1, 84);
    const p6 = ipv6Packet("fd00::1", "fd00::2", 58, 64);
    expect(ipVersion(p4, 0, p4.length)).toBe(4);
    expect(ipVersion(p6, 0, p6.length)).toBe(6);
    expect(ipVersion(p4, 0, 20)).toBe(4);
    expect(ipVersion(p4, 0, 19)).toBe(0);
    expect(ipVersion(p6, 0, 40)).toBe(6);
    expect(ipVersion(p6, 0, 39)).toBe(0);
    expect(ipVersion(p4, 0, 0)).toBe(0);
    expect(ipVersion(new Uint8Array(0), 0, 0)).toBe(0);
    // Length beyond the buffer, negative offset.
    expect(ipVersion(p4, 70, 20)).toBe(0);
    expect(ipVersion(p4, -1, 20)).toBe(0);
    // IHL below 5, or a header longer than the data.
    const bad = new Uint8Array(p4);
    bad[0] = 0x44;
    expect(ipVersion(bad, 0, bad.length)).toBe(0);
    bad[0] = 0x4f; // 60-byte header
    expect(ipVersion(bad, 0, 59)).toBe(0);
    expect(ipVersion(bad, 0, 60)).toBe(4);
    // Other versions.
    for (const first of [0x00, 0x55, 0x75, 0xf0]) {
      bad[0] = first;
      expect(ipVersion(bad, 0, bad.length)).toBe(0);
    }
  });

  test("at a nonzero offset", () => {
    const p4 = ipv4Packet("10.0.0.1", "10.0.0.2", 17, 28);
    const p6 = ipv6Packet("fd00::1", "fd00::2", 6, 20);
    const buf = new Uint8Array(200);
    buf.set(p4, 16);
    buf.set(p6, 100);
    expect(ipVersion(buf, 16, p4.length)).toBe(4);
    expect(ipTotalLength(buf, 16, 4)).toBe(28);
    expect(ipVersion(buf, 100, p6.length)).toBe(6);
    expect(ipTotalLength(buf, 100, 6)).toBe(60);
    expect(formatIp(buf.subarray(16 + IPV4_DST_OFFSET, 16 + IPV4_DST_OFFSET + 4))).toBe("10.0.0.2");
    expect(formatIp(buf.subarray(100 + IPV6_DST_OFFSET, 100 + IPV6_DST_OFFSET + 16))).toBe("fd00::2");
    expect(formatPacketSummary(buf, 100, 60)).toBe("IPv6 fd00::1 → fd00::2 proto 6 len 60");
  });

  test("ipTotalLength, for trimming padding", () => {
    const padded = new Uint8Array(96);
    padded.set(ipv4Packet("10.0.0.1", "10.0.0.2", 1, 84));
    expect(ipTotalLength(padded, 0, 4)).toBe(84);
    const p6 = new Uint8Array(1280);
    p6.set(ipv6Packet("::1", "::2", 17, 1000));
    expect(ipTotalLength(p6, 0, 6)).toBe(1040);
    expect(ipTotalLength(p6, 0, 5)).toBe(0);
  });

  test("formatPacketSummary", () => {
    const p4 = ipv4Packet("10.0.0.1", "10.0.0.2", 1, 84);
    expect(formatPacketSummary(p4, 0, 84)).toBe("IPv4 10.0.0.1 → 10.0.0.2 proto 1 len 84");
    const padded = new Uint8Array(96);
    padded.set(p4);
    expect(formatPacketSummary(padded, 0, 96)).toBe("IPv4 10.0.0.1 → 10.0.0.2 proto 1 len 84 (96 in buffer)");
    const p6 = ipv6Packet("2001:db8::1", "2001:db8::2", 58, 64);
    expect(formatPacketSummary(p6, 0, p6.length)).toBe("IPv6 2001:db8::1 → 2001:db8::2 proto 58 len 104");
    expect(formatPacketSummary(p4, 0, 10)).toBe("not an IP packet (version 4, 10 bytes)");
    expect(formatPacketSummary(new Uint8Array(0), 0, 0)).toBe("not an IP packet (empty, 0 bytes)");
  });
});
