// The argument parser: random command lines made of each command's own options (every spelling,
// negated, with and without values, inline `=`), values and odd tokens -> a parse whose values
// have the defined types, or UsageError; nothing else. The values `up` checks next (log level,
// fwmark, offloads) are checked the same way.
import { parseCommandLine, parseIntegerOption } from "../../../src/cli/args.ts";
import { UsageError } from "../../../src/cli/errors.ts";
import { confArgs } from "../../../src/cli/commands/conf.ts";
import { downArgs } from "../../../src/cli/commands/down.ts";
import { reloadArgs } from "../../../src/cli/commands/reload.ts";
import { showArgs } from "../../../src/cli/commands/show.ts";
import { parseLogLevel, upArgs } from "../../../src/cli/commands/up.ts";
import { parseOffloads } from "../../../src/device/offloads.ts";
import { invariant, shrinkArray, shrinkString, type Target } from "../engine.ts";
import type { Rng } from "../rng.ts";

interface Def {
  type?: string;
  alias?: string | string[];
  required?: boolean;
}
type Defs = Record<string, Def>;

const COMMANDS: Record<string, Defs> = {
  up: upArgs as unknown as Defs,
  conf: confArgs as unknown as Defs,
  show: showArgs as unknown as Defs,
  down: downArgs as unknown as Defs,
  reload: reloadArgs as unknown as Defs,
  genkey: {},
};
const COMMAND_NAMES = Object.keys(COMMANDS);

const VALUES = [
  "", "-", "--", "-h", "--help", "-1", "-3", "0", "off", "OFF", "0x10", "0x", "4294967295", "4294967296", "99999999999999999999",
  "tun0.conf", "a.toml", "wg0", "all", "none", "tso,gro", "tso,,gro", " tso ", "bogus", "json", "toml", "ini", "info", "trace",
  "a b", "x=y", "=", "\x1b[31m", "\0", "é", "\uFFFD", "x".repeat(300), "__proto__", "constructor", "true", "false",
];

function optionTokens(defs: Defs): string[] {
  const out: string[] = [];
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") continue;
    const aliases = Array.isArray(def.alias) ? def.alias : def.alias ? [def.alias] : [];
    for (const spelling of [name, ...aliases]) {
      const dash = spelling.length === 1 ? "-" : "--";
      out.push(`${dash}${spelling}`, `--no-${spelling}`, `${dash}${spelling}=`, `${dash}${spelling}=x`, `--${spelling}=off`);
    }
  }
  return out.concat(["--help", "-h", "--version", "--unknown", "--no-", "--=", "---x", "-", "--"]);
}

export interface CliInput {
  command: string;
  argv: string[];
}

export const cliTarget: Target<CliInput> = {
  name: "cli",
  about: "parseCommandLine with each command's definition -> typed parse or UsageError; up's value checks too",
  generate(rng: Rng): CliInput {
    const command = rng.pick(COMMAND_NAMES);
    const tokens = optionTokens(COMMANDS[command]);
    const argv: string[] = [];
    const n = rng.int(7);
    for (let i = 0; i < n; i++) {
      const r = rng.int(10);
      if (r < 5) argv.push(rng.pick(tokens));
      else if (r < 9) argv.push(rng.pick(VALUES));
      else argv.push(`${rng.pick(tokens)}${rng.pick(VALUES)}`);
    }
    return { command, argv };
  },
  check({ command, argv }: CliInput): void {
    const defs = COMMANDS[command];
    let parsed: Record<string, unknown>;
    try {
      parsed = parseCommandLine(command, argv, defs as never) as Record<string, unknown>;
    } catch (err) {
      invariant(err instanceof UsageError, "only UsageError may be thrown", () => `${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      invariant(!/[\x00-\x08\x0a-\x1f\x7f]/.test(err.message), "a usage error is one line without control characters", () => JSON.stringify(err.message));
      return;
    }
    for (const [key, value] of Object.entries(parsed)) {
      const def = defs[key];
      invariant(def !== undefined, "only defined options come back", () => key);
      if (def.type === "boolean") invariant(typeof value === "boolean", "a boolean option is a boolean", () => `${key}=${String(value)}`);
      else invariant(value === undefined || (typeof value === "string" && value !== ""), "a string option or positional is a non-empty string", () => `${key}=${JSON.stringify(value)}`);
    }
    for (const [key, def] of Object.entries(defs)) {
      if (def.required) invariant(typeof parsed[key] === "string", "a required positional is present", () => key);
    }
    if (command === "up") {
      cleanOrUsage(() => parseLogLevel(parsed["log-level"]));
      if (parsed.fwmark !== undefined) cleanOrUsage(() => parseIntegerOption("fwmark", parsed.fwmark, 0, 0xffffffff, { off: true }));
      if (parsed.offload !== undefined) {
        try {
          parseOffloads(parsed.offload as string);
        } catch (err) {
          invariant(err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError), "parseOffloads throws a plain Error", () => String(err));
        }
      }
    }
  },
  *shrink(input: CliInput): Iterable<CliInput> {
    for (const argv of shrinkArray(input.argv, shrinkString)) yield { ...input, argv };
  },
  show: (input) => `wontun ${input.command} ${JSON.stringify(input.argv)}`,
};

function cleanOrUsage(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    invariant(err instanceof UsageError, "value checks throw only UsageError", () => `${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  }
}
