import { describe, expect, test } from "bun:test";
import { AllowedIps } from "../../src/net/allowed-ips.ts";
import { cidrContains, formatCidr, parseCidr, parseIp, type Cidr } from "../../src/net/ip.ts";

function cidr(text: string): Cidr {
  const c = parseCidr(text, true); // keep host bits: the table must ignore them itself
  if (typeof c === "string") throw new Error(c);
  return c;
}

function ip(text: string): Uint8Array {
  const a = parseIp(text);
  if (!a) throw new Error(`bad ip ${text}`);
  return a;
}

function table(...routes: Array<[string, string]>): AllowedIps<string> {
  const t = new AllowedIps<string>();
  for (const [c, v] of routes) t.insert(cidr(c), v);
  return t;
}

describe("AllowedIps longest prefix match", () => {
  test("nested IPv4 prefixes /0 /8 /16 /24 /32", () => {
    const t = table(
      ["0.0.0.0/0", "default"],
      ["10.0.0.0/8", "a8"],
      ["10.1.0.0/16", "a16"],
      ["10.1.2.0/24", "a24"],
      ["10.1.2.3/32", "a32"],
    );
    expect(t.size).toBe(5);
    expect(t.lookup(ip("10.1.2.3"))).toBe("a32");
    expect(t.lookup(ip("10.1.2.4"))).toBe("a24");
    expect(t.lookup(ip("10.1.3.3"))).toBe("a16");
    expect(t.lookup(ip("10.2.2.3"))).toBe("a8");
    expect(t.lookup(ip("11.1.2.3"))).toBe("default");
    expect(t.lookup(ip("255.255.255.255"))).toBe("default");
    expect(t.lookup(ip("0.0.0.0"))).toBe("default");
  });

  test("insertion order does not matter", () => {
    const routes: Array<[string, string]> = [
      ["10.1.2.3/32", "a32"],
      ["10.1.2.0/24", "a24"],
      ["0.0.0.0/0", "default"],
      ["10.1.0.0/16", "a16"],
      ["10.0.0.0/8", "a8"],
    ];
    const t = table(...routes);
    expect(t.lookup(ip("10.1.2.3"))).toBe("a32");
    expect(t.lookup(ip("10.1.2.4"))).toBe("a24");
    expect(t.lookup(ip("10.1.3.3"))).toBe("a16");
    expect(t.lookup(ip("10.2.2.3"))).toBe("a8");
    expect(t.lookup(ip("9.0.0.0"))).toBe("default");
  });

  test("nested IPv6 prefixes /0 /48 /64 /128", () => {
    const t = table(
      ["::/0", "default"],
      ["2001:db8:1::/48", "p48"],
      ["2001:db8:1:2::/64", "p64"],
      ["2001:db8:1:2::1/128", "p128"],
    );
    expect(t.lookup(ip("2001:db8:1:2::1"))).toBe("p128");
    expect(t.lookup(ip("2001:db8:1:2::2"))).toBe("p64");
    expect(t.lookup(ip("2001:db8:1:3::1"))).toBe("p48");
    expect(t.lookup(ip("2001:db8:2::1"))).toBe("default");
    expect(t.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))).toBe("default");
  });

  test("IPv6 prefixes not on a word boundary", () => {
    const t = table(["fd00::/7", "ula"], ["fd12:3456:789a::/33", "p33"], ["fd12:3456:789a:1::/97", "p97"]);
    expect(t.lookup(ip("fc00::1"))).toBe("ula");
    expect(t.lookup(ip("fe00::1"))).toBeUndefined();
    expect(t.lookup(ip("fd12:3456:8000::"))).toBe("ula"); // bit 32 set: outside the /33
    expect(t.lookup(ip("fd12:3456:7fff::"))).toBe("p33");
    expect(t.lookup(ip("fd12:3456:789a:1::7fff:ffff"))).toBe("p97");
    expect(t.lookup(ip("fd12:3456:789a:1::8000:0"))).toBe("p33");
  });

  test("lookup misses return undefined", () => {
    const t = table(["10.0.0.0/8", "a"], ["2001:db8::/32", "b"]);
    expect(t.lookup(ip("11.0.0.0"))).toBeUndefined();
    expect(t.lookup(ip("2001:db9::"))).toBeUndefined();
    expect(new AllowedIps<string>().lookup(ip("1.2.3.4"))).toBeUndefined();
    expect(new AllowedIps<string>().lookup(ip("::1"))).toBeUndefined();
    expect(t.lookup(new Uint8Array(5))).toBeUndefined();
  });

  test("IPv4 and IPv6 are independent", () => {
    const t = table(["0.0.0.0/0", "v4"]);
    expect(t.lookup(ip("::"))).toBeUndefined();
    expect(t.lookup(ip("::ffff:1.2.3.4"))).toBeUndefined();
    t.insert(cidr("::/0"), "v6");
    expect(t.lookup(ip("1.2.3.4"))).toBe("v4");
    expect(t.lookup(ip("::1"))).toBe("v6");
    // An IPv6 address ending in the same 4 bytes as an IPv4 one is still looked up apart.
    t.insert(cidr("::1.2.3.4/128"), "v6host");
    expect(t.lookup(ip("1.2.3.4"))).toBe("v4");
    expect(t.removeValue("v4")).toBe(1);
    expect(t.lookup(ip("1.2.3.4"))).toBeUndefined();
    expect(t.lookup(ip("::1.2.3.4"))).toBe("v6host");
  });

  test("default route 0.0.0.0/0 alone", () => {
    const t = table(["0.0.0.0/0", "all"]);
    for (const a of ["0.0.0.0", "1.2.3.4", "128.0.0.0", "255.255.255.255"]) {
      expect(t.lookup(ip(a))).toBe("all");
    }
  });

  test("host bits are ignored on insert", () => {
    const t = table(["10.1.2.3/8", "a"], ["2001:db8::dead:beef/32", "b"]);
    expect(t.lookup(ip("10.200.0.1"))).toBe("a");
    expect(t.lookup(ip("2001:db8:ffff::"))).toBe("b");
    expect(t.entries().map((e) => formatCidr(e.cidr))).toEqual(["10.0.0.0/8", "2001:db8::/32"]);
    // Same prefix with other host bits is the same entry.
    expect(t.insert(cidr("10.9.9.9/8"), "c")).toBe("a");
    expect(t.size).toBe(2);
  });

  test("insert replaces the value of the exact same prefix and returns the old one", () => {
    const t = new AllowedIps<string>();
    expect(t.insert(cidr("10.0.0.0/24"), "a")).toBeUndefined();
    expect(t.insert(cidr("10.0.0.0/25"), "b")).toBeUndefined();
    expect(t.insert(cidr("10.0.0.0/24"), "c")).toBe("a");
    expect(t.size).toBe(2);
    expect(t.lookup(ip("10.0.0.200"))).toBe("c");
    expect(t.lookup(ip("10.0.0.1"))).toBe("b");
    expect(t.insert(cidr("::/0"), "x")).toBeUndefined();
    expect(t.insert(cidr("::/0"), "y")).toBe("x");
    expect(t.size).toBe(3);
  });

  test("a prefix inserted above an existing branch", () => {
    const t = table(["10.1.0.0/16", "a"], ["10.2.0.0/16", "b"]); // branch node at /14
    t.insert(cidr("10.0.0.0/8"), "c");
    t.insert(cidr("10.0.0.0/14"), "d"); // exactly the valueless branch node
    expect(t.lookup(ip("10.1.1.1"))).toBe("a");
    expect(t.lookup(ip("10.2.1.1"))).toBe("b");
    expect(t.lookup(ip("10.3.1.1"))).toBe("d");
    expect(t.lookup(ip("10.4.1.1"))).toBe("c");
    expect(t.size).toBe(4);
  });

  test("removeValue removes every prefix of a value", () => {
    const t = table(
      ["10.0.0.0/8", "a"],
      ["10.1.0.0/16", "b"],
      ["10.1.2.0/24", "a"],
      ["10.1.3.0/24", "b"],
      ["fd00::/8", "a"],
      ["fd00:1::/32", "b"],
    );
    expect(t.removeValue("a")).toBe(3);
    expect(t.size).toBe(3);
    expect(t.lookup(ip("10.1.2.1"))).toBe("b");
    expect(t.lookup(ip("10.1.3.1"))).toBe("b");
    expect(t.lookup(ip("10.2.0.0"))).toBeUndefined();
    expect(t.lookup(ip("fd00:1::1"))).toBe("b");
    expect(t.lookup(ip("fd00:2::1"))).toBeUndefined();
    expect(t.removeValue("a")).toBe(0);
    expect(t.removeValue("b")).toBe(3);
    expect(t.size).toBe(0);
    expect(t.entries()).toEqual([]);
    expect(t.lookup(ip("10.1.3.1"))).toBeUndefined();
    // Nodes freed by the removal are reused.
    t.insert(cidr("10.1.3.0/24"), "c");
    expect(t.lookup(ip("10.1.3.1"))).toBe("c");
    expect(t.size).toBe(1);
  });

  test("removeValue compares values by identity", () => {
    const p1 = { name: "peer" };
    const p2 = { name: "peer" };
    const t = new AllowedIps<{ name: string }>();
    t.insert(cidr("10.0.0.1/32"), p1);
    t.insert(cidr("10.0.0.2/32"), p2);
    expect(t.removeValue(p1)).toBe(1);
    expect(t.lookup(ip("10.0.0.1"))).toBeUndefined();
    expect(t.lookup(ip("10.0.0.2"))).toBe(p2);
  });

  test("remove takes out one exact prefix", () => {
    const t = table(["10.0.0.0/8", "a"], ["10.1.0.0/16", "b"], ["10.1.2.0/24", "c"], ["10.3.0.0/16", "d"]);
    expect(t.remove(cidr("10.1.0.0/17"))).toBeUndefined();
    expect(t.remove(cidr("10.0.0.0/14"))).toBeUndefined(); // a valueless branch node
    expect(t.remove(cidr("10.1.0.0/16"))).toBe("b");
    expect(t.lookup(ip("10.1.2.1"))).toBe("c");
    expect(t.lookup(ip("10.1.3.1"))).toBe("a");
    expect(t.remove(cidr("10.1.2.0/24"))).toBe("c");
    expect(t.remove(cidr("10.1.2.0/24"))).toBeUndefined();
    expect(t.lookup(ip("10.1.2.1"))).toBe("a");
    expect(t.lookup(ip("10.3.0.1"))).toBe("d");
    expect(t.remove(cidr("10.0.0.0/8"))).toBe("a");
    expect(t.lookup(ip("10.1.2.1"))).toBeUndefined();
    expect(t.lookup(ip("10.3.0.1"))).toBe("d");
    expect(t.size).toBe(1);
  });

  test("clear empties both families", () => {
    const t = table(["0.0.0.0/0", "a"], ["::/0", "b"]);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.lookup(ip("1.1.1.1"))).toBeUndefined();
    expect(t.lookup(ip("::1"))).toBeUndefined();
    t.insert(cidr("1.0.0.0/8"), "c");
    expect(t.lookup(ip("1.1.1.1"))).toBe("c");
  });

  test("entries are sorted by family, address, prefix", () => {
    const t = table(
      ["fd00::/8", "f"],
      ["192.168.0.0/16", "c"],
      ["10.0.0.0/16", "b"],
      ["10.0.0.0/8", "a"],
      ["::/0", "e"],
      ["10.0.0.0/32", "b2"],
      ["10.0.0.1/32", "b3"],
      ["0.0.0.0/0", "z"],
      ["2001:db8::/32", "g"],
    );
    expect(t.entries().map((e) => `${formatCidr(e.cidr)}=${e.value}`)).toEqual([
      "0.0.0.0/0=z",
      "10.0.0.0/8=a",
      "10.0.0.0/16=b",
      "10.0.0.0/32=b2",
      "10.0.0.1/32=b3",
      "192.168.0.0/16=c",
      "::/0=e",
      "2001:db8::/32=g",
      "fd00::/8=f",
    ]);
  });

  test("bad keys are rejected on insert", () => {
    const t = new AllowedIps<string>();
    expect(() => t.insert({ address: new Uint8Array(5), prefix: 8 }, "x")).toThrow(RangeError);
    expect(() => t.insert({ address: new Uint8Array(4), prefix: 33 }, "x")).toThrow(RangeError);
    expect(() => t.insert({ address: new Uint8Array(16), prefix: 129 }, "x")).toThrow(RangeError);
    expect(() => t.insert({ address: new Uint8Array(4), prefix: -1 }, "x")).toThrow(RangeError);
    expect(() => t.insert({ address: new Uint8Array(4), prefix: 1.5 }, "x")).toThrow(RangeError);
    expect(t.size).toBe(0);
  });

  test("lookupPacket reads addresses at nonzero offsets in a bigger buffer", () => {
    const t = table(["10.0.0.0/8", "v4"], ["10.1.2.3/32", "host"], ["2001:db8::/32", "v6"], ["2001:db8::7/128", "h6"]);
    const buf = new Uint8Array(100).fill(0xff);
    buf.set(ip("10.1.2.3"), 13);
    buf.set(ip("10.9.9.9"), 17);
    buf.set(ip("2001:db8::7"), 33);
    buf.set(ip("2001:db8::8"), 60);
    expect(t.lookupPacket(buf, 13, 4)).toBe("host");
    expect(t.lookupPacket(buf, 17, 4)).toBe("v4");
    expect(t.lookupPacket(buf, 0, 4)).toBeUndefined(); // 255.255.255.255
    expect(t.lookupPacket(buf, 33, 6)).toBe("h6");
    expect(t.lookupPacket(buf, 60, 6)).toBe("v6");
    expect(t.lookupPacket(buf, 0, 6)).toBeUndefined();
    // Out of the buffer: no match rather than reading undefined bytes.
    expect(t.lookupPacket(buf, 97, 4)).toBeUndefined();
    expect(t.lookupPacket(buf, 85, 6)).toBeUndefined();
    expect(t.lookupPacket(buf, -1, 4)).toBeUndefined();
    // The same bytes seen through a subarray (offset within a larger ArrayBuffer).
    const view = buf.subarray(10);
    expect(t.lookupPacket(view, 3, 4)).toBe("host");
    expect(t.lookupPacket(view, 23, 6)).toBe("h6");
  });

  test("no valueless node with fewer than two children is left behind", () => {
    const t = new AllowedIps<number>();
    const prefixes: Cidr[] = [];
    for (let i = 0; i < 3000; i++) {
      const c = { address: new Uint8Array([10, (i * 7) & 255, (i * 13) & 255, i & 255]), prefix: 8 + (i % 25) };
      prefixes.push(c);
      t.insert(c, i % 5);
    }
    // Path compression: fewer than 2n nodes for n prefixes.
    expect(t.stats().nodes).toBeLessThan(2 * t.size);
    // The compressed trie of a set of prefixes has one shape, so after removals it must have
    // exactly as many nodes as a table built afresh from what is left.
    const rebuiltNodes = () => {
      const fresh = new AllowedIps<number>();
      for (const e of t.entries()) fresh.insert(e.cidr, e.value);
      return fresh.stats().nodes;
    };
    expect(t.stats().nodes).toBe(rebuiltNodes());
    for (let i = 0; i < prefixes.length; i += 2) t.remove(prefixes[i]);
    expect(t.stats().nodes).toBe(rebuiltNodes());
    expect(t.removeValue(1)).toBeGreaterThan(0);
    expect(t.stats().nodes).toBe(rebuiltNodes());
    for (let i = 1; i < prefixes.length; i += 2) t.remove(prefixes[i]);
    expect(t.size).toBe(0);
    expect(t.stats().nodes).toBe(0);
    // Freed nodes are reused: refilling does not grow the arrays.
    const bytes = t.stats().bytes;
    for (let i = 0; i < prefixes.length; i++) t.insert(prefixes[i], i);
    expect(t.stats().bytes).toBe(bytes);
  });

  test("many prefixes: grows, and frees on removal", () => {
    const t = new AllowedIps<number>();
    for (let i = 0; i < 5000; i++) {
      t.insert({ address: new Uint8Array([10, i >> 8, i & 255, 0]), prefix: 24 }, i % 7);
    }
    expect(t.size).toBe(5000);
    expect(t.lookup(new Uint8Array([10, 19, 135, 9]))).toBe((19 * 256 + 135) % 7);
    let removed = 0;
    for (let v = 0; v < 7; v++) removed += t.removeValue(v);
    expect(removed).toBe(5000);
    expect(t.size).toBe(0);
    expect(t.entries().length).toBe(0);
    expect(t.stats().nodes).toBe(0);
  });
});

// ---- randomized comparison with a brute-force linear longest-prefix match ----

/** Small deterministic PRNG (xorshift32), so failures are reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function randomBytes(next: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

function bruteLookup(routes: Array<{ cidr: Cidr; value: number }>, address: Uint8Array): number | undefined {
  let best: { cidr: Cidr; value: number } | undefined;
  for (const r of routes) {
    if (cidrContains(r.cidr, address) && (!best || r.cidr.prefix > best.cidr.prefix)) best = r;
  }
  return best?.value;
}

function masked(address: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(address);
  for (let bit = prefix; bit < out.length * 8; bit++) out[bit >> 3] &= ~(0x80 >> (bit & 7));
  return out;
}

describe("AllowedIps against brute force", () => {
  for (const family of [4, 6] as const) {
    test(`IPv${family}: 2000 random prefixes, 20000 random addresses, then removals`, () => {
      const next = rng(family === 4 ? 0x5eed4 : 0x5eed6);
      const len = family === 4 ? 4 : 16;
      const maxBits = len * 8;
      // A few base addresses so that prefixes nest and share long common parts.
      const bases = Array.from({ length: 16 }, () => randomBytes(next, len));
      const routes = new Map<string, { cidr: Cidr; value: number }>();
      const t = new AllowedIps<number>();
      for (let i = 0; i < 2000; i++) {
        const addr = next() % 3 === 0 ? randomBytes(next, len) : new Uint8Array(bases[next() % bases.length]);
        // Perturb some low bits so neighbours differ at varying depths.
        addr[len - 1 - (next() % 3)] ^= next() & 0xff;
        const prefix = next() % 8 === 0 ? maxBits : next() % (maxBits + 1);
        const c: Cidr = { address: masked(addr, prefix), prefix };
        const value = next() % 50;
        const key = formatCidr(c);
        const old = routes.get(key);
        expect(t.insert(c, value)).toBe(old?.value as number);
        routes.set(key, { cidr: c, value });
      }
      expect(t.size).toBe(routes.size);
      const sorted = [...routes.values()].sort((a, b) => {
        for (let i = 0; i < len; i++) if (a.cidr.address[i] !== b.cidr.address[i]) return a.cidr.address[i] - b.cidr.address[i];
        return a.cidr.prefix - b.cidr.prefix;
      });
      expect(t.entries().map((e) => `${formatCidr(e.cidr)}=${e.value}`)).toEqual(
        sorted.map((r) => `${formatCidr(r.cidr)}=${r.value}`),
      );

      const probes: Uint8Array[] = [];
      for (let i = 0; i < 20000; i++) {
        let a: Uint8Array;
        const kind = next() % 4;
        if (kind === 0) a = randomBytes(next, len);
        else {
          // Near a stored prefix: its network address with random host bits.
          const r = sorted[next() % sorted.length].cidr;
          a = new Uint8Array(r.address);
          const rand = randomBytes(next, len);
          for (let bit = r.prefix; bit < maxBits; bit++) {
            if (kind === 1 || rand[bit >> 3] & (0x80 >> (bit & 7))) a[bit >> 3] |= 0x80 >> (bit & 7);
          }
          if (kind === 3) a[next() % len] ^= 1 << (next() % 8);
        }
        probes.push(a);
      }
      const check = (all: Array<{ cidr: Cidr; value: number }>) => {
        const buf = new Uint8Array(len + 7);
        let mismatches = 0;
        for (const a of probes) {
          const want = bruteLookup(all, a);
          if (t.lookup(a) !== want) mismatches++;
          buf.set(a, 7);
          if (t.lookupPacket(buf, 7, family) !== want) mismatches++;
        }
        expect(mismatches).toBe(0);
      };
      check(sorted);

      // Remove some values and some single prefixes, then compare again.
      for (const v of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
        const expected = [...routes.values()].filter((r) => r.value === v).length;
        expect(t.removeValue(v)).toBe(expected);
        for (const [k, r] of routes) if (r.value === v) routes.delete(k);
      }
      let i = 0;
      for (const [k, r] of [...routes]) {
        if (i++ % 3 !== 0) continue;
        expect(t.remove(r.cidr)).toBe(r.value);
        routes.delete(k);
      }
      expect(t.size).toBe(routes.size);
      check([...routes.values()]);
      const fresh = new AllowedIps<number>();
      for (const r of routes.values()) fresh.insert(r.cidr, r.value);
      expect(t.stats().nodes).toBe(fresh.stats().nodes);

      // Re-insert what was removed on top of the pruned trie.
      for (const r of sorted) {
        t.insert(r.cidr, r.value);
      }
      expect(t.size).toBe(sorted.length);
      check(sorted);
    });
  }

  // Past a few hundred prefixes a /16 jump table is built and then patched on every change;
  // check every step of a mixed workload, with many short prefixes (which patch wide ranges).
  for (const family of [4, 6] as const) {
    test(`IPv${family}: interleaved inserts, removals and lookups across the jump-table threshold`, () => {
      const next = rng(family === 4 ? 0xabc4 : 0xabc6);
      const len = family === 4 ? 4 : 16;
      const maxBits = len * 8;
      const t = new AllowedIps<number>();
      const routes = new Map<string, { cidr: Cidr; value: number }>();
      let mismatches = 0;
      const probe = (a: Uint8Array) => {
        if (t.lookup(a) !== bruteLookup([...routes.values()], a)) mismatches++;
      };
      const near = (c: Cidr) => {
        const a = new Uint8Array(c.address);
        for (let bit = c.prefix; bit < maxBits; bit++) if (next() & 1) a[bit >> 3] |= 0x80 >> (bit & 7);
        return a;
      };
      let jumpBuilt = false;
      for (let step = 0; step < 1500; step++) {
        const action = next() % 40;
        if (action < 30 || routes.size < 10) {
          // Mostly within 10.0.0.0/8-like space so short and long prefixes overlap.
          const addr = randomBytes(next, len);
          addr[0] = 10;
          const r = next() % 10;
          const prefix = r < 3 ? next() % 17 : r < 8 ? 16 + (next() % 17) : next() % (maxBits + 1);
          const c: Cidr = { address: masked(addr, prefix), prefix };
          const value = next() % 50;
          t.insert(c, value);
          routes.set(formatCidr(c), { cidr: c, value });
          probe(near(c));
        } else if (action < 38) {
          const all = [...routes.entries()];
          const [k, r] = all[next() % all.length];
          expect(t.remove(r.cidr)).toBe(r.value);
          routes.delete(k);
          probe(near(r.cidr));
        } else {
          const v = next() % 50;
          let n = 0;
          for (const [k, r] of routes) if (r.value === v) (routes.delete(k), n++);
          expect(t.removeValue(v)).toBe(n);
        }
        for (let i = 0; i < 8; i++) {
          const a = randomBytes(next, len);
          if (i < 6) a[0] = 10;
          probe(a);
        }
        const all = [...routes.values()];
        if (all.length > 0) probe(near(all[next() % all.length].cidr));
        // (Peeks at the private table only to make sure this test reaches it.)
        jumpBuilt ||= (t as unknown as Record<string, { jump: unknown }>)[`v${family}`].jump != null;
      }
      expect(jumpBuilt).toBe(true);
      expect(mismatches).toBe(0);
      expect(t.size).toBe(routes.size);
    });
  }
});
