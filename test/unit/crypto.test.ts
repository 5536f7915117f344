// Cryptographic primitives: published known-answer vectors, agreement between independent
// implementations (libcrypto vs noble AEAD, node:crypto vs noble X25519, our HMAC vs noble's), and
// the WireGuard key format checked against the `wg` tool when it is installed.
import { describe, expect, test } from "bun:test";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { BACKEND_NAMES, loadAeadBackend, selectAeadBackend, TAG_SIZE, type AeadBackend, type AeadKey } from "../../src/crypto/aead.ts";
import { loadLibcryptoBackend } from "../../src/crypto/aead-libcrypto.ts";
import { loadLibgcryptBackend } from "../../src/crypto/aead-libgcrypt.ts";
import { loadLibsodiumBackend } from "../../src/crypto/aead-libsodium.ts";
import { BySizeBackend, LONG_PAYLOAD } from "../../src/crypto/aead-by-size.ts";
import { nobleBackend } from "../../src/crypto/aead-noble.ts";
import {
  aeadOpenOnce,
  aeadSealOnce,
  chacha20poly1305Raw,
  constantTimeEqual,
  forgetX25519Keys,
  hash,
  hmac,
  implementations,
  kdf,
  mac,
  randomBytes,
  wipe,
  x25519,
  x25519NodeCrypto,
  x25519Noble,
  x25519PublicKey,
  xaeadOpen,
  xaeadSeal,
} from "../../src/crypto/primitives.ts";
import { decodeKey, encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from "../../src/crypto/keys.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const range = (n: number, start = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

const libcrypto = loadLibcryptoBackend();
const libsodium = loadLibsodiumBackend();
const libgcrypt = loadLibgcryptBackend();
const bySize = loadAeadBackend("libsodium+libcrypto");
const bySizeGcrypt = loadAeadBackend("libsodium+libgcrypt");
const backends: AeadBackend[] = [bySize, bySizeGcrypt, libsodium, libcrypto, libgcrypt, nobleBackend].filter(
  (b): b is AeadBackend => typeof b !== "string",
);

/** Deterministic pseudo-random bytes so failures reproduce. */
function prng(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = s & 0xff;
    }
    return out;
  };
}

/** WireGuard's nonce for a counter: 4 zero bytes || 64-bit little-endian counter. */
function wgNonce(counter: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(4, counter >>> 0, true);
  v.setUint32(8, Math.floor(counter / 2 ** 32), true);
  return n;
}

describe("ChaCha20-Poly1305 known answers", () => {
  // RFC 8439 §2.8.2.
  const key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const nonce = hex("070000004041424344454647");
  const ad = hex("50515253c0c1c2c3c4c5c6c7");
  const plaintext = ascii(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const ciphertext = hex(`
    d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
    3ff4def08e4b7a9de576d26586cec64b6116`);
  const tag = hex("1ae10b594f09e26a7e902ecbd0600691");

  test("RFC 8439 §2.8.2 seal", () => {
    expect(plaintext.length).toBe(114);
    const out = chacha20poly1305Raw(key, nonce, plaintext, ad);
    expect(toHex(out)).toBe(toHex(ciphertext) + toHex(tag));
  });

  test("RFC 8439 §2.8.2 open, and refusal with other AD", () => {
    const sealed = new Uint8Array([...ciphertext, ...tag]);
    expect(toHex(chacha20poly1305(key, nonce, ad).decrypt(sealed))).toBe(toHex(plaintext));
    expect(() => chacha20poly1305(key, nonce, ad.subarray(1)).decrypt(sealed)).toThrow();
  });

  test("aeadSealOnce uses WireGuard's nonce (zeros || LE64 counter)", () => {
    for (const counter of [0, 1, 0xffffffff, 2 ** 32, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
      const sealed = aeadSealOnce(key, counter, plaintext, ad);
      expect(toHex(sealed)).toBe(toHex(chacha20poly1305Raw(key, wgNonce(counter), plaintext, ad)));
      expect(toHex(aeadOpenOnce(key, counter, sealed, ad)!)).toBe(toHex(plaintext));
      expect(aeadOpenOnce(key, counter + 1, sealed, ad)).toBeNull();
      expect(aeadOpenOnce(key, counter, sealed, new Uint8Array(0))).toBeNull();
    }
    // Handshake messages seal empty plaintexts: the result is just the tag.
    expect(aeadSealOnce(key, 0, new Uint8Array(0), ad).length).toBe(16);
    expect(aeadOpenOnce(key, 0, new Uint8Array(15), ad)).toBeNull();
  });

  test("aeadOpenOnce rejects any flipped bit", () => {
    const sealed = aeadSealOnce(key, 7, plaintext.subarray(0, 20), ad);
    for (let bit = 0; bit < sealed.length * 8; bit += 5) {
      const t = sealed.slice();
      t[bit >> 3] ^= 1 << (bit & 7);
      expect(aeadOpenOnce(key, 7, t, ad)).toBeNull();
    }
  });

  test("the handshake AEADs use libsodium and agree with @noble/ciphers, also on views and empty inputs", () => {
    expect(implementations.aead).toBe("libsodium");
    const big = randomBytes(400);
    for (const [ptLen, adLen] of [[0, 0], [0, 32], [1, 0], [32, 32], [190, 13]]) {
      const k = big.subarray(3, 35);
      const pt = big.subarray(40, 40 + ptLen);
      const a = big.subarray(250, 250 + adLen);
      const n12 = big.subarray(300, 312);
      const n24 = big.subarray(320, 344);
      const sealed = chacha20poly1305Raw(k, n12, pt, a);
      expect(toHex(sealed)).toBe(toHex(chacha20poly1305(k, n12, a).encrypt(pt)));
      const xsealed = xaeadSeal(k, n24, pt, a);
      expect(toHex(xsealed)).toBe(toHex(xchacha20poly1305(k, n24, a).encrypt(pt)));
      expect(toHex(xaeadOpen(k, n24, xsealed, a)!)).toBe(toHex(pt));
      const wg = aeadSealOnce(k, 77, pt, a);
      expect(toHex(aeadOpenOnce(k, 77, wg, a)!)).toBe(toHex(pt));
      for (let bit = 0; bit < wg.length * 8; bit += 7) {
        const bad = wg.slice();
        bad[bit >> 3] ^= 1 << (bit & 7);
        expect(aeadOpenOnce(k, 77, bad, a)).toBeNull();
        const xbad = xsealed.slice();
        xbad[bit >> 3] ^= 1 << (bit & 7);
        expect(xaeadOpen(k, n24, xbad, a)).toBeNull();
      }
    }
  });

  test("the handshake AEADs refuse keys and nonces of the wrong size instead of reading past them", () => {
    const k = randomBytes(32);
    expect(() => chacha20poly1305Raw(k.subarray(0, 31), new Uint8Array(12), new Uint8Array(4), new Uint8Array(0))).toThrow(RangeError);
    expect(() => chacha20poly1305Raw(k, new Uint8Array(11), new Uint8Array(4), new Uint8Array(0))).toThrow(RangeError);
    expect(() => xaeadSeal(k, new Uint8Array(12), new Uint8Array(4), new Uint8Array(0))).toThrow(RangeError);
    expect(() => xaeadOpen(k, new Uint8Array(23), new Uint8Array(20), new Uint8Array(0))).toThrow(RangeError);
    expect(() => aeadOpenOnce(new Uint8Array(16), 0, new Uint8Array(20), new Uint8Array(0))).toThrow(RangeError);
  });

  test("XChaCha20-Poly1305 round trip, AD binding and tamper refusal", () => {
    const k = range(32, 0x80);
    const n = range(24, 0x40);
    const sealed = xaeadSeal(k, n, range(16), range(32, 9));
    expect(sealed.length).toBe(32);
    expect(toHex(xaeadOpen(k, n, sealed, range(32, 9))!)).toBe(toHex(range(16)));
    expect(xaeadOpen(k, n, sealed, range(32, 10))).toBeNull();
    expect(xaeadOpen(k, range(24, 0x41), sealed, range(32, 9))).toBeNull();
    sealed[3] ^= 0x80;
    expect(xaeadOpen(k, n, sealed, range(32, 9))).toBeNull();
    expect(xaeadOpen(k, n, new Uint8Array(10), range(32, 9))).toBeNull();
  });
});

describe("data-path AEAD backends", () => {
  test("a backend is selected; libsodium and libcrypto are available on this machine", () => {
    const b = selectAeadBackend();
    expect(BACKEND_NAMES).toContain(b.name);
    // libsodium.so.23 and libcrypto.so.3 are installed by scripts/install-deps.sh and in the
    // image, libgcrypt.so.20 comes with apt (libapt-pkg) on Debian; say why if one did not load.
    expect(libsodium).not.toBeTypeOf("string");
    expect(libcrypto).not.toBeTypeOf("string");
    expect(libgcrypt).not.toBeTypeOf("string");
    if (!process.env.WONTUN_AEAD) expect(b.name).toBe("libsodium+libgcrypt");
  });

  test("WONTUN_AEAD forces a backend; an unknown value is an error", () => {
    const pick = (value: string) => {
      const r = Bun.spawnSync(
        [process.execPath, "-e", `import { selectAeadBackend } from "${import.meta.dir}/../../src/crypto/aead.ts"; console.log(selectAeadBackend().name)`],
        { env: { ...process.env, WONTUN_AEAD: value }, stdout: "pipe", stderr: "pipe" },
      );
      return r.exitCode === 0 ? r.stdout.toString().trim() : `error: ${r.stderr.toString()}`;
    };
    expect(pick("noble")).toBe("noble");
    expect(pick("")).toBe("libsodium+libgcrypt");
    expect(pick("libsodium+libcrypto")).toBe("libsodium+libcrypto");
    expect(pick("LIBGCRYPT")).toBe("libgcrypt");
    expect(pick("libcrypto")).toBe("libcrypto");
    expect(pick(" LibSodium ")).toBe("libsodium");
    expect(pick("openssl")).toContain("WONTUN_AEAD must be");
  });

  for (const backend of backends) {
    describe(backend.name, () => {
      test("matches the one-shot AEAD (empty AD, WireGuard nonce)", () => {
        const rnd = prng(42);
        for (const len of [0, 1, 15, 16, 17, 63, 64, 65, 1420, 1500]) {
          const keyBytes = rnd(32);
          const counter = len * 1_000_003;
          const pt = rnd(len);
          const buf = new Uint8Array(new ArrayBuffer(len + 40));
          buf.set(pt, 7);
          const k = backend.createKey(keyBytes);
          backend.seal(k, counter, buf, 7, len);
          expect(toHex(buf.subarray(7, 7 + len + TAG_SIZE))).toBe(toHex(aeadSealOnce(keyBytes, counter, pt, new Uint8Array(0))));
          expect(backend.open(k, counter, buf, 7, len + TAG_SIZE)).toBe(true);
          expect(toHex(buf.subarray(7, 7 + len))).toBe(toHex(pt));
          backend.destroyKey(k);
        }
      });

      test("leaves bytes outside [off, off+len+16) alone", () => {
        const buf = new Uint8Array(new ArrayBuffer(200)).fill(0xaa);
        const k = backend.createKey(range(32));
        backend.seal(k, 3, buf, 50, 100);
        for (let i = 0; i < 50; i++) expect(buf[i]).toBe(0xaa);
        for (let i = 166; i < 200; i++) expect(buf[i]).toBe(0xaa);
        expect(backend.open(k, 3, buf, 50, 116)).toBe(true);
        for (let i = 50; i < 150; i++) expect(buf[i]).toBe(0xaa);
        for (let i = 166; i < 200; i++) expect(buf[i]).toBe(0xaa);
        backend.destroyKey(k);
      });

      test("tamper detection: any flipped bit, wrong counter, wrong key, short input", () => {
        const k = backend.createKey(range(32, 1));
        const other = backend.createKey(range(32, 2));
        const original = new Uint8Array(new ArrayBuffer(80));
        original.set(range(64), 0);
        backend.seal(k, 99, original, 0, 64);
        for (let bit = 0; bit < 80 * 8; bit += 3) {
          const t = new Uint8Array(new ArrayBuffer(80));
          t.set(original);
          t[bit >> 3] ^= 1 << (bit & 7);
          expect(backend.open(k, 99, t, 0, 80)).toBe(false);
        }
        const copy = () => {
          const t = new Uint8Array(new ArrayBuffer(80));
          t.set(original);
          return t;
        };
        expect(backend.open(k, 98, copy(), 0, 80)).toBe(false);
        expect(backend.open(k, 99 + 2 ** 32, copy(), 0, 80)).toBe(false);
        expect(backend.open(other, 99, copy(), 0, 80)).toBe(false);
        expect(backend.open(k, 99, copy(), 0, 15)).toBe(false);
        expect(backend.open(k, 99, copy(), 0, 79)).toBe(false);
        expect(backend.open(k, 99, copy(), 0, 80)).toBe(true);
        backend.destroyKey(k);
        backend.destroyKey(other);
      });

      test("the empty message (keepalive) is just a tag and authenticates", () => {
        const k = backend.createKey(range(32, 5));
        const buf = new Uint8Array(new ArrayBuffer(16));
        backend.seal(k, 0, buf, 0, 0);
        expect(toHex(buf)).toBe(toHex(aeadSealOnce(range(32, 5), 0, new Uint8Array(0), new Uint8Array(0))));
        expect(backend.open(k, 0, buf, 0, 16)).toBe(true);
        buf[15] ^= 1;
        expect(backend.open(k, 0, buf, 0, 16)).toBe(false);
        backend.destroyKey(k);
      });

      test("counters above 2^32 use the high word; 2^53-1 is the largest", () => {
        const k = backend.createKey(range(32, 9));
        const seal = (counter: number) => {
          const buf = new Uint8Array(new ArrayBuffer(48));
          buf.set(range(32));
          backend.seal(k, counter, buf, 0, 32);
          return toHex(buf);
        };
        const lowOnly = seal(5);
        expect(seal(5 + 2 ** 32)).not.toBe(lowOnly);
        expect(seal(2 ** 32)).not.toBe(seal(0));
        for (const c of [2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 48 + 7, Number.MAX_SAFE_INTEGER]) {
          expect(seal(c)).toBe(toHex(aeadSealOnce(range(32, 9), c, range(32), new Uint8Array(0))));
        }
        expect(() => seal(-1)).toThrow(RangeError);
        expect(() => seal(1.5)).toThrow(RangeError);
        expect(() => seal(2 ** 53)).toThrow(RangeError);
        backend.destroyKey(k);
      });

      test("refuses ranges outside the buffer and keys of the wrong size", () => {
        const k = backend.createKey(range(32));
        const buf = new Uint8Array(new ArrayBuffer(100));
        expect(() => backend.seal(k, 0, buf, 0, 85)).toThrow(RangeError);
        expect(() => backend.seal(k, 0, buf, 90, 0)).toThrow(RangeError);
        expect(() => backend.seal(k, 0, buf, -1, 10)).toThrow(RangeError);
        expect(() => backend.open(k, 0, buf, 50, 51)).toThrow(RangeError);
        expect(() => backend.createKey(range(31))).toThrow(RangeError);
        backend.seal(k, 0, buf, 0, 84); // exactly fits
        backend.destroyKey(k);
        expect(() => backend.seal(k, 0, buf, 0, 10)).toThrow();
        backend.destroyKey(k); // twice is harmless
      });

      test("a key made for one use works for that use and interoperates with a full key", () => {
        const sealer = backend.createKey(range(32, 3), "seal");
        const opener = backend.createKey(range(32, 3), "open");
        const both = backend.createKey(range(32, 3));
        const buf = new Uint8Array(new ArrayBuffer(64 + 16));
        buf.set(range(64));
        backend.seal(sealer, 7, buf, 0, 64);
        const copy = buf.slice();
        expect(backend.open(opener, 7, buf, 0, 80)).toBe(true);
        expect(toHex(buf.subarray(0, 64))).toBe(toHex(range(64)));
        expect(backend.open(both, 7, copy, 0, 80)).toBe(true);
        if (backend.name === "libcrypto") {
          expect(() => backend.open(sealer, 7, buf, 0, 80)).toThrow(/sealing only/);
          expect(() => backend.seal(opener, 7, buf, 0, 64)).toThrow(/opening only/);
        }
        for (const k of [sealer, opener, both]) backend.destroyKey(k);
      });
    });
  }

  test("libsodium+libcrypto splits by payload size and agrees with both around the boundary", () => {
    if (typeof bySize === "string" || typeof libsodium === "string" || typeof libcrypto === "string") return;
    for (const len of [0, 1, LONG_PAYLOAD - 1, LONG_PAYLOAD, LONG_PAYLOAD + 1, 1420]) {
      const keyBytes = range(32, len & 0xff);
      const a = new Uint8Array(new ArrayBuffer(len + 16));
      a.set(range(len, 3));
      const k = bySize.createKey(keyBytes);
      bySize.seal(k, 5, a, 0, len);
      for (const single of [libsodium, libcrypto]) {
        const copy = a.slice();
        const sk = single.createKey(keyBytes);
        expect(single.open(sk, 5, copy, 0, len + 16)).toBe(true);
        single.seal(sk, 6, copy, 0, len);
        expect(bySize.open(k, 6, copy, 0, len + 16)).toBe(true);
        expect(toHex(copy.subarray(0, len))).toBe(toHex(range(len, 3)));
        single.destroyKey(sk);
      }
      bySize.destroyKey(k);
    }
  });

  test("libsodium+libcrypto makes a key's libcrypto half only when a long payload comes", () => {
    if (typeof bySize === "string" || typeof libcrypto === "string") return;
    const keyBytes = range(32, 9);
    const sealer = bySize.createKey(keyBytes, "seal") as AeadKey & { long: AeadKey | null };
    const opener = bySize.createKey(keyBytes, "open") as AeadKey & { long: AeadKey | null };
    const buf = new Uint8Array(new ArrayBuffer(1500));
    for (let i = 0; i < 3; i++) {
      buf.set(range(100, i));
      bySize.seal(sealer, i, buf, 0, 100);
      expect(bySize.open(opener, i, buf, 0, 116)).toBe(true);
    }
    expect(sealer.long).toBeNull();
    expect(opener.long).toBeNull();
    for (const [counter, len] of [[3, 1400], [4, 60], [5, LONG_PAYLOAD]] as const) {
      buf.set(range(len, counter));
      bySize.seal(sealer, counter, buf, 0, len);
      expect(bySize.open(opener, counter, buf, 0, len + 16)).toBe(true);
      expect(toHex(buf.subarray(0, len))).toBe(toHex(range(len, counter)));
    }
    expect(sealer.long).not.toBeNull();
    expect(opener.long).not.toBeNull();
    // A forged long datagram also makes the opener's half, and fails to open like any other.
    const fresh = bySize.createKey(keyBytes, "open");
    expect(bySize.open(fresh, 9, new Uint8Array(1400), 0, 1400)).toBe(false);
    for (const k of [sealer, opener, fresh]) bySize.destroyKey(k);
  });

  test("libsodium+libcrypto without libcrypto: told once, long payloads stay on libsodium", () => {
    if (typeof libsodium === "string") return;
    let loads = 0;
    const told: string[] = [];
    const backend = new BySizeBackend("libsodium+libcrypto", libsodium, () => {
      loads++;
      return "cannot load libcrypto (test)";
    });
    backend.onLongUnavailable = (why) => told.push(why);
    const keyBytes = range(32, 4);
    const a = backend.createKey(keyBytes, "seal");
    const b = backend.createKey(keyBytes, "open");
    const buf = new Uint8Array(new ArrayBuffer(1500));
    for (let counter = 0; counter < 3; counter++) {
      buf.set(range(1400, counter));
      backend.seal(a, counter, buf, 0, 1400);
      const copy = buf.slice(0, 1416);
      expect(libsodium.open(libsodium.createKey(keyBytes), counter, copy, 0, 1416)).toBe(true);
      expect(backend.open(b, counter, buf, 0, 1416)).toBe(true);
      expect(toHex(buf.subarray(0, 1400))).toBe(toHex(range(1400, counter)));
    }
    expect(loads).toBe(1);
    expect(told).toEqual(["cannot load libcrypto (test)"]);
    backend.destroyKey(a);
    backend.destroyKey(b);
  });

  for (const native of backends.filter((b) => b.name !== "noble")) {
    test(`${native.name} survives full garbage collections (buffers behind cached addresses stay alive)`, () => {
      // Regression: an out-length box reachable only through its cached address was collected by a
      // full GC, after which OpenSSL wrote into freed memory and the process crashed later.
      const keyBytes = range(32, 77);
      const k = native.createKey(keyBytes);
      const buf = new Uint8Array(new ArrayBuffer(1500));
      for (let round = 0; round < 5; round++) {
        Bun.gc(true);
        let junk: Uint8Array[] = [];
        for (let i = 0; i < 2000; i++) junk.push(new Uint8Array(64 + (i % 200)));
        junk = [];
        for (let i = 0; i < 200; i++) {
          buf.set(range(1400, i), 0);
          native.seal(k, round * 1000 + i, buf, 0, 1400);
          expect(native.open(k, round * 1000 + i, buf, 0, 1416)).toBe(true);
        }
        expect(toHex(buf.subarray(0, 1400))).toBe(toHex(range(1400, 199)));
        expect(junk.length).toBe(0);
      }
      native.destroyKey(k);
      Bun.gc(true);
    });

    test(`${native.name} and noble produce identical bytes and open each other's output`, () => {
      const rnd = prng(7);
      for (let round = 0; round < 200; round++) {
        const keyBytes = rnd(32);
        const len = round < 10 ? round : (rnd(2)[0] | (rnd(1)[0] << 8)) % 1501;
        const counter = round % 3 === 0 ? round : Math.floor(Math.random() * Number.MAX_SAFE_INTEGER);
        const off = rnd(1)[0] % 8;
        const a = new Uint8Array(new ArrayBuffer(off + len + 16 + 3));
        a.set(rnd(len), off);
        const b = a.slice();
        const plain = a.slice();
        const ka = native.createKey(keyBytes);
        const kb = nobleBackend.createKey(keyBytes);
        native.seal(ka, counter, a, off, len);
        nobleBackend.seal(kb, counter, b, off, len);
        expect(toHex(a)).toBe(toHex(b));
        // each opens the other's output
        expect(native.open(ka, counter, b, off, len + 16)).toBe(true);
        expect(nobleBackend.open(kb, counter, a, off, len + 16)).toBe(true);
        expect(toHex(a.subarray(off, off + len))).toBe(toHex(plain.subarray(off, off + len)));
        expect(toHex(b.subarray(off, off + len))).toBe(toHex(plain.subarray(off, off + len)));
        native.destroyKey(ka);
        nobleBackend.destroyKey(kb);
      }
    });
  }
});

describe("BLAKE2s", () => {
  test("RFC 7693 Appendix B: BLAKE2s-256(\"abc\")", () => {
    expect(toHex(hash(ascii("abc")))).toBe("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
    expect(toHex(hash(ascii("a"), ascii(""), ascii("bc")))).toBe("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
    expect(hash(ascii("abc"))).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(hash(ascii("abc")))).toBe(false);
  });

  test("hash agrees with noble on many lengths", () => {
    const rnd = prng(3);
    for (let len = 0; len < 300; len += 7) {
      const m = rnd(len);
      expect(toHex(hash(m.subarray(0, len >> 1), m.subarray(len >> 1)))).toBe(toHex(blake2s(m)));
    }
  });

  test("keyed BLAKE2s: reference KAT (key 00..1f, 32-byte output) and WireGuard's 16-byte MAC", () => {
    const key = range(32);
    // blake2s-kat.txt of the BLAKE2 reference package, keyed entries for inputs "" and "00".
    expect(toHex(blake2s(new Uint8Array(0), { key }))).toBe("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49");
    expect(toHex(blake2s(new Uint8Array(1), { key }))).toBe("40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1");
    // 16-byte output: computed independently with OpenSSL 3.0 (`openssl mac ... size:16 BLAKE2SMAC`)
    // and CPython (hashlib.blake2s(b"abc", key=bytes(range(32)), digest_size=16)).
    expect(toHex(mac(key, ascii("abc")))).toBe("61ba5f165c194692e09d12520cc4c74a");
    expect(toHex(mac(key, ascii("ab"), ascii("c")))).toBe("61ba5f165c194692e09d12520cc4c74a");
    expect(mac(range(16), ascii("x")).length).toBe(16); // 16-byte keys (cookies) work too
  });

  test("HMAC-BLAKE2s agrees with noble's hmac and with CPython", () => {
    const rnd = prng(11);
    for (const keyLen of [0, 1, 16, 32, 63, 64, 65, 100]) {
      for (const msgLen of [0, 1, 32, 64, 65, 200]) {
        const k = rnd(keyLen);
        const m = rnd(msgLen);
        expect(toHex(hmac(k, m.subarray(0, 10), m.subarray(10)))).toBe(toHex(nobleHmac(blake2s, k, m)));
      }
    }
    // CPython: hmac.new(b"k" * 32, b"hello", hashlib.blake2s).hexdigest()
    expect(toHex(hmac(ascii("k".repeat(32)), ascii("hello")))).toBe("e3f516d0d8475fd83377f0e1dd4a42793a4dfe87bcf90bc6b7c823b5fd7db800");
  });

  test("kdf is WireGuard's HKDF chain", () => {
    const ck = range(32, 100);
    const input = range(32, 200);
    const [t1, t2, t3] = kdf(ck, input, 3);
    const t0 = nobleHmac(blake2s, ck, input);
    const e1 = nobleHmac(blake2s, t0, new Uint8Array([1]));
    const e2 = nobleHmac(blake2s, t0, new Uint8Array([...e1, 2]));
    const e3 = nobleHmac(blake2s, t0, new Uint8Array([...e2, 3]));
    expect([toHex(t1), toHex(t2), toHex(t3)]).toEqual([toHex(e1), toHex(e2), toHex(e3)]);
    expect(kdf(ck, input, 1).map(toHex)).toEqual([toHex(e1)]);
    expect(kdf(ck, input, 2).map(toHex)).toEqual([toHex(e1), toHex(e2)]);
    expect(kdf(ck, new Uint8Array(0), 2)[0]).not.toEqual(t1);
  });
});

describe("X25519", () => {
  test("RFC 7748 §5.2 vectors (the second has the top bit of u set)", () => {
    const cases = [
      [
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
      ],
      [
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
      ],
    ];
    for (const [k, u, out] of cases) {
      expect(toHex(x25519(hex(k), hex(u))!)).toBe(out);
      expect(toHex(x25519Noble(hex(k), hex(u))!)).toBe(out);
    }
  });

  test("RFC 7748 §6.1 Diffie-Hellman", () => {
    const alicePriv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const alicePub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const bobPriv = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    const bobPub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    expect(toHex(x25519PublicKey(alicePriv))).toBe(alicePub);
    expect(toHex(publicKeyOf(bobPriv))).toBe(bobPub);
    expect(toHex(x25519(alicePriv, hex(bobPub))!)).toBe(shared);
    expect(toHex(x25519(bobPriv, hex(alicePub))!)).toBe(shared);
  });

  test("libsodium is used and agrees with noble and node:crypto on random keys", () => {
    expect(implementations.x25519).toBe("libsodium");
    const privs = Array.from({ length: 7 }, () => randomBytes(32));
    const pubs = privs.map((p) => x25519PublicKey(p));
    for (let i = 0; i < privs.length; i++) {
      for (let j = 0; j < privs.length; j++) {
        const a = x25519(privs[i], pubs[j])!;
        expect(toHex(a)).toBe(toHex(x25519Noble(privs[i], pubs[j])!));
        expect(toHex(a)).toBe(toHex(x25519NodeCrypto(privs[i], pubs[j])!));
        expect(toHex(a)).toBe(toHex(x25519(privs[j], pubs[i])!));
      }
    }
    // Keys inside larger buffers (a view with an offset) are read from the right place.
    const big = new Uint8Array(100);
    big.set(privs[1], 7);
    big.set(pubs[2], 50);
    expect(toHex(x25519(big.subarray(7, 39), big.subarray(50, 82))!)).toBe(toHex(x25519(privs[1], pubs[2])!));
  });

  test("the node:crypto fallback's cache of imported private keys keeps its own copies", () => {
    const privs = Array.from({ length: 4 }, () => randomBytes(32));
    const pubs = privs.map((p) => x25519PublicKey(p));
    // A cached private key whose caller's copy is wiped must not be found by its old value.
    const p = privs[0].slice();
    const before = toHex(x25519NodeCrypto(p, pubs[1])!);
    wipe(p);
    expect(toHex(x25519NodeCrypto(privs[0], pubs[1])!)).toBe(before);
    forgetX25519Keys();
    expect(toHex(x25519NodeCrypto(privs[0], pubs[1])!)).toBe(before);
    // The cache keeps its own copy even of a Buffer (whose slice() shares memory): wiping the
    // caller's Buffer must neither change the cache nor be changed by it.
    const bufPriv = Buffer.from(randomBytes(32));
    x25519NodeCrypto(bufPriv, pubs[2]);
    bufPriv.fill(0);
    expect(toHex(x25519NodeCrypto(new Uint8Array(32), pubs[2])!)).toBe(toHex(x25519Noble(new Uint8Array(32), pubs[2])!));
    const again = Buffer.from(randomBytes(32));
    const expected = toHex(x25519Noble(again, pubs[3])!);
    expect(toHex(x25519NodeCrypto(again, pubs[3])!)).toBe(expected); // cached now
    for (let i = 0; i < 6; i++) x25519NodeCrypto(randomBytes(32), pubs[3]); // evict everything
    expect(toHex(again)).not.toBe("00".repeat(32));
    expect(toHex(x25519NodeCrypto(again, pubs[3])!)).toBe(expected);
    forgetX25519Keys();
  });

  test("low-order public keys give null (all-zero shared secret)", () => {
    const priv = generatePrivateKey();
    const lowOrder = [
      new Uint8Array(32), // u = 0
      hex("0100000000000000000000000000000000000000000000000000000000000000"), // u = 1
      hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), // order 8
      hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"), // order 8
      hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // p - 1
    ];
    for (const pub of lowOrder) {
      expect(x25519(priv, pub)).toBeNull();
      expect(x25519Noble(priv, pub)).toBeNull();
    }
    expect(() => x25519(priv, new Uint8Array(31))).toThrow(RangeError);
  });
});

describe("WireGuard keys", () => {
  test("generatePrivateKey clamps like wg genkey", () => {
    for (let i = 0; i < 50; i++) {
      const k = generatePrivateKey();
      expect(k.length).toBe(32);
      expect(k[0] & 7).toBe(0);
      expect(k[31] & 0x80).toBe(0);
      expect(k[31] & 0x40).toBe(0x40);
    }
    expect(generatePresharedKey().length).toBe(32);
    expect(toHex(generatePresharedKey())).not.toBe(toHex(generatePresharedKey()));
  });

  test("encodeKey / decodeKey round trip", () => {
    for (let i = 0; i < 50; i++) {
      const k = randomBytes(32);
      const text = encodeKey(k);
      expect(text.length).toBe(44);
      expect(text.endsWith("=")).toBe(true);
      expect(toHex(decodeKey(text) as Uint8Array)).toBe(toHex(k));
      expect(toHex(decodeKey(` ${text}\n`) as Uint8Array)).toBe(toHex(k));
    }
    expect(encodeKey(new Uint8Array(32))).toBe("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    expect(encodeKey(range(40).subarray(8))).toBe(encodeKey(range(32, 8))); // views are fine
    expect(() => encodeKey(new Uint8Array(31))).toThrow(RangeError);
  });

  test("decodeKey reasons never repeat the text", () => {
    const good = encodeKey(range(32));
    const bad: Array<[string, string]> = [
      [good.slice(0, 43), "expected 44 base64 characters"],
      [good + "A", "expected 44 base64 characters"],
      ["", "expected 44 base64 characters"],
      [good.slice(0, 10) + "!" + good.slice(11), "invalid base64"],
      [good.slice(0, 43) + "A", "33 bytes"],
      [Buffer.alloc(31, 7).toString("base64"), "31 bytes"],
      [Buffer.alloc(33, 7).toString("base64"), "33 bytes"],
      [good.slice(0, 42) + "B=", "bits beyond 32 bytes"], // non-canonical: wg rejects it too
    ];
    for (const [text, why] of bad) {
      const r = decodeKey(text);
      expect(typeof r).toBe("string");
      expect(r as string).toStartWith("not a WireGuard key: ");
      expect(r as string).toContain(why);
      if (text.length > 4) expect(r as string).not.toContain(text);
    }
  });

  const wg = Bun.which("wg");
  test.skipIf(!wg)("publicKeyOf matches `wg pubkey`, and wg accepts our keys", () => {
    const run = (args: string[], input?: string) => {
      const r = Bun.spawnSync([wg!, ...args], { stdin: input === undefined ? "ignore" : Buffer.from(input), stderr: "pipe" });
      expect(r.exitCode).toBe(0);
      return r.stdout.toString().trim();
    };
    for (let i = 0; i < 4; i++) {
      const fromWg = run(["genkey"]);
      const priv = decodeKey(fromWg) as Uint8Array;
      expect(priv).toBeInstanceOf(Uint8Array);
      expect(encodeKey(publicKeyOf(priv))).toBe(run(["pubkey"], fromWg + "\n"));
    }
    // Our generated key, and an unclamped random one (both clamp before multiplying).
    for (const priv of [generatePrivateKey(), randomBytes(32)]) {
      expect(encodeKey(publicKeyOf(priv))).toBe(run(["pubkey"], encodeKey(priv) + "\n"));
    }
    expect(decodeKey(run(["genpsk"]))).toBeInstanceOf(Uint8Array);
  });
});

describe("utilities", () => {
  test("constantTimeEqual, wipe, randomBytes", () => {
    expect(constantTimeEqual(range(32), range(32))).toBe(true);
    expect(constantTimeEqual(range(32), range(32, 1))).toBe(false);
    expect(constantTimeEqual(range(32), range(31))).toBe(false);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    const b = range(10, 1);
    wipe(b);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(randomBytes(100_000).length).toBe(100_000);
    expect(randomBytes(0).length).toBe(0);
  });
});
