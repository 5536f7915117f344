// The Noise IKpsk2 core against the cacophony project's published test vector for
// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (test/fixtures/cacophony-ikpsk2.json).
import { describe, expect, test } from "bun:test";
import vector from "../fixtures/cacophony-ikpsk2.json";
import { IKInitiator, IKResponder } from "../../src/protocol/wireguard/noise.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import { aeadOpenOnce, aeadSealOnce, x25519 } from "../../src/crypto/primitives.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const pair = (priv: string) => ({ privateKey: hex(priv), publicKey: publicKeyOf(hex(priv)) });

describe("Noise IKpsk2: cacophony vector", () => {
  test("handshake messages, handshake hash and transport messages match byte for byte", () => {
    const prologue = hex(vector.init_prologue);
    const psk = hex(vector.init_psks[0]);
    const respStatic = pair(vector.resp_static);
    expect(toHex(respStatic.publicKey)).toBe(toHex(publicKeyOf(hex(vector.resp_static))));
    expect(vector.init_remote_static).toBe(toHex(respStatic.publicKey));

    const initiator = new IKInitiator(vector.protocol_name, prologue, pair(vector.init_static), respStatic.publicKey, psk, pair(vector.init_ephemeral));
    const responder = new IKResponder(vector.protocol_name, hex(vector.resp_prologue), respStatic);

    const [m0, m1, ...transport] = vector.messages;
    const msg1 = initiator.writeMessage1(hex(m0.payload))!;
    expect(toHex(msg1)).toBe(m0.ciphertext);
    const payload1 = responder.readMessage1(msg1)!;
    expect(toHex(payload1)).toBe(m0.payload);
    expect(toHex(responder.rs!)).toBe(toHex(publicKeyOf(hex(vector.init_static))));

    const msg2 = responder.writeMessage2(pair(vector.resp_ephemeral), psk, hex(m1.payload))!;
    expect(toHex(msg2)).toBe(m1.ciphertext);
    expect(toHex(initiator.readMessage2(msg2)!)).toBe(m1.payload);

    expect(toHex(initiator.state.h)).toBe(vector.handshake_hash);
    expect(toHex(responder.state.h)).toBe(vector.handshake_hash);

    // Transport: messages alternate initiator, responder, ...; each direction counts from 0.
    const [i2r, r2i] = initiator.state.split();
    const [i2rR, r2iR] = responder.state.split();
    expect(toHex(i2r)).toBe(toHex(i2rR));
    expect(toHex(r2i)).toBe(toHex(r2iR));
    const counters = [0, 0];
    transport.forEach((m, i) => {
      const dir = i % 2;
      const key = dir === 0 ? i2r : r2i;
      const ct = aeadSealOnce(key, counters[dir]++, hex(m.payload), new Uint8Array(0));
      expect(toHex(ct)).toBe(m.ciphertext);
      expect(toHex(aeadOpenOnce(key, counters[dir] - 1, ct, new Uint8Array(0))!)).toBe(m.payload);
    });
  });

  test("a tampered message 1 or 2 does not authenticate", () => {
    const prologue = hex(vector.init_prologue);
    const psk = hex(vector.init_psks[0]);
    const respStatic = pair(vector.resp_static);
    const initiator = new IKInitiator(vector.protocol_name, prologue, pair(vector.init_static), respStatic.publicKey, psk, pair(vector.init_ephemeral));
    const msg1 = initiator.writeMessage1(hex(vector.messages[0].payload))!;
    for (const at of [0, 40, msg1.length - 1]) {
      const bad = msg1.slice();
      bad[at] ^= 1;
      expect(new IKResponder(vector.protocol_name, prologue, respStatic).readMessage1(bad)).toBeNull();
    }
    const responder = new IKResponder(vector.protocol_name, prologue, respStatic);
    responder.readMessage1(msg1);
    const msg2 = responder.writeMessage2(pair(vector.resp_ephemeral), new Uint8Array(32), hex(vector.messages[1].payload))!;
    // Wrong psk on the responder: the initiator must reject message 2.
    expect(initiator.readMessage2(msg2)).toBeNull();
  });
});

describe("Noise IKpsk2: the static-static DH supplied by the caller", () => {
  const pair = () => {
    const privateKey = crypto.getRandomValues(new Uint8Array(32));
    return { privateKey, publicKey: publicKeyOf(privateKey) };
  };
  const i = pair();
  const r = pair();
  const e = pair();
  const psk = new Uint8Array(32);
  const payload = new Uint8Array([1, 2, 3]);

  test("a precomputed DH(s, rs) gives the initiator the same message as computing it", () => {
    const plain = new IKInitiator("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", new Uint8Array(0), i, r.publicKey, psk, e);
    const cached = new IKInitiator("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", new Uint8Array(0), i, r.publicKey, psk, e, x25519(i.privateKey, r.publicKey));
    expect(Buffer.from(cached.writeMessage1(payload)!).toString("hex")).toBe(Buffer.from(plain.writeMessage1(payload)!).toString("hex"));
  });

  test("the responder refuses an initiator its callback does not know, naming the claimed key", () => {
    const msg = new IKInitiator("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", new Uint8Array(0), i, r.publicKey, psk, e).writeMessage1(payload)!;
    const refusing = new IKResponder("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", new Uint8Array(0), r, () => null);
    expect(refusing.readMessage1(msg)).toBeNull();
    expect(Buffer.from(refusing.rs!).toString("hex")).toBe(Buffer.from(i.publicKey).toString("hex"));
    const knowing = new IKResponder("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", new Uint8Array(0), r, (rs) => x25519(r.privateKey, rs));
    expect(Array.from(knowing.readMessage1(msg)!)).toEqual([1, 2, 3]);
  });
});
