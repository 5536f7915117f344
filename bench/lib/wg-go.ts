// The wireguard-go builds the benchmarks compare against, and starting one of them.
//
//   - "wireguard-go (current)": the current upstream build, with the 2023 offloads (TUN TSO/GRO,
//     UDP GSO/GRO). WIREGUARD_GO=PATH names one; otherwise the one provided next to the
//     repository is used when present. This is the reference every ratio is taken against.
//   - "wireguard-go (Debian)": Debian's package (/usr/bin/wireguard-go, 0.0.20220316, before the
//     offloads), kept as a second row when installed; the reference only when no current build
//     is found, and then the output says so.
//
// Paths are never printed or written to the results: a build is named by its label and the
// version it reports.
import { existsSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import type { WgHostSetup } from "../../test/helpers/wireguard.ts";
import { REPO, waitFor, type ConfigDir, type Host, type SpawnedProcess } from "./lab.ts";

export type WgGoKind = "wg-go-current" | "wg-go";

export interface WgGoBuild {
  kind: WgGoKind;
  /** "wireguard-go (current)" or "wireguard-go (Debian)". */
  label: string;
  /** What `--version` reports, e.g. "v0.0.20250522". */
  version: string;
  binary: string;
}

export interface WgGoBuilds {
  current: WgGoBuild | null;
  debian: WgGoBuild | null;
  /** Why a build that was asked for is missing (for the output; no paths). */
  notes: string[];
  /** `wg` is needed to configure either. */
  hasWg: boolean;
}

function executable(path: string): boolean {
  try {
    return statSync(path).isFile() && (statSync(path).mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** "wireguard-go v0.0.20250522" → "v0.0.20250522" (the whole first line if it has no version). */
export function wgGoVersion(binary: string): string {
  try {
    const r = Bun.spawnSync([binary, "--version"], { stdout: "pipe", stderr: "pipe" });
    const first = `${r.stdout.toString()}${r.stderr.toString()}`.trim().split("\n")[0]?.trim() ?? "";
    return /\bv?\d+\.\d+\.\d+\S*/.exec(first)?.[0] ?? (first || "unknown");
  } catch {
    return "unknown";
  }
}

let cached: WgGoBuilds | null = null;

/** The current and the Debian build, whichever exist. */
export function findWireguardGo(): WgGoBuilds {
  if (cached) return cached;
  const notes: string[] = [];
  let current: WgGoBuild | null = null;
  const named = process.env.WIREGUARD_GO;
  const candidate = named || join(REPO, "../shared/ref/wireguard-go");
  if (executable(candidate)) {
    current = { kind: "wg-go-current", label: "wireguard-go (current)", version: wgGoVersion(candidate), binary: candidate };
  } else if (named) {
    notes.push("WIREGUARD_GO does not name an executable file: no wireguard-go (current)");
  } else {
    notes.push("no current wireguard-go build found (WIREGUARD_GO=PATH names one)");
  }
  let debian: WgGoBuild | null = null;
  const system = existsSync("/usr/bin/wireguard-go") ? "/usr/bin/wireguard-go" : Bun.which("wireguard-go");
  if (system && executable(system) && (!current || realpathSync(system) !== realpathSync(current.binary))) {
    debian = { kind: "wg-go", label: "wireguard-go (Debian)", version: wgGoVersion(system), binary: system };
  }
  cached = { current, debian, notes, hasWg: Bun.which("wg") !== null };
  return cached;
}

/** The build ratios are taken against: the current one, else Debian's (null if neither). */
export function referenceBuild(): WgGoBuild | null {
  const b = findWireguardGo();
  return b.current ?? b.debian;
}

/** One line for the output: what is compared against what. */
export function referenceNote(): string {
  const b = findWireguardGo();
  if (b.current) {
    return `ratios are against ${b.current.label} ${b.current.version}` +
      (b.debian ? `; ${b.debian.label} ${b.debian.version} is a second row` : "");
  }
  if (b.debian) {
    return `NOTE: ${b.notes.join("; ")}. Ratios are against ${b.debian.label} ${b.debian.version}, ` +
      "a build from before wireguard-go's TUN and UDP offloads (2023): they overstate any lead over the current wireguard-go";
  }
  return `no wireguard-go found (${b.notes.join("; ")}; no Debian wireguard-go either)`;
}

/** Starts `build` in `host` as interface `ifname` and configures it with `wg` and `ip`. */
export async function startWgGoBuild(
  build: WgGoBuild,
  host: Host,
  dir: ConfigDir,
  ifname: string,
  setup: WgHostSetup,
): Promise<SpawnedProcess> {
  const proc = host.spawn([build.binary, "-f", ifname], { env: { WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" } });
  await waitFor(() => {
    if (proc.proc.exitCode !== null) throw new Error(`${build.label} ${ifname} exited:\n${proc.output().slice(-1500)}`);
    return existsSync(`/var/run/wireguard/${ifname}.sock`);
  }, 5000, `${build.label} ${ifname} control socket`);
  const keyFile = dir.write(`${ifname}.key`, `${setup.keys.privateKey}\n`);
  const args = ["wg", "set", ifname, "private-key", keyFile];
  if (setup.listenPort) args.push("listen-port", String(setup.listenPort));
  // Many peers: one `wg set` per 200, so that no command line grows too long.
  const chunks: Array<typeof setup.peers> = [];
  for (let i = 0; i < setup.peers.length; i += 200) chunks.push(setup.peers.slice(i, i + 200));
  if (chunks.length === 0) chunks.push([]);
  for (const [i, chunk] of chunks.entries()) {
    const cmd = i === 0 ? [...args] : ["wg", "set", ifname];
    for (const p of chunk) {
      cmd.push("peer", p.publicKey, "allowed-ips", p.allowedIps.join(","));
      if (p.endpoint) cmd.push("endpoint", p.endpoint);
    }
    const r = await host.run(cmd, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`wg set ${ifname} failed: ${r.stderr}`);
  }
  for (const a of setup.addresses) await host.ip(`addr add ${a} dev ${ifname}`);
  await host.ip(`link set ${ifname} mtu 1420 up`);
  return proc;
}
