// wg-quick's `DNS =`: name servers and search domains for as long as the interface is up.
// Like wg-quick: `resolvconf -a IFACE -m 0 -x` when resolvconf exists; otherwise (wg-quick has
// no such branch) systemd-resolved's per-link settings through `resolvectl`; otherwise a warning.
import { existsSync, readFileSync } from "node:fs";
import type { Logger } from "../log.ts";

export type DnsMethod = "resolvconf" | "resolvectl";

/** What was done, enough to undo it (also from a later process, see state.ts). */
export interface DnsApplied {
  via: DnsMethod;
  /** resolvconf's record name (IFACE, with the interface-order prefix), or the link for resolvectl. */
  name: string;
}

/** resolvconf's record name: Debian's resolvconf orders records by the prefix in interface-order. */
function resolvconfName(ifname: string): string {
  const order = "/etc/resolvconf/interface-order";
  if (!existsSync(order)) return ifname;
  for (const line of readFileSync(order, "utf8").split("\n")) {
    const m = /^([A-Za-z0-9-]+)\*$/.exec(line.trim());
    if (m) return `${m[1]}.${ifname}`;
  }
  return ifname;
}

async function run(argv: string[], log: Logger, stdin?: string): Promise<void> {
  log.info(`[#] ${argv.join(" ")}`);
  const proc = Bun.spawn(argv, {
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const text = `${out}${err}`.trim();
  if (text) log.info(`[${argv[0]}] ${text}`);
  if (code !== 0) throw new Error(`\`${argv.join(" ")}\` failed with exit status ${code}${text ? `: ${text}` : ""}`);
}

/** How DNS would be applied here (to journal it before doing it), or null when no tool can. */
export function plannedDns(ifname: string): DnsApplied | null {
  if (Bun.which("resolvconf")) return { via: "resolvconf", name: resolvconfName(ifname) };
  if (Bun.which("resolvectl")) return { via: "resolvectl", name: ifname };
  return null;
}

/** Applies servers and search domains; returns null (after one warning) when no tool can. */
export async function applyDns(ifname: string, servers: string[], search: string[], log: Logger): Promise<DnsApplied | null> {
  if (servers.length === 0) return null; // wg-quick: search domains alone change nothing
  if (Bun.which("resolvconf")) {
    const name = resolvconfName(ifname);
    const text = servers.map((s) => `nameserver ${s}\n`).join("") + (search.length ? `search ${search.join(" ")}\n` : "");
    await run(["resolvconf", "-a", name, "-m", "0", "-x"], log, text);
    return { via: "resolvconf", name };
  }
  if (Bun.which("resolvectl")) {
    await run(["resolvectl", "dns", ifname, ...servers], log);
    // "~." makes this link the one asked for every name, as resolvconf -m 0 puts it first.
    await run(["resolvectl", "domain", ifname, "~.", ...search], log);
    return { via: "resolvectl", name: ifname };
  }
  log.warn(`DNS = ${[...servers, ...search].join(", ")} not applied: neither resolvconf nor resolvectl (systemd-resolved) is installed`);
  return null;
}

/** Undoes applyDns; a record that is already gone is not an error. */
export async function removeDns(applied: DnsApplied, log: Logger): Promise<void> {
  if (applied.via === "resolvconf") {
    if (!Bun.which("resolvconf")) return;
    await run(["resolvconf", "-d", applied.name, "-f"], log);
  } else {
    if (!Bun.which("resolvectl")) return;
    // The link may already be gone (closing the TUN removes it, and resolved forgets it).
    try { await run(["resolvectl", "revert", applied.name], log); } catch { /* link gone */ }
  }
}
