// SaveConfig = true: on the way down, the running config goes back into its file, as wg-quick's
// save_config does: the config as `wontun conf` prints it (like `wg showconf`) with wg-quick's own
// [Interface] lines (DNS, Table, SaveConfig, hooks) added, written atomically with mode 0600.
import { closeSync, fchmodSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, writeSync } from "node:fs";
import { toIni, toToml, tomlString } from "../config/dump.ts";
import { formatFromPath } from "../config/load.ts";
import type { Config, HostSettings } from "../config/model.ts";

/** wg-quick's [Interface] additions as lines of `format`. */
function hostLines(host: HostSettings | undefined, format: "ini" | "toml"): string[] {
  if (!host) return [];
  const out: string[] = [];
  const dns = [...host.dns, ...host.dnsSearch];
  const list = (items: string[]) => `[${items.map(tomlString).join(", ")}]`;
  if (format === "ini") {
    if (dns.length) out.push(`DNS = ${dns.join(", ")}`);
    if (host.table !== null) out.push(`Table = ${host.table}`);
    if (host.saveConfig) out.push("SaveConfig = true");
    for (const [key, commands] of [["PreUp", host.preUp], ["PostUp", host.postUp], ["PreDown", host.preDown], ["PostDown", host.postDown]] as const) {
      for (const c of commands) out.push(`${key} = ${c}`);
    }
  } else {
    if (dns.length) out.push(`dns = ${list(dns)}`);
    if (host.table !== null) out.push(`table = ${tomlString(host.table)}`);
    if (host.saveConfig) out.push("save_config = true");
    for (const [key, commands] of [["pre_up", host.preUp], ["post_up", host.postUp], ["pre_down", host.preDown], ["post_down", host.postDown]] as const) {
      if (commands.length) out.push(`${key} = ${list(commands)}`);
    }
  }
  return out;
}

/** The file text for `config` in the format `path`'s extension asks for. */
export function configFileText(config: Config, path: string): string {
  const format = formatFromPath(path) === "toml" ? "toml" : "ini";
  const text = format === "toml" ? toToml(config) : toIni(config);
  const extra = hostLines(config.interface.host, format);
  if (extra.length === 0) return text;
  // The [Interface] section ends at the first blank line (or at the end of the text).
  const lines = text.split("\n");
  let end = lines.indexOf("");
  if (end < 0) end = lines.length;
  lines.splice(end, 0, ...extra);
  return lines.join("\n");
}

/** Writes `config` over the file at `path` (following symlinks): temp file, fsync, rename; mode 0600. */
export function saveConfig(config: Config, path: string): void {
  let target = path;
  try { target = realpathSync(path); } catch { /* a new file */ }
  const tmp = `${target}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, "wx", 0o600);
  try {
    fchmodSync(fd, 0o600); // whatever the umask says
    writeSync(fd, configFileText(config, target));
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, target);
}
