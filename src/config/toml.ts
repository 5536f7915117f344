// TOML config files (.toml): an [interface] table and a [[peers]] array of tables, snake_case keys.
// smol-toml does the parsing; this file checks the document's shape, maps keys onto the shared key
// tables and finds the source line of each key for error messages (smol-toml gives values only).
import { parse, TomlError } from "smol-toml";
import { ConfigError } from "./model.ts";
import {
  describeType,
  isPlainObject,
  keysOf,
  type RawConfig,
  type RawEntry,
  type RawSection,
  sectionLabel,
  type SectionKind,
  suggestKey,
} from "./validate.ts";

export function parseToml(text: string, file: string): RawConfig {
  let doc: Record<string, unknown>;
  try {
    // BigInt integers tell `mtu = 1400` (an integer) apart from `mtu = 1400.0` (a float).
    doc = parse(text, { integersAsBigInt: true });
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.split("\n")[0].replace(/^Invalid TOML document:\s*/, "");
      // Name the key when the offending line is a plain `key = …` (e.g. a key set twice).
      const key = /^\s*([A-Za-z0-9_-]+)\s*=/.exec(text.split(/\r?\n/)[err.line - 1] ?? "")?.[1] ?? null;
      throw new ConfigError(file, err.line, key, `invalid TOML: ${reason}`);
    }
    throw err;
  }

  const lines = new SourceLines(text);
  const raw: RawConfig = { file, format: "toml", interface: null, peers: [] };
  for (const [key, value] of Object.entries(doc)) {
    if (key === "interface") {
      if (!isPlainObject(value)) {
        throw new ConfigError(file, lines.topLevel(key), key,
          `expected a table [interface], got ${describeType(value)}`);
      }
      raw.interface = tableToSection(file, "interface", value, lines.section("interface", 0), lines);
    } else if (key === "peers") {
      if (!Array.isArray(value) || !value.every(isPlainObject)) {
        throw new ConfigError(file, lines.topLevel(key), key,
          `expected an array of tables [[peers]], got ${describeType(value)}`);
      }
      value.forEach((table, i) => {
        raw.peers.push(tableToSection(file, "peer", table, lines.section("peers", i), lines));
      });
    } else {
      const hint = key.toLowerCase() === "peer" ? ' (peers are written [[peers]])'
        : key.toLowerCase() === "interface" ? " (write [interface])" : "";
      throw new ConfigError(file, lines.topLevel(key), key,
        `unknown table or key (expected [interface] and [[peers]])${hint}`);
    }
  }
  return raw;
}

function tableToSection(
  file: string,
  kind: SectionKind,
  table: Record<string, unknown>,
  where: SectionRange,
  lines: SourceLines,
): RawSection {
  const section: RawSection = { kind, line: where.header, entries: new Map() };
  const label = sectionLabel(kind, "toml");
  for (const [key, value] of Object.entries(table)) {
    const line = lines.key(where, key);
    const spec = keysOf(kind).find((s) => s.toml === key);
    if (!spec) {
      const meant = suggestKey(kind, key, "toml");
      const other: SectionKind = kind === "interface" ? "peer" : "interface";
      const elsewhere = keysOf(other).some((s) => s.toml === key);
      throw new ConfigError(file, line, key, elsewhere
        ? `${key} belongs in ${sectionLabel(other, "toml")}, not in ${label}`
        : `unknown key in ${label}${meant ? ` (did you mean ${meant}?)`
          : key === "peers" ? " (write each peer as a [[peers]] table)" : ""}`);
    }
    const entry: RawEntry = { key, line, items: [] };
    if ((spec.list || spec.repeat) && Array.isArray(value)) {
      for (const item of value) {
        entry.items.push({ value: item, line: typeof item === "string" ? lines.item(where, line, item) : line });
      }
    } else {
      entry.items.push({ value, line });
    }
    section.entries.set(spec.ini, entry);
  }
  return section;
}

// ---------------------------------------------------------------------------------------------
// Best-effort line lookup in the source text

interface SectionRange {
  /** 1-based line of the header, null if not found (inline or dotted tables). */
  header: number | null;
  /** 0-based line indexes [from, to) to search for the section's keys. */
  from: number;
  to: number;
}

const ANY_HEADER = /^\s*\[/;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function keyPattern(key: string): string {
  const k = escapeRegExp(key);
  return `(?:${k}|"${k}"|'${k}')`;
}

class SourceLines {
  private readonly lines: string[];

  constructor(text: string) {
    this.lines = text.split(/\r?\n/);
  }

  private find(re: RegExp, from = 0, to = this.lines.length): number | null {
    for (let i = from; i < to; i++) if (re.test(this.lines[i])) return i;
    return null;
  }

  private nextHeader(after: number): number {
    return this.find(ANY_HEADER, after + 1) ?? this.lines.length;
  }

  /** The `occurrence`-th (0-based) `[interface]` or `[[peers]]` header and the lines up to the next. */
  section(name: string, occurrence: number): SectionRange {
    const re = name === "peers"
      ? new RegExp(`^\\s*\\[\\[\\s*${keyPattern(name)}\\s*\\]\\]`)
      : new RegExp(`^\\s*\\[\\s*${keyPattern(name)}\\s*\\]`);
    let at = -1;
    for (let n = 0; n <= occurrence; n++) {
      const found = this.find(re, at + 1);
      if (found === null) return { header: null, from: 0, to: this.lines.length };
      at = found;
    }
    return { header: at + 1, from: at + 1, to: this.nextHeader(at) };
  }

  /** The line of `key = …` inside the section (anywhere as a fallback). */
  key(where: SectionRange, key: string): number | null {
    const re = new RegExp(`^\\s*${keyPattern(key)}\\s*=`);
    const found = this.find(re, where.from, where.to)
      ?? this.find(new RegExp(`(?:^|[\\s{,.])${keyPattern(key)}\\s*=`), where.from, where.to);
    return found === null ? where.header : found + 1;
  }

  /** The line where a string item of an array value appears (arrays may span lines). */
  item(where: SectionRange, keyLine: number | null, item: string): number | null {
    if (keyLine === null) return null;
    const quoted = new RegExp(`"${escapeRegExp(item)}"|'${escapeRegExp(item)}'`);
    const found = this.find(quoted, keyLine - 1, Math.max(where.to, keyLine));
    return found === null ? keyLine : found + 1;
  }

  /** The line that introduces a top-level key or table. */
  topLevel(key: string): number | null {
    const k = keyPattern(key);
    const found = this.find(new RegExp(`^\\s*(?:\\[\\[?\\s*${k}\\s*[\\].]|${k}\\s*[=.])`));
    return found === null ? null : found + 1;
  }
}
