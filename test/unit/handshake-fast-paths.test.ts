// The handshake's switchable fast paths: OpenSSL's keyed BLAKE2s for mac1/mac2/cookies
// (WONTUN_MAC) and the cached start of the Noise transcript (WONTUN_NOISE_CACHE).
import { describe, expect, test } from "bun:test";
import { libcryptoKeyedBlake2s } from "../../src/crypto/libcrypto-mac.ts";
import { implementations, mac, macNoble, randomBytes } from "../../src/crypto/primitives.ts";
import { CONSTRUCTION, IDENTIFIER } from "../../src/protocol/wireguard/constants.ts";
import { SymmetricState, noiseCacheEnabled } from "../../src/protocol/wireguard/noise.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("keyed BLAKE2s through libcrypto", () => {
  const lib = libcryptoKeyedBlake2s();
  const available = typeof lib !== "string";

  test.skipIf(!available)("agrees with noble for every key and input length, subarrays included", () => {
    const k = lib as Exclude<typeof lib, string>;
    const big = randomBytes(400);
    for (const keyLength of [1, 16, 31, 32]) {
      for (const length of [0, 1, 63, 64, 65, 116, 132, 200]) {
        const key = big.subarray(7, 7 + keyLength);
        const data = big.subarray(100, 100 + length);
        expect(hex(k.mac16(key, data))).toBe(hex(macNoble(key, data)));
      }
    }
  });

  test.skipIf(!available)("returns a fresh array each call and refuses bad keys", () => {
    const k = lib as Exclude<typeof lib, string>;
    const a = k.mac16(new Uint8Array(32), new Uint8Array(10));
    const b = k.mac16(new Uint8Array(32).fill(1), new Uint8Array(10));
    expect(a).not.toBe(b);
    expect(hex(a)).not.toBe(hex(b));
    expect(() => k.mac16(new Uint8Array(0), new Uint8Array(1))).toThrow(RangeError);
    expect(() => k.mac16(new Uint8Array(33), new Uint8Array(1))).toThrow(RangeError);
  });

  test("mac() uses it unless WONTUN_MAC=noble, and agrees with noble either way", () => {
    const key = randomBytes(32);
    const msg = randomBytes(148);
    expect(hex(mac(key, msg.subarray(0, 116)))).toBe(hex(macNoble(key, msg.subarray(0, 116))));
    expect(hex(mac(key, msg.subarray(0, 50), msg.subarray(50, 116)))).toBe(hex(macNoble(key, msg.subarray(0, 116))));
    const wanted = process.env.WONTUN_MAC?.trim().toLowerCase() === "noble" || !available ? "noble" : "libcrypto";
    expect(implementations.mac).toBe(wanted);
  });

  test("WONTUN_MAC=noble in a fresh process turns it off", () => {
    const r = Bun.spawnSync(
      [process.execPath, "-e", 'import { mac, implementations } from "./src/crypto/primitives.ts"; mac(new Uint8Array(32), new Uint8Array(3)); console.log(implementations.mac)'],
      { env: { ...process.env, WONTUN_MAC: "noble" }, cwd: `${import.meta.dir}/../..` },
    );
    expect(r.stdout.toString().trim()).toBe("noble");
  });
});

describe("SymmetricState.start", () => {
  const fresh = (key: Uint8Array) => {
    const st = new SymmetricState(CONSTRUCTION);
    st.mixHash(IDENTIFIER);
    st.mixHash(key);
    return st;
  };

  test("same state as InitializeSymmetric + MixHash(prologue) + MixHash(key), cached or not", () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    for (const key of [k1, k1, k2, k1, k2, k2]) {
      const a = SymmetricState.start(CONSTRUCTION, IDENTIFIER, key);
      const b = fresh(key);
      expect(hex(a.h)).toBe(hex(b.h));
      expect(hex(a.ck)).toBe(hex(b.ck));
    }
    expect(typeof noiseCacheEnabled).toBe("boolean");
  });

  test("the cache is not shared state: mixing into one start leaves the next untouched", () => {
    const key = randomBytes(32);
    const a = SymmetricState.start(CONSTRUCTION, IDENTIFIER, key);
    a.mixHash(randomBytes(32));
    a.mixKey(randomBytes(32));
    a.h.fill(0);
    a.ck.fill(0);
    const b = SymmetricState.start(CONSTRUCTION, IDENTIFIER, key);
    expect(hex(b.h)).toBe(hex(fresh(key).h));
    expect(hex(b.ck)).toBe(hex(fresh(key).ck));
  });

  test("a different prologue or name is not served from the cache", () => {
    const key = randomBytes(32);
    SymmetricState.start(CONSTRUCTION, IDENTIFIER, key);
    const other = SymmetricState.start(CONSTRUCTION, new TextEncoder().encode("other prologue"), key);
    expect(hex(other.h)).not.toBe(hex(fresh(key).h));
    const otherName = SymmetricState.start("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b", IDENTIFIER, key);
    expect(hex(otherName.h)).not.toBe(hex(fresh(key).h));
  });
});
