// Config readers: mutated ini and TOML text (the fixtures and the README's examples) either
// parses to a Config or throws ConfigError, nothing else; a Config prints (toIni, toToml) to text
// that parses back to an equal Config.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { decodeConfigText, parseConfigText } from "../../../src/config/load.ts";
import { toIni, toToml } from "../../../src/config/dump.ts";
import { ConfigError, hostSettingsOf, type Config } from "../../../src/config/model.ts";
import { configFileText } from "../../../src/host/save-config.ts";
import { InvariantError, canonical, hex, invariant, shrinkBytes, shrinkString, showText, type Target } from "../engine.ts";
import { mutateBytes, mutateText, type TextDictionary } from "../mutate.ts";
import type { Rng } from "../rng.ts";

const REPO = resolve(import.meta.dir, "../../..");
type Format = "ini" | "toml";

interface Seed {
  format: Format;
  text: string;
}

function loadSeeds(): Seed[] {
  const seeds: Seed[] = [];
  const dir = join(REPO, "test/fixtures/config");
  for (const file of readdirSync(dir).sort()) {
    seeds.push({ format: file.endsWith(".toml") ? "toml" : "ini", text: readFileSync(join(dir, file), "utf8") });
  }
  // The README's examples: its ```ini and ```toml blocks.
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  for (const m of readme.matchAll(/```(ini|toml)\n([\s\S]*?)```/g)) seeds.push({ format: m[1] as Format, text: m[2] });
  return seeds;
}

const SEEDS = loadSeeds();

const KEY = "qE9/xklX3tHhERzKZ3lh2niscH6cz2RkZwZ1PcvCbmc=";
const PUB = "mLP7oRfwIuoBgn2j3BCErqRjvynsyf3Bkj+qQN2UmVs=";
const VALUES = [
  "", "0", "1", "-1", "65535", "65536", "4294967295", "4294967296", "99999999999999999999", "0x10", "0X1f", "0x", "off", "on",
  "true", "false", "yes", "auto", "1e3", "NaN", "Infinity", "1.5", "+5", "25", "68", "67", "1420", "9000",
  "10.0.0.1/24", "10.0.0.1", "10.0.0.1/33", "::/0", "0.0.0.0/0", "::1/128", "fe80::1/64", "ff02::1/128", "fd00::1/64",
  "10.0.0.0/8, 10.0.0.0/8", "10.1.0.0/16,fd00::/64", "10.0.0.1/24,", ",", "255.255.255.255/32", "224.0.0.1/32",
  "192.0.2.1:51820", "[2001:db8::1]:51820", "[::1]:0", "host.example:1", "a:b:c", "[::1]", "0.0.0.0:1", "255.255.255.255:1", ":51820",
  KEY, PUB, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAA", `${KEY}x`, KEY.slice(1),
  "__proto__", "constructor", "toString", "hasOwnProperty", "x".repeat(101), "é".repeat(60), "a\x1bb", "\"quoted\"", "'single'",
  "[1, 2]", "[\"10.0.0.1/24\"]", "{ a = 1 }", "\"\"\"multi\nline\"\"\"", "1979-05-27T07:32:00Z", "10.0.0.1 # comment", "1.1.1.1, example.com",
  "51820", "main", "off", "1234", "echo %i", "true",
];
const KEYS = [
  "Name", "Address", "ListenPort", "MTU", "FwMark", "PrivateKey", "PublicKey", "PresharedKey", "Endpoint", "AllowedIPs",
  "PersistentKeepalive", "DNS", "Table", "SaveConfig", "PreUp", "PostUp", "PreDown", "PostDown", "Unknown",
  "name", "address", "listen_port", "mtu", "fwmark", "private_key", "public_key", "preshared_key", "endpoint", "allowed_ips",
  "persistent_keepalive", "dns", "table", "save_config", "post_up", "__proto__", "constructor", "a.b", "\"quoted key\"",
];
const LINES = [
  "[Interface]", "[Peer]", "[interface]", "[[peers]]", "[peers]", "[__proto__]", "[Constructor]", "[interface.sub]", "[[interface]]",
  "[", "]", "# comment", "; comment", "=", "key", "Name = extra", "[Peer]\nPublicKey = " + PUB, "[[peers]]\nname = \"x\"",
  "AllowedIPs = 10.0.0.0/8", "allowed_ips = [\"10.9.0.0/16\"]", "\uFEFF", "\x00", "a = \"unterminated",
];
const DICT: TextDictionary = { keys: KEYS, values: VALUES, lines: LINES };

export interface ConfigInput {
  format: Format;
  /** The file's text; a JS string, turned into UTF-8 bytes as a file would hold them. */
  text: string;
  /** Byte-level edits after encoding (invalid UTF-8 among them), or none. */
  bytes?: Uint8Array;
}

function parse(text: string, format: Format): Config {
  return parseConfigText(text, format === "toml" ? "fuzz.toml" : "fuzz.conf", format, { wireguard: true });
}

/**
 * What a round trip must keep: everything but the key file's name (its key is printed instead);
 * toIni/toToml leave wg-quick's host settings out, as `wg showconf` does (withHost false), while
 * SaveConfig's file text (configFileText) keeps them.
 */
function comparable(config: Config, withHost: boolean): string {
  const { privateKeyFile: _file, host, ...iface } = config.interface;
  const kept = withHost && host !== undefined && canonical(host) !== canonical(hostSettingsOf({ ...config.interface, host: undefined }));
  return canonical({ ...config, interface: kept ? { ...iface, host } : iface });
}

/** [name, format printed, keeps host settings, only for configs read from that format (SaveConfig writes a file in its own format)]. */
const PRINTERS: [string, Format, boolean, (c: Config) => string][] = [
  ["toIni", "ini", false, toIni],
  ["toToml", "toml", false, toToml],
  ["SaveConfig ini", "ini", true, (c) => configFileText(c, "fuzz.conf")],
  ["SaveConfig toml", "toml", true, (c) => configFileText(c, "fuzz.toml")],
];

export const configTarget: Target<ConfigInput> = {
  name: "config",
  about: "ini/TOML text -> Config or ConfigError; toIni/toToml -> parse -> equal Config",
  generate(rng: Rng): ConfigInput {
    const seed = rng.pick(SEEDS);
    // Now and then a value quoted for the other format, to cross the readers.
    const values = seed.format === "toml" ? VALUES.map((v) => (rng.chance(0.5) ? JSON.stringify(v) : v)) : VALUES;
    const text = mutateText(rng, seed.text, { ...DICT, values });
    if (rng.chance(0.85)) return { format: seed.format, text };
    return { format: seed.format, text, bytes: mutateBytes(rng, new TextEncoder().encode(text)) };
  },
  check({ format, text, bytes }: ConfigInput): void {
    let config: Config;
    try {
      // As loadConfig reads a file: bytes, decoded as UTF-8 (invalid UTF-8 is a ConfigError), then parsed.
      const decoded = decodeConfigText(bytes ?? new TextEncoder().encode(text), format === "toml" ? "fuzz.toml" : "fuzz.conf");
      config = parse(decoded, format);
    } catch (err) {
      invariant(err instanceof ConfigError, "only ConfigError may be thrown", () => `${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      invariant(!err.message.includes("\n") && !/[\x00-\x08\x0b-\x1f\x7f]/.test(err.message), "a ConfigError is one line without control characters", () => JSON.stringify(err.message));
      return;
    }
    for (const [printer, to, withHost, dump] of PRINTERS) {
      // SaveConfig writes back into the file it read (same format); toIni/toToml cross formats.
      if (withHost && to !== format) continue;
      const want = comparable(config, withHost);
      const printed = dump(config);
      let again: Config;
      try {
        again = parse(printed, to);
      } catch (err) {
        throw new InvariantError(`what ${printer} prints parses back`, `${(err as Error).message}\n--- printed:\n${printed}`);
      }
      const got = comparable(again, withHost);
      invariant(got === want, `round trip through ${printer} keeps the config`, () => `\n  before: ${want}\n  after:  ${got}\n--- printed:\n${printed}`);
    }
  },
  *shrink(input: ConfigInput): Iterable<ConfigInput> {
    if (input.bytes !== undefined) {
      for (const bytes of shrinkBytes(input.bytes)) yield { ...input, bytes };
      return;
    }
    for (const text of shrinkString(input.text)) yield { ...input, text };
  },
  show: (input) => `format=${input.format} ${input.bytes !== undefined ? `bytes(hex)=${hex(input.bytes)}` : `text=${showText(input.text)}`}`,
};
