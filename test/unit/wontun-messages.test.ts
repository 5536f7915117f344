import { describe, expect, test } from "bun:test";
import {
  HANDSHAKE_INIT_SIZE,
  decodeInitName,
  encodeName,
  messageType,
  readU32,
  writeDataHeader,
  writeHandshakeInit,
  writeHandshakeResponse,
} from "../../src/protocol/wontun/messages.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("wontun messages: byte vectors", () => {
  test("HandshakeInit is type 1, assigned_idx LE, name zero-padded to 100 bytes", () => {
    const buf = new Uint8Array(HANDSHAKE_INIT_SIZE);
    expect(writeHandshakeInit(buf, 0, 0x01020304, encodeName("client-A"))).toBe(105);
    const expected = "01" + "04030201" + Buffer.from("client-A").toString("hex") + "00".repeat(92);
    expect(hex(buf)).toBe(expected);
    expect(messageType(buf, 0, 105)).toBe(1);
    expect(decodeInitName(buf, 0)).toBe("client-A");
  });

  test("HandshakeResponse is type 1+4+4 = 9 bytes", () => {
    const buf = new Uint8Array(9);
    expect(writeHandshakeResponse(buf, 0, 7, 0xdeadbeef)).toBe(9);
    expect(hex(buf)).toBe("02" + "07000000" + "efbeadde");
    expect(messageType(buf, 0, 9)).toBe(2);
    expect(readU32(buf, 5)).toBe(0xdeadbeef);
  });

  test("Data header is type 3 + sender_idx, packet follows; empty = keepalive", () => {
    const buf = new Uint8Array(9);
    writeDataHeader(buf, 0, 2);
    buf.set([0x45, 0, 0, 1], 5);
    expect(hex(buf)).toBe("03" + "02000000" + "45000001");
    expect(messageType(buf, 0, 9)).toBe(3);
    expect(messageType(buf, 0, 5)).toBe(3);
  });

  test("writes at an offset inside a larger buffer", () => {
    const buf = new Uint8Array(20).fill(0xaa);
    writeHandshakeResponse(buf, 6, 1, 2);
    expect(hex(buf.subarray(6, 15))).toBe("02" + "01000000" + "02000000");
    expect(buf[5]).toBe(0xaa);
    expect(buf[15]).toBe(0xaa);
    expect(messageType(buf, 6, 9)).toBe(2);
  });

  test("every malformed size and unknown type is rejected", () => {
    const buf = new Uint8Array(300);
    buf[0] = 1;
    for (const n of [1, 5, 104, 106, 200]) expect(messageType(buf, 0, n)).toBe(0);
    buf[0] = 2;
    for (const n of [1, 5, 8, 10, 105]) expect(messageType(buf, 0, n)).toBe(0);
    buf[0] = 3;
    for (const n of [1, 2, 3, 4]) expect(messageType(buf, 0, n)).toBe(0);
    for (const t of [0, 4, 5, 0x7f, 0xff]) {
      buf[0] = t;
      expect(messageType(buf, 0, 105)).toBe(0);
    }
    expect(messageType(buf, 0, 0)).toBe(0);
  });

  test("names: 100 bytes fit, 101 do not, multi-byte UTF-8 counts bytes", () => {
    expect(encodeName("x".repeat(100)).length).toBe(100);
    expect(() => encodeName("x".repeat(101))).toThrow(/1-100 bytes/);
    expect(() => encodeName("é".repeat(51))).toThrow(/102/);
    expect(() => encodeName("")).toThrow();
    const buf = new Uint8Array(105);
    writeHandshakeInit(buf, 0, 0, encodeName("é".repeat(50)));
    expect(decodeInitName(buf, 0)).toBe("é".repeat(50));
  });
});
