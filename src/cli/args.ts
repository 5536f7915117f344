// Reading a command's arguments. citty's parser is lenient (unknown options ignored, `--no-x`
// turning a string option into false, a missing value into "", extra arguments dropped), so every
// command reads its arguments with parseCommandLine, which accepts exactly what the command
// defines and says plainly what is wrong otherwise (UsageError, exit 2).
import type { ArgsDef } from "citty";
import { UsageError } from "./errors.ts";
import { escapeControls, quote, truncate } from "../text.ts";

interface OptionDef {
  type?: string;
  required?: boolean;
  default?: unknown;
  alias?: string | string[];
}

/** What parseCommandLine returns for an argument definition: booleans, strings, undefined when absent. */
export type ParsedArgs<A extends ArgsDef> = {
  [K in keyof A]: A[K] extends { type: "boolean" } ? boolean
    : A[K] extends { required: true } ? string
    : A[K] extends { default: string } ? string
    : string | undefined;
};

/** A negative number is a value (`--fwmark -3` is then rejected by the option's own check), not an option. */
const NEGATIVE_NUMBER = /^-\d/;

function isOptionLike(arg: string): boolean {
  return arg.startsWith("-") && arg !== "-" && !NEGATIVE_NUMBER.test(arg);
}

/** Every spelling of every option (name, kebab-case, aliases, without dashes) → its name and definition. */
function spellings(args: ArgsDef): Map<string, { name: string; def: OptionDef }> {
  const out = new Map<string, { name: string; def: OptionDef }>();
  for (const [name, def] of Object.entries(args) as [string, OptionDef][]) {
    if (def.type === "positional") continue;
    out.set(name, { name, def });
    out.set(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), { name, def });
    for (const a of Array.isArray(def.alias) ? def.alias : def.alias ? [def.alias] : []) out.set(a, { name, def });
  }
  return out;
}

/** Whether `arg` (e.g. "--help") is among `argv` as an option, not as the value of an option before it. */
export function hasFlag(argv: string[], flags: string[], args: ArgsDef): boolean {
  const options = spellings(args);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") return false;
    if (flags.includes(arg)) return true;
    const option = options.get(arg.replace(/^--?/, ""));
    // `--interface -h`: "-h" is in the place of --interface's value (which parseCommandLine rejects).
    if (isOptionLike(arg) && !arg.includes("=") && option && option.def.type !== "boolean") i++;
  }
  return false;
}

/**
 * The arguments of `command` as `args` defines them. Options: `--name value`, `--name=value`,
 * boolean `--name` and `--no-name`; a value may not look like an option; each option once.
 * Positionals: exactly the defined ones; "--" ends the options.
 */
export function parseCommandLine<A extends ArgsDef>(command: string, rawArgs: string[], args: A): ParsedArgs<A> {
  const options = spellings(args);
  const out: Record<string, unknown> = Object.create(null);
  const positionals: string[] = [];
  for (const [name, def] of Object.entries(args) as [string, OptionDef][]) {
    if (def.type === "positional") positionals.push(name);
    else if (def.type === "boolean") out[name] = def.default === true;
    else if (def.default !== undefined) out[name] = String(def.default);
  }
  const seen = new Set<string>();
  const given: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i];
    if (arg === "--") {
      given.push(...rawArgs.slice(i + 1));
      break;
    }
    if (!isOptionLike(arg)) {
      given.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const spelled = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const bare = spelled.replace(/^--?/, "");
    let option = options.get(bare);
    let value: string | boolean | undefined;
    if (!option) {
      const negated = bare.startsWith("no-") ? options.get(bare.slice(3)) : undefined;
      if (!negated) throw new UsageError(`unknown option ${escapeControls(truncate(spelled))}`);
      if (negated.def.type !== "boolean") throw new UsageError(`--${negated.name} takes a value; it has no ${spelled} form`);
      if (inline !== undefined) throw new UsageError(`${spelled} takes no value`);
      option = negated;
      value = false;
    } else if (option.def.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`--${option.name} takes no value (write --${option.name} or --no-${option.name})`);
      value = true;
    } else {
      value = inline;
      if (value === undefined && i + 1 < rawArgs.length && !isOptionLike(rawArgs[i + 1])) value = rawArgs[++i];
      if (value === undefined || value === "") throw new UsageError(`--${option.name} needs a value`);
    }
    if (seen.has(option.name)) throw new UsageError(`--${option.name} is given more than once`);
    seen.add(option.name);
    out[option.name] = value;
  }
  for (const name of positionals) {
    const value = given.shift();
    const def = (args as Record<string, OptionDef>)[name];
    // Same words as citty, which checks this too.
    if (value === undefined && def.required) throw new UsageError(`Missing required positional argument: ${name.toUpperCase()}`);
    if (value === "") throw new UsageError(`${name.toUpperCase()} is empty`);
    out[name] = value;
  }
  if (given.length > 0) {
    const takes = positionals.length === 0 ? "no arguments"
      : `${positionals.map((p) => p.toUpperCase()).join(" ")} and nothing more`;
    throw new UsageError(`${command} takes ${takes}, got ${quote(given[0])}`);
  }
  return out as ParsedArgs<A>;
}

/** Parses an integer option (decimal or 0x hex) within [min, max]; with `off`, "off" means 0. */
export function parseIntegerOption(
  name: string,
  value: unknown,
  min: number,
  max: number,
  opts: { off?: boolean } = {},
): number {
  const text = String(value);
  if (opts.off && text.toLowerCase() === "off") return 0;
  const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${min}-${max}${opts.off ? ' or "off"' : ""}, got ${quote(text)}`);
  }
  return n;
}
