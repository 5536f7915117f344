// Argument checks citty leaves to us: unknown options, values that must be numbers or names.
import type { ArgsDef } from "citty";
import { UsageError } from "./errors.ts";

/** Rejects options the command does not define (citty would silently ignore them). */
export function rejectUnknownOptions(rawArgs: string[], args: ArgsDef): void {
  const known = new Set<string>(["help", "h", "version"]);
  for (const [name, def] of Object.entries(args)) {
    known.add(name);
    known.add(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
    const alias = (def as { alias?: string | string[] }).alias;
    for (const a of Array.isArray(alias) ? alias : alias ? [alias] : []) known.add(a);
  }
  for (const raw of rawArgs) {
    if (raw === "--") break;
    if (!raw.startsWith("-") || raw === "-" || /^-\d/.test(raw)) continue; // values like -3 are not options
    const name = raw.replace(/^--?(no-)?/, "").split("=")[0];
    if (!known.has(name)) throw new UsageError(`unknown option ${raw.split("=")[0]}`);
  }
}

/** Parses an integer option (decimal or 0x hex) within [min, max]. */
export function parseIntegerOption(name: string, value: unknown, min: number, max: number): number {
  const text = String(value);
  const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${min}-${max}, got "${text}"`);
  }
  return n;
}
