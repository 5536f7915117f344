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
    } else if (key === "mesh") {
      if (!isPlainObject(value)) {
        throw new ConfigError(file, lines.topLevel(key), key, `expected a table [mesh], got ${describeType(value)}`);
      }
      raw.mesh = tableToSection(file, "mesh", value, lines.section("mesh", 0), lines);
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
      const itemLine = lines.items(where, line);
      for (const item of value) {
        entry.items.push({ value: item, line: typeof item === "string" ? itemLine(item) : line });
      }
    } else {
      entry.items.push({ value, line });
    }
    section.entries.set(spec.ini, entry);
  }
  return section;
}

// ---------------------------------------------------------------------------------------------
// Best-effort line lookup in the source text, indexed in one pass (a lookup per key or item that
// scanned the text made loading quadratic: 5,000 peers took ~1 s)

interface SectionRange {
  /** 1-based line of the header, null if not found (inline tables). */
  header: number | null;
  /** The section's id in the index ("interface#0", "peers#3"). */
  id: string;
  /** 0-based line index where the section's text ends (the next header, or the end). */
  to: number;
}

/** A key at the start of a line or in a header: bare, "basic" or 'literal'; then the rest of the path. */
const KEY = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const KEY_LINE = new RegExp(String.raw`^\s*(${KEY})\s*[=.]`);
const HEADER_LINE = new RegExp(String.raw`^\s*(\[\[?)\s*(${KEY}(?:\s*\.\s*${KEY})*)\s*\]`);
const PATH_PART = new RegExp(KEY, "g");

function unquoteKey(key: string): string {
  if (key.startsWith("'")) return key.slice(1, -1);
  if (key.startsWith('"')) {
    try {
      return JSON.parse(key) as string; // TOML's basic-string escapes are JSON's, \U… aside
    } catch {
      return key.slice(1, -1);
    }
  }
  return key;
}

class SourceLines {
  private readonly lines: string[];
  /** "sectionId\0key" → 1-based line of its first appearance; top-level keys have section id "". */
  private readonly keys = new Map<string, number>();
  /** Per table name ("interface", "peers"): the headers in order, 0-based line and end of the section. */
  private readonly headers = new Map<string, { line: number; to: number }[]>();

  constructor(text: string) {
    this.lines = text.split(/\r?\n/);
    let current = ""; // the section keys belong to; "-" for sub-tables, whose keys are not ours
    let open: { line: number; to: number } | null = null;
    const note = (section: string, key: string, line: number) => {
      const id = `${section}\0${key}`;
      if (!this.keys.has(id)) this.keys.set(id, line + 1);
    };
    for (let i = 0; i < this.lines.length; i++) {
      const line = this.lines[i];
      const header = HEADER_LINE.exec(line);
      if (header) {
        if (open) open.to = i;
        open = null;
        const path = (header[2].match(PATH_PART) ?? []).map(unquoteKey);
        const [name, sub] = path;
        const seen = this.headers.get(name) ?? [];
        if (path.length === 1) {
          note("", name, i);
          open = { line: i, to: this.lines.length };
          seen.push(open);
          this.headers.set(name, seen);
          current = `${name}#${seen.length - 1}`;
        } else {
          // [interface.sub] or [[peers.x]]: `sub` is a key of the table it extends.
          note("", name, i);
          note(`${name}#${Math.max(seen.length - 1, 0)}`, sub, i);
          current = "-";
        }
        continue;
      }
      const key = KEY_LINE.exec(line);
      if (key) note(current, unquoteKey(key[1]), i);
    }
  }

  /** The `occurrence`-th (0-based) `[interface]` or `[[peers]]` table. */
  section(name: string, occurrence: number): SectionRange {
    const found = this.headers.get(name)?.[occurrence];
    const id = `${name}#${occurrence}`;
    if (!found) return { header: null, id, to: this.lines.length };
    return { header: found.line + 1, id, to: found.to };
  }

  /** The line of `key = …` in the section, else the section's header (or the table's top-level line). */
  key(where: SectionRange, key: string): number | null {
    return this.keys.get(`${where.id}\0${key}`) ?? where.header ?? this.topLevel(where.id.split("#")[0]);
  }

  /** Finds the string items of one array value in order, starting at its key's line. */
  items(where: SectionRange, keyLine: number | null): (item: string) => number | null {
    let row = keyLine === null ? -1 : keyLine - 1;
    let col = 0;
    return (item) => {
      if (row < 0) return keyLine;
      const forms = [JSON.stringify(item), `'${item}'`];
      for (let r = row; r < Math.max(where.to, row + 1) && r < this.lines.length; r++) {
        let at = -1;
        let length = 0;
        for (const form of forms) {
          const i = this.lines[r].indexOf(form, r === row ? col : 0);
          if (i >= 0 && (at < 0 || i < at)) [at, length] = [i, form.length];
        }
        if (at >= 0) {
          [row, col] = [r, at + length];
          return r + 1;
        }
      }
      row = -1; // written in a way not searched for (escapes): stop looking, say the key's line
      return keyLine;
    };
  }

  /** The line that introduces a top-level key or table. */
  topLevel(key: string): number | null {
    return this.keys.get(`\0${key}`) ?? null;
  }
}
