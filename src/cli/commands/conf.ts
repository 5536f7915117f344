// `wontun conf CONFIG`: parse a config and print it (the original wontun-conf tool). Reads both
// wontun and WireGuard configs; a WireGuard config's private key is printed, as `wg showconf` does.
import { defineCommand } from "citty";
import { loadConfig } from "../../config/load.ts";
import { toIni, toJson, toToml } from "../../config/dump.ts";
import { parseCommandLine } from "../args.ts";
import { writeOut } from "../output.ts";
import { UsageError } from "../errors.ts";
import { quote } from "../../text.ts";

export const confArgs = {
  config: {
    type: "positional",
    description: "Config file: wg-style .conf/.ini or .toml",
    required: true,
  },
  pretty: {
    type: "boolean",
    description: "Indent JSON output",
    default: false,
  },
  to: {
    type: "string",
    description: "Output format: json|toml|ini",
    default: "json",
  },
} as const;

export const confCommand = defineCommand({
  meta: { name: "conf", description: "Parse a config file and print it as JSON (wontun-conf shape), TOML or ini" },
  args: confArgs,
  run({ rawArgs }) {
    const args = parseCommandLine("conf", rawArgs, confArgs);
    const format = args.to;
    if (!["json", "toml", "ini"].includes(format)) throw new UsageError(`--to must be json, toml or ini, got ${quote(format)}`);
    const config = loadConfig(args.config, { wireguard: true });
    // wg-quick settings that are read but not acted on: say so, on stderr so the output stays clean.
    for (const warning of config.warnings) console.error(`wontun: warning: ${warning}`);
    const text = format === "json" ? toJson(config, args.pretty) : format === "toml" ? toToml(config) : toIni(config);
    writeOut(text.endsWith("\n") ? text : `${text}\n`);
  },
});
