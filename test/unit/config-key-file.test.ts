// PrivateKeyFile / private_key_file: the interface's private key read from a file of its own
// (container secrets), with errors that name the config's file:line:key and the key file.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/config/model.ts";
import { encodeKey, generatePrivateKey, publicKeyOf } from "../../src/crypto/keys.ts";

const dir = mkdtempSync(join(tmpdir(), "wontun-keyfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ownKey = generatePrivateKey();
const peerKey = encodeKey(publicKeyOf(generatePrivateKey()));

function write(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const conf = (keyLine: string) => `[Interface]\n${keyLine}\nAddress = 10.0.0.2/24\n\n[Peer]\nPublicKey = ${peerKey}\nAllowedIPs = 10.0.0.1/32\n`;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("PrivateKeyFile", () => {
  test("reads one base64 key (trailing newline allowed), relative to the config's directory; WireGuard mode", () => {
    write("good.key", `${encodeKey(ownKey)}\n`);
    const config = loadConfig(write("a.conf", conf("PrivateKeyFile = good.key")), { wireguard: true });
    expect(config.mode).toBe("wireguard");
    expect(encodeKey(config.interface.privateKey!)).toBe(encodeKey(ownKey));
    expect(config.interface.privateKeyFile).toBe(join(dir, "good.key"));
    expect(config.warnings).toEqual([]);
  });

  test("TOML private_key_file, absolute path", () => {
    const key = write("abs.key", encodeKey(ownKey));
    const toml = `[interface]\nprivate_key_file = "${key}"\naddress = "10.0.0.2/24"\n\n[[peers]]\npublic_key = "${peerKey}"\nallowed_ips = ["10.0.0.1/32"]\n`;
    const config = loadConfig(write("a.toml", toml), { wireguard: true });
    expect(encodeKey(config.interface.privateKey!)).toBe(encodeKey(ownKey));
  });

  test("both PrivateKey and PrivateKeyFile: an error at file:line:key", () => {
    write("good.key", encodeKey(ownKey));
    const path = write("both.conf", conf(`PrivateKey = ${encodeKey(ownKey)}\nPrivateKeyFile = good.key`));
    const err = errorOf(() => loadConfig(path, { wireguard: true }));
    expect(err.message).toBe(`${path}:3: PrivateKeyFile: PrivateKeyFile and PrivateKey both give the private key; keep one`);
  });

  test("a missing, unreadable, empty or malformed key file is a config error naming it, never echoing its text", () => {
    const missing = errorOf(() => loadConfig(write("m.conf", conf("PrivateKeyFile = nope.key")), { wireguard: true }));
    expect(missing.message).toBe(`${join(dir, "m.conf")}:2: PrivateKeyFile: cannot read key file "${join(dir, "nope.key")}": ENOENT: no such file or directory`);

    const isDir = errorOf(() => loadConfig(write("d.conf", conf(`PrivateKeyFile = ${dir}`)), { wireguard: true }));
    expect(isDir.message).toContain(`cannot read key file "${dir}": EISDIR`);

    write("empty.key", "\n");
    expect(errorOf(() => loadConfig(write("e.conf", conf("PrivateKeyFile = empty.key")), { wireguard: true })).message).toContain("is empty");

    const secretish = "c2VjcmV0LWJ1dC1ub3QtYS1rZXk=";
    write("bad.key", `${secretish}\n`);
    const bad = errorOf(() => loadConfig(write("b.conf", conf("PrivateKeyFile = bad.key")), { wireguard: true }));
    expect(bad.message).toContain(`key file "${join(dir, "bad.key")}" does not hold one base64 key`);
    expect(bad.message).not.toContain(secretish);

    write("two.key", `${encodeKey(ownKey)}\n${encodeKey(ownKey)}\n`);
    expect(errorOf(() => loadConfig(write("t.conf", conf("PrivateKeyFile = two.key")), { wireguard: true })).message).toContain("does not hold one base64 key");

    write("long.key", "A".repeat(5000));
    expect(errorOf(() => loadConfig(write("l.conf", conf("PrivateKeyFile = long.key")), { wireguard: true })).message).toContain("too long");
  });

  test("a key file others can read gets a warning, as wg gives for private keys", () => {
    write("open.key", encodeKey(ownKey), 0o644);
    const config = loadConfig(write("o.conf", conf("PrivateKeyFile = open.key")), { wireguard: true });
    expect(config.warnings).toEqual([`${join(dir, "o.conf")}:2: key file ${join(dir, "open.key")} is accessible by others`]);
  });
});
