// wg-quick style ini files (.conf, .ini): one [Interface] section, then [Peer] sections in order.
// Section names and keys are case-insensitive; '#' starts a comment anywhere on a line, ';' only
// at the start of one. This file only splits the text into sections and keys; validate.ts
// interprets the values.
import { ConfigError } from "./model.ts";
import { keysOf, type RawConfig, type RawSection, sectionLabel, type SectionKind, suggestKey } from "./validate.ts";
import { quote, truncate } from "../text.ts";

// A Map, not an object: "[__proto__]" or "[constructor]" must not find Object.prototype's members.
const SECTION_NAMES = new Map<string, SectionKind>([["interface", "interface"], ["peer", "peer"], ["mesh", "mesh"]]);

export function parseIni(text: string, file: string): RawConfig {
  const raw: RawConfig = { file, format: "ini", interface: null, peers: [] };
  let section: RawSection | null = null;
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const fail: (key: string | null, reason: string) => never = (key, reason) => {
      throw new ConfigError(file, lineNo, key, reason);
    };
    let line = lines[i].trim();
    if (line.startsWith(";")) continue;
    const hash = line.indexOf("#");
    if (hash >= 0) line = line.slice(0, hash).trim();
    if (line === "") continue;

    if (line.startsWith("[")) {
      const header = /^\[\s*([^\][]*?)\s*\]$/.exec(line);
      if (!header) fail(null, `malformed section header ${quote(line)} (expected [Interface] or [Peer])`);
      const kind = SECTION_NAMES.get(header[1].toLowerCase());
      if (!kind) fail(null, `unknown section [${truncate(header[1])}] (expected [Interface] or [Peer])`);
      section = { kind, line: lineNo, entries: new Map() };
      if (kind === "peer") {
        raw.peers.push(section);
      } else if (kind === "mesh") {
        if (raw.mesh) fail(null, `[Mesh] appears twice (first on line ${raw.mesh.line})`);
        raw.mesh = section;
      } else if (raw.interface) {
        fail(null, `[Interface] appears twice (first on line ${raw.interface.line})`);
      } else {
        raw.interface = section;
      }
      continue;
    }

    const eq = line.indexOf("=");
    if (eq < 0) fail(null, `malformed line ${quote(line)} (expected Key = Value)`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === "") fail(null, `malformed line ${quote(line)} (no key before '=')`);
    if (!section) fail(key, "key outside a section (put it under [Interface] or [Peer])");

    const spec = keysOf(section.kind).find((s) => s.ini.toLowerCase() === key.toLowerCase());
    if (!spec) {
      const other: SectionKind = section.kind === "interface" ? "peer" : "interface";
      const elsewhere = keysOf(other).some((s) => s.ini.toLowerCase() === key.toLowerCase());
      const meant = suggestKey(section.kind, key, "ini");
      fail(key, elsewhere
        ? `${key} belongs in ${sectionLabel(other, "ini")}, not in ${sectionLabel(section.kind, "ini")}`
        : `unknown key in ${sectionLabel(section.kind, "ini")}${meant ? ` (did you mean ${meant}?)` : ""}`);
    }
    if (value === "") fail(key, "empty value");
    const entry = section.entries.get(spec.ini);
    if (!entry) {
      section.entries.set(spec.ini, { key, line: lineNo, items: [{ value, line: lineNo }] });
    } else if (spec.list || spec.repeat) {
      entry.items.push({ value, line: lineNo }); // AllowedIPs / Address / PostUp lines accumulate, as in wg-quick
    } else {
      fail(key, `duplicate key (already set on line ${entry.line})`);
    }
  }
  return raw;
}
