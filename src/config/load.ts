// Reading a config file: pick the format from the extension, parse, validate.
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { parseIni } from "./ini.ts";
import { type Config, ConfigError } from "./model.ts";
import { parseToml } from "./toml.ts";
import { buildConfig, type ConfigFormat } from "./validate.ts";

export type { ConfigFormat } from "./validate.ts";

const FORMATS: Record<string, ConfigFormat> = { ".conf": "ini", ".ini": "ini", ".toml": "toml" };

/** The format a file name's extension implies, or null for an unknown extension. */
export function formatFromPath(path: string): ConfigFormat | null {
  return FORMATS[extname(path).toLowerCase()] ?? null;
}

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

const READ_ERRORS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "it is a directory",
  ENOTDIR: "a component of the path is not a directory",
  ELOOP: "too many symbolic links",
};

/** Reads, parses and validates a config file (.conf/.ini: wg-style ini; .toml: TOML). */
export function loadConfig(path: string, options: LoadOptions = {}): Config {
  const format = formatFromPath(path);
  if (!format) throw new ConfigError(path, null, null, "unknown config format, use .conf, .ini or .toml");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const words = code ? READ_ERRORS[code] : undefined;
    const reason = code ? `${code}: ${words ?? (err as Error).message}` : String(err);
    throw new ConfigError(path, null, null, `cannot read: ${reason}`);
  }
  return parseConfigText(text, path, format, options);
}

/** The TUN interface name a config file implies: its name without extension (tun0.conf → tun0). */
export function interfaceNameFromPath(path: string): string {
  const base = basename(path);
  const ext = extname(base);
  return ext ? base.slice(0, -ext.length) : base;
}
