// Reading a config file: pick the format from the extension, parse, validate.
import { closeSync, openSync, readSync } from "node:fs";
import { basename, extname } from "node:path";
import { parseIni } from "./ini.ts";
import { type Config, ConfigError } from "./model.ts";
import { parseToml } from "./toml.ts";
import { buildConfig, type ConfigFormat } from "./validate.ts";

export type { ConfigFormat } from "./validate.ts";

const FORMATS = new Map<string, ConfigFormat>([[".conf", "ini"], [".ini", "ini"], [".toml", "toml"]]);

/** The format a file name's extension implies, or null for an unknown extension. */
export function formatFromPath(path: string): ConfigFormat | null {
  return FORMATS.get(extname(path).toLowerCase()) ?? null;
}

/** Far more than any real config (a 5,000-peer hub is ~1 MiB); a file that goes on is not one (/dev/zero). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface LoadOptions {
  /**
   * Accept WireGuard-mode configs (a PrivateKey in [Interface]); default false. A caller that can
   * only run the unencrypted wontun protocol leaves it off, so that a WireGuard config is refused
   * with a clear message instead of being run without encryption. `wontun conf` passes true, and
   * so does `wontun up` once it runs the WireGuard protocol.
   */
  wireguard?: boolean;
}

/** Parses and validates config text; `fileName` is only used in error messages. */
export function parseConfigText(text: string, fileName: string, format: ConfigFormat, options: LoadOptions = {}): Config {
  const raw = format === "toml" ? parseToml(text, fileName) : parseIni(text, fileName);
  const config = buildConfig(raw);
  if (config.mode === "wireguard" && !options.wireguard) {
    const entry = raw.interface?.entries.get("PrivateKey");
    throw new ConfigError(fileName, entry?.line ?? null, entry?.key ?? null,
      "this is a WireGuard config, and this command cannot run the WireGuard protocol yet " +
      "(`wontun conf` reads it; without PrivateKey and keys wontun runs its unencrypted protocol)");
  }
  return config;
}

const READ_ERRORS = new Map([
  ["ENOENT", "no such file or directory"],
  ["EACCES", "permission denied"],
  ["EPERM", "operation not permitted"],
  ["EISDIR", "it is a directory"],
  ["ENOTDIR", "a component of the path is not a directory"],
  ["ELOOP", "too many symbolic links"],
]);

/** The file's bytes, at most `max` of them: reading stops there, whatever the file is (a FIFO, /dev/zero). */
function readBounded(path: string, max: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const words = code ? READ_ERRORS.get(code) : undefined;
    const reason = code ? `${code}: ${words ?? (err as Error).message}` : String(err);
    throw new ConfigError(path, null, null, `cannot read: ${reason}`);
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const chunk = new Uint8Array(Math.min(1024 * 1024, max + 1 - total));
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const words = code ? READ_ERRORS.get(code) : undefined;
        throw new ConfigError(path, null, null, `cannot read: ${code ? `${code}: ${words ?? (err as Error).message}` : String(err)}`);
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > max) {
        throw new ConfigError(path, null, null, `larger than ${max / (1024 * 1024)} MiB, which no config is`);
      }
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/** Config text must be UTF-8: decoding with replacement would let two different names read alike. */
export function decodeConfigText(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // Find the line: decode line by line until one fails (only on this error path).
    let line = 1;
    let start = 0;
    for (;;) {
      const nl = bytes.indexOf(0x0a, start);
      const end = nl < 0 ? bytes.length : nl;
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(start, end));
      } catch {
        throw new ConfigError(file, line, null, "not valid UTF-8 text");
      }
      if (nl < 0) throw new ConfigError(file, null, null, "not valid UTF-8 text");
      start = nl + 1;
      line++;
    }
  }
}

/** Reads, parses and validates a config file (.conf/.ini: wg-style ini; .toml: TOML). */
export function loadConfig(path: string, options: LoadOptions = {}): Config {
  const format = formatFromPath(path);
  if (!format) throw new ConfigError(path, null, null, "unknown config format, use .conf, .ini or .toml");
  const text = decodeConfigText(readBounded(path, MAX_CONFIG_BYTES), path);
  return parseConfigText(text, path, format, options);
}

/** The TUN interface name a config file implies: its name without extension (tun0.conf → tun0). */
export function interfaceNameFromPath(path: string): string {
  const base = basename(path);
  const ext = extname(base);
  return ext ? base.slice(0, -ext.length) : base;
}
