// The nftables rules wg-quick adds with a default route (per address family): packets for the
// tunnel's own addresses that arrive on another interface are dropped (so nobody on the LAN can
// reach them), and the fwmark of the tunnel's UDP packets is saved in conntrack and restored on
// replies, so reverse-path filtering passes them. Through the `nft` binary, as wg-quick does;
// without it, one warning and no rules.
import { formatIp, type Cidr } from "../net/ip.ts";
import type { Logger } from "../log.ts";

export type NftFamily = "ip" | "ip6";

/** Recorded so that the table can be deleted later, also by a later process. */
export interface FirewallApplied {
  family: NftFamily;
  table: string;
}

export function nftTableName(ifname: string): string {
  return `wontun-${ifname}`;
}

/** The nft script: the table is created and deleted first, so it replaces any older one atomically. */
export function firewallScript(family: NftFamily, ifname: string, addresses: Cidr[], fwmark: number): string {
  const table = `${family} ${nftTableName(ifname)}`;
  const lines = [
    `add table ${table}`,
    `delete table ${table}`,
    `add table ${table}`,
    `add chain ${table} preraw { type filter hook prerouting priority -300; }`,
    `add chain ${table} premangle { type filter hook prerouting priority -150; }`,
    `add chain ${table} postmangle { type filter hook postrouting priority -150; }`,
  ];
  for (const a of addresses.filter((x) => (x.address.length === 16) === (family === "ip6"))) {
    lines.push(`add rule ${table} preraw iifname != "${ifname}" ${family} daddr ${formatIp(a.address)} fib saddr type != local drop`);
  }
  lines.push(`add rule ${table} postmangle meta l4proto udp mark ${fwmark} ct mark set mark`);
  lines.push(`add rule ${table} premangle meta l4proto udp meta mark set ct mark`);
  return `${lines.join("\n")}\n`;
}

async function nft(script: string): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn(["nft", "-f", "-"], { stdin: new TextEncoder().encode(script), stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { code, stderr: stderr.trim() };
}

let warnedNoNft = false;

/** Installs the rules; null when `nft` is not installed (warned once per process). */
export async function applyFirewall(family: NftFamily, ifname: string, addresses: Cidr[], fwmark: number, log: Logger): Promise<FirewallApplied | null> {
  if (!Bun.which("nft")) {
    if (!warnedNoNft) {
      log.warn("nft (nftables) is not installed: packets for the tunnel's addresses arriving on other interfaces are not dropped, " +
        "and replies are not re-marked for reverse-path filtering (wg-quick adds both)");
      warnedNoNft = true;
    }
    return null;
  }
  const script = firewallScript(family, ifname, addresses, fwmark);
  log.info(`[#] nft -f - (table ${family} ${nftTableName(ifname)})`);
  const r = await nft(script);
  if (r.code !== 0) throw new Error(`nft failed with exit status ${r.code}: ${r.stderr}`);
  return { family, table: nftTableName(ifname) };
}

/** Deletes the table; one that is already gone is not an error. */
export async function removeFirewall(applied: FirewallApplied, log: Logger): Promise<void> {
  if (!Bun.which("nft")) return;
  log.info(`[#] nft delete table ${applied.family} ${applied.table}`);
  // "add" first makes "delete" succeed when the table is already gone.
  const r = await nft(`add table ${applied.family} ${applied.table}\ndelete table ${applied.family} ${applied.table}\n`);
  if (r.code !== 0) throw new Error(`nft failed with exit status ${r.code}: ${r.stderr}`);
}
