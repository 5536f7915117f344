// `wontun show`: device statuses as `wg show` prints them (wireguard-tools src/show.c: layout, peer
// order, pretty times and sizes, colors), plus wontun's own lines (mode, session state, drops),
// as JSON (`--json`, schema below) and as `wg show … dump`.
import { encodeKey } from "../crypto/keys.ts";
import { formatCidr, formatIp } from "../net/ip.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import type { DeviceStatus, PeerStatus } from "./model.ts";

// wireguard-tools' terminal.h escapes.
const RESET = "\x1b[0m";
const BOLD = "\x1b[1m";
const RED = "\x1b[31m";
const GREEN = "\x1b[32m";
const YELLOW = "\x1b[33m";
const CYAN = "\x1b[36m";

export interface RenderOptions {
  /** ANSI colors as `wg` uses them; the CLI passes true on a TTY when NO_COLOR is unset. */
  color: boolean;
  /** Unix time in seconds for "… ago"; the current time by default. */
  now?: number;
}

/** Statuses in `wg show`'s layout, one block per device, blocks separated by a blank line. */
export function renderShow(statuses: DeviceStatus[], opts: RenderOptions): string {
  const now = Math.floor(opts.now ?? Date.now() / 1000);
  const paint = (codes: string, text: string) => (opts.color ? codes + text + RESET : text);
  return statuses.map((s) => renderDevice(s, now, paint, opts.color)).join("\n");
}

type Paint = (codes: string, text: string) => string;

function renderDevice(s: DeviceStatus, now: number, paint: Paint, color: boolean): string {
  const out: string[] = [];
  const field = (label: string, value: string) => out.push(`  ${paint(BOLD, label)}: ${value}`);
  out.push(`${color ? RESET : ""}${paint(GREEN + BOLD, "interface")}: ${paint(GREEN, s.interfaceName)}`);
  if (s.publicKey) field("public key", encodeKey(s.publicKey));
  if (s.privateKey) field("private key", "(hidden)");
  if (s.listenPort) field("listening port", String(s.listenPort));
  if (s.fwmark) field("fwmark", `0x${s.fwmark.toString(16)}`);
  field("mode", s.mode === "wireguard" ? "wireguard" : "wontun (plaintext)");
  if (s.mode === "wontun" && s.name !== "") field("name", s.name);
  const drops = Object.entries(s.drops).filter(([, n]) => n > 0);
  if (drops.length > 0) field("dropped", drops.map(([why, n]) => `${n} ${why.replaceAll("_", " ")}`).join(", "));
  if (s.threads) field("data-path threads", `${s.threads.length} (moved ${s.threads.map((b) => bytes(b, paint)).join(", ")})`);
  if (s.mesh) {
    const m = s.mesh;
    field("mesh store", `${m.store} ${m.storeState === "connected" ? paint(GREEN, "connected") : paint(RED, m.storeState)}${m.storeError ? ` (${m.storeError})` : ""}, revision ${m.revision}`);
    field("mesh address", `${m.address || "(none yet)"}${m.published ? "" : ", not published"}`);
    for (const member of m.members) {
      field("mesh member", [member.name || "?", member.address, member.endpoint, `[${member.state}]`, member.key.slice(0, 12) + "…"].filter((x) => x !== "").join(" "));
    }
  }
  const peers = sortPeers(s.peers);
  for (const p of peers) {
    out.push("");
    out.push(`${paint(YELLOW + BOLD, "peer")}: ${paint(YELLOW, peerTitle(s, p))}`);
    if (s.mode === "wireguard" && p.name !== "") field("name", p.name);
    if (p.presharedKey) field("preshared key", "(hidden)");
    if (p.endpoint) field("endpoint", formatEndpoint(p.endpoint));
    field(
      "allowed ips",
      p.allowedIps.length === 0
        ? "(none)"
        : p.allowedIps.map((c) => `${formatIp(c.address)}${paint(CYAN, "/")}${c.prefix}`).join(", "),
    );
    if (p.lastHandshake.sec) field("latest handshake", ago(p.lastHandshake.sec, now, paint));
    if (p.rxBytes || p.txBytes) {
      field("transfer", `${bytes(p.rxBytes, paint)} received, ${bytes(p.txBytes, paint)} sent`);
    }
    if (p.persistentKeepalive) field("persistent keepalive", `every ${prettyTime(p.persistentKeepalive, paint)}`);
    if (p.state !== "") field("state", p.state);
  }
  return out.map((l) => l + "\n").join("");
}

function peerTitle(s: DeviceStatus, p: PeerStatus): string {
  if (s.mode === "wireguard" && p.publicKey) return encodeKey(p.publicKey);
  return p.name;
}

/** wg's order: most recent handshake first, peers that never completed one last (stable). */
export function sortPeers(peers: PeerStatus[]): PeerStatus[] {
  const never = (p: PeerStatus) => p.lastHandshake.sec === 0 && p.lastHandshake.nsec === 0;
  return [...peers].sort((a, b) => {
    if (never(a) !== never(b)) return never(a) ? 1 : -1;
    return b.lastHandshake.sec - a.lastHandshake.sec || b.lastHandshake.nsec - a.lastHandshake.nsec;
  });
}

const UNITS: [string, number][] = [
  ["year", 365 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

/** "1 year, 2 days, 1 minute, 5 seconds"; "" for 0 (as wg's pretty_time). */
function prettyTime(seconds: number, paint: Paint): string {
  const parts: string[] = [];
  let left = seconds;
  for (const [unit, size] of UNITS) {
    const n = Math.floor(left / size);
    left %= size;
    if (n) parts.push(`${n} ${paint(CYAN, n === 1 ? unit : unit + "s")}`);
  }
  return parts.join(", ");
}

function ago(sec: number, now: number, paint: Paint): string {
  if (now === sec) return "Now";
  if (now < sec) return `(${paint(RED, "System clock wound backward; connection problems may ensue.")})`;
  return `${prettyTime(now - sec, paint)} ago`;
}

const SIZES: [string, number][] = [
  ["KiB", 1024],
  ["MiB", 1024 ** 2],
  ["GiB", 1024 ** 3],
  ["TiB", 1024 ** 4],
];

/** "512 B", "1.23 KiB", … as wg's bytes(): two decimals, binary units up to TiB. */
function bytes(b: number, paint: Paint): string {
  if (b < 1024) return `${b} ${paint(CYAN, "B")}`;
  let i = 0;
  while (i < SIZES.length - 1 && b >= SIZES[i][1] * 1024) i++;
  return `${fixed2(b / SIZES[i][1])} ${paint(CYAN, SIZES[i][0])}`;
}

/** printf("%.2f"): glibc rounds exact ties to even, where toFixed would round them up. */
function fixed2(x: number): string {
  const scaled = x * 100;
  const floor = Math.floor(scaled);
  if (scaled - floor === 0.5 && floor % 2 === 0) return (floor / 100).toFixed(2);
  return x.toFixed(2);
}

/**
 * `wontun show --json`, schema version 1 (documented in the README; test/unit/status-render.test.ts
 * pins it):
 *   { "version": 1, "interfaces": [ {
 *       "interface": string, "mode": "wireguard" | "wontun",
 *       "name": string | null,            // wontun: this host's handshake name
 *       "publicKey": base64 | null, "hasPrivateKey": boolean,
 *       "listenPort": number, "fwmark": number (0 = off),
 *       "drops": { reason: count },
 *       "threads": [ { "thread": number, "bytes": number } ],   // only with --threads > 1
 *       "peers": [ {
 *         "publicKey": base64 | null, "name": string | null, "hasPresharedKey": boolean,
 *         "endpoint": "ip:port" | "[ip6]:port" | null, "allowedIps": [ "cidr", … ],
 *         "latestHandshake": unix seconds | null, "latestHandshakeAgo": seconds | null,
 *         "rxBytes": number, "txBytes": number, "persistentKeepalive": seconds (0 = off),
 *         "state": string } ] } ] }
 * Peers keep the daemon's order. Secrets never appear.
 */
export function showJson(statuses: DeviceStatus[], now: number): object {
  const nowSec = Math.floor(now);
  return {
    version: 1,
    interfaces: statuses.map((s) => ({
      interface: s.interfaceName,
      mode: s.mode,
      name: s.name === "" ? null : s.name,
      publicKey: s.publicKey ? encodeKey(s.publicKey) : null,
      hasPrivateKey: s.privateKey !== null,
      listenPort: s.listenPort,
      fwmark: s.fwmark,
      drops: { ...s.drops },
      ...(s.mesh ? { mesh: s.mesh } : {}),
      ...(s.threads ? { threads: s.threads.map((bytes, thread) => ({ thread, bytes })) } : {}),
      peers: s.peers.map((p) => ({
        publicKey: p.publicKey ? encodeKey(p.publicKey) : null,
        name: p.name === "" ? null : p.name,
        hasPresharedKey: p.presharedKey !== null,
        endpoint: p.endpoint ? formatEndpoint(p.endpoint) : null,
        allowedIps: p.allowedIps.map(formatCidr),
        latestHandshake: p.lastHandshake.sec === 0 ? null : p.lastHandshake.sec,
        latestHandshakeAgo: p.lastHandshake.sec === 0 ? null : Math.max(0, nowSec - p.lastHandshake.sec),
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
        persistentKeepalive: p.persistentKeepalive,
        state: p.state,
      })),
    })),
  };
}

/**
 * `wg show … dump`: tab-separated, one line per device then one per peer, the interface name
 * first when `withInterface` (as `wg show all dump`). Like wg it prints the private key. In wontun
 * mode, keys are "(none)" and a peer's name stands in the public key column.
 */
export function renderDump(statuses: DeviceStatus[], withInterface: boolean): string {
  const out: string[] = [];
  for (const s of statuses) {
    const prefix = withInterface ? [s.interfaceName] : [];
    out.push(
      [
        ...prefix,
        s.privateKey ? encodeKey(s.privateKey) : "(none)",
        s.publicKey ? encodeKey(s.publicKey) : "(none)",
        String(s.listenPort),
        s.fwmark ? `0x${s.fwmark.toString(16)}` : "off",
      ].join("\t"),
    );
    for (const p of s.peers) {
      out.push(
        [
          ...prefix,
          peerTitle(s, p),
          p.presharedKey ? encodeKey(p.presharedKey) : "(none)",
          p.endpoint ? formatEndpoint(p.endpoint) : "(none)",
          p.allowedIps.length ? p.allowedIps.map(formatCidr).join(",") : "(none)",
          String(p.lastHandshake.sec),
          String(p.rxBytes),
          String(p.txBytes),
          p.persistentKeepalive ? String(p.persistentKeepalive) : "off",
        ].join("\t"),
      );
    }
  }
  return out.map((l) => l + "\n").join("");
}
