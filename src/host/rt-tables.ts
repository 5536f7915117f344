// wg-quick's `Table =`: "off" (no routes), "auto" or absent (main table, policy routing for
// default routes), or a routing table given by number or by a name from iproute2's rt_tables.
import { readdirSync, readFileSync } from "node:fs";

export type TableSetting = { kind: "off" } | { kind: "auto" } | { kind: "table"; id: number; text: string };

// Where iproute2 keeps table names: the admin's files first, then the distribution's defaults.
const RT_TABLES_DIRS = ["/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"];
const BUILTIN: Record<string, number> = { unspec: 0, default: 253, main: 254, local: 255 };

/** name → id from rt_tables and rt_tables.d/*.conf (lines "ID NAME", # comments). */
export function readTableNames(dirs = RT_TABLES_DIRS): Map<string, number> {
  const names = new Map<string, number>(Object.entries(BUILTIN));
  const files: string[] = [];
  for (const dir of dirs) {
    files.push(`${dir}/rt_tables`);
    try {
      for (const f of readdirSync(`${dir}/rt_tables.d`).sort()) if (f.endsWith(".conf")) files.push(`${dir}/rt_tables.d/${f}`);
    } catch { /* no such directory */ }
  }
  for (const file of files) {
    let text: string;
    try { text = readFileSync(file, "utf8"); } catch { continue; }
    for (const line of text.split("\n")) {
      const m = /^\s*(0x[0-9a-f]+|\d+)\s+([^\s#]+)/i.exec(line);
      if (m && !names.has(m[2])) names.set(m[2], Number(m[1]));
    }
  }
  return names;
}

/** Reads a Table = value; throws naming the value when it is neither a number nor a known name. */
export function resolveTable(text: string | null, names?: () => Map<string, number>): TableSetting {
  if (text === null || text === "auto") return { kind: "auto" };
  if (text === "off") return { kind: "off" };
  if (/^\d+$/.test(text)) {
    const id = Number(text);
    if (id === 0 || id > 0xffffffff) throw new Error(`Table = ${text}: a routing table is 1-4294967295`);
    return { kind: "table", id, text };
  }
  const id = (names ?? readTableNames)().get(text);
  if (id === undefined) throw new Error(`Table = ${text}: no routing table has that name in /etc/iproute2/rt_tables`);
  return { kind: "table", id, text };
}
