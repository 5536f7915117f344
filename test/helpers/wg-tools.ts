// Driving a userspace WireGuard implementation with the real tools (`wg`, `wg-quick`) inside lab
// namespaces, and talking to its control socket (the cross-platform userspace API) directly.
//
// The implementation under test is chosen by UAPI_IMPL: "wontun" (default: dist/wontun, built by
// `npm run build`) or "wireguard-go" (Debian's, which already speaks the API: a run against it
// validates the tests themselves). The other ends of tunnels are always stock wireguard-go.
import { existsSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { afterEach } from "bun:test";
import { Lab, waitFor, type Host, type RunResult, type SpawnedProcess } from "./netns.ts";
import { ConfigDir } from "./wontun-node.ts";

export type ImplName = "wireguard-go" | "wontun";

export interface Implementation {
  name: ImplName;
  /** What wg-quick's WG_QUICK_USERSPACE_IMPLEMENTATION is set to. */
  binary: string;
  /**
   * Starts `BINARY -f IFACE` (WG_PROCESS_FOREGROUND=1 too) in `host`, tracked by the lab, and
   * resolves once the control socket answers `wg show`.
   */
  start(host: Host, iface: string): Promise<SpawnedProcess>;
}

export const UAPI_DIR = "/var/run/wireguard";
export const uapiSocket = (iface: string) => `${UAPI_DIR}/${iface}.sock`;

function implementation(name: ImplName, binary: string): Implementation {
  return {
    name,
    binary,
    async start(host, iface) {
      const proc = host.spawn([binary, "-f", iface], { env: { WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" } });
      await waitForSocket(host, iface, proc);
      return proc;
    },
  };
}

/**
 * Waits until IFACE's control socket answers `wg show`; fails at once, with its output, if the
 * foreground daemon `proc` exits first.
 */
export async function waitForSocket(host: Host, iface: string, proc: SpawnedProcess, timeoutMs = 5000): Promise<void> {
  const early = proc.exited.then((code) => {
    throw new Error(`${iface}'s daemon exited (${code}) before its control socket answered:\n${proc.output()}`);
  });
  const ready = waitFor(async () => existsSync(uapiSocket(iface)) && (await host.run(["wg", "show", iface])).code === 0,
    timeoutMs, `${iface} control socket:\n${proc.output()}`);
  early.catch(() => {}); // only raced below; once ready, a later exit is the test's business
  await Promise.race([ready, early]);
}

const REPO = resolve(import.meta.dir, "../..");

/** Stock wireguard-go: the other end of every tunnel, and the implementation when UAPI_IMPL=wireguard-go. */
export const WIREGUARD_GO = implementation("wireguard-go", Bun.which("wireguard-go") ?? "/usr/bin/wireguard-go");
/** dist/wontun (`npm run build`); WONTUN_BINARY points elsewhere, e.g. at a build under test. */
const WONTUN = implementation("wontun", process.env.WONTUN_BINARY ?? join(REPO, "dist/wontun"));

const chosen = process.env.UAPI_IMPL ?? "wontun";
if (chosen !== "wontun" && chosen !== "wireguard-go") throw new Error(`UAPI_IMPL must be wontun or wireguard-go, not "${chosen}"`);
/** The implementation under test. */
export const IMPL: Implementation = chosen === "wontun" ? WONTUN : WIREGUARD_GO;
/** wireguard-go differs from the spec wontun follows in a few places; those assertions are skipped for it. */
export const IS_WIREGUARD_GO = IMPL.name === "wireguard-go";

/** What these tests need besides root: the tools, stock wireguard-go, and the implementation's binary. */
export const hasWgTools: boolean =
  ["wg", "wg-quick", "wireguard-go", "unshare", "nc"].every((t) => Bun.which(t) !== null) && existsSync(IMPL.binary);

// --- per-test lab -------------------------------------------------------------------------

export interface WgEnv {
  /** A new lab whose namespaces are named h3XXXX-*, cleaned up after the test. */
  lab(tag: string): Promise<Lab>;
  dir(): ConfigDir;
  /** A WireGuard interface name unique to this test (the socket directory is shared by all namespaces). */
  iface(suffix: string): string;
}

/**
 * A lab, a config directory and interface names for each test of the calling file. After each
 * test, passed or not: WireGuard interfaces are deleted (so the daemons exit and remove their
 * sockets as they would in use), the lab kills whatever is left, and any socket a killed daemon
 * left behind is removed. Call at the top level of a test file.
 */
export function wgLabPerTest(): WgEnv {
  let lab: Lab | null = null;
  let dir: ConfigDir | null = null;
  const ifaces = new Set<string>();
  afterEach(async () => {
    try {
      if (lab) {
        for (const host of lab.hosts) {
          const links = await host.run(["ip", "-o", "link", "show"]);
          for (const name of ifaces) {
            if (new RegExp(`^\\d+: ${name}[:@]`, "m").test(links.stdout)) await host.run(["ip", "link", "del", name]);
          }
        }
        const sockets = [...ifaces].map(uapiSocket);
        await waitFor(() => sockets.every((s) => !existsSync(s)), 2000, "daemons to remove their sockets").catch(() => {});
        await lab.cleanup();
      }
    } finally {
      for (const name of ifaces) rmSync(uapiSocket(name), { force: true });
      dir?.remove();
      lab = null;
      dir = null;
      ifaces.clear();
    }
  });
  return {
    async lab(tag) {
      lab = await Lab.create(tag, "h3");
      return lab;
    },
    dir() {
      dir ??= new ConfigDir();
      return dir;
    },
    iface(suffix) {
      if (!lab) throw new Error("create the lab first: interface names carry its id");
      const name = `${lab.id}${suffix}`; // h3 + 4 hex digits + suffix
      if (name.length > 15 || !/^[a-zA-Z0-9_=+.-]+$/.test(name)) throw new Error(`bad interface name ${name}`);
      ifaces.add(name);
      return name;
    },
  };
}

// --- wg -----------------------------------------------------------------------------------

/** `wg ARGS...` inside `host`; throws with stderr unless it exits 0. Returns stdout. */
export async function wg(host: Host, args: string[], stdin?: string): Promise<string> {
  const r = await wgTry(host, args, stdin);
  if (r.code !== 0) throw new Error(`\`wg ${args.join(" ")}\` in ${host.short} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export function wgTry(host: Host, args: string[], stdin?: string): Promise<RunResult> {
  return host.run(["wg", ...args], { timeoutMs: 5000, stdin });
}

export interface DumpPeer {
  publicKey: string;
  presharedKey: string; // "(none)"
  endpoint: string; // "(none)"
  allowedIps: string; // sorted, comma-separated, or "(none)"
  latestHandshake: number;
  rx: number;
  tx: number;
  keepalive: string; // "off" or seconds
}

export interface Dump {
  privateKey: string;
  publicKey: string;
  listenPort: number;
  fwmark: string; // "off" or 0x...
  peers: Map<string, DumpPeer>;
}

/** `wg show IFACE dump`, parsed; allowed IPs are sorted (implementations may order them differently). */
export async function dump(host: Host, iface: string): Promise<Dump> {
  return parseDump(await wg(host, ["show", iface, "dump"]));
}

export function parseDump(text: string): Dump {
  const lines = text.split("\n").filter(Boolean);
  const head = lines[0].split("\t");
  if (head.length !== 4) throw new Error(`bad dump interface line: ${JSON.stringify(lines[0])}`);
  const peers = new Map<string, DumpPeer>();
  for (const line of lines.slice(1)) {
    const f = line.split("\t");
    if (f.length !== 8) throw new Error(`bad dump peer line: ${JSON.stringify(line)}`);
    peers.set(f[0], {
      publicKey: f[0],
      presharedKey: f[1],
      endpoint: f[2],
      allowedIps: sortList(f[3], ","),
      latestHandshake: Number(f[4]),
      rx: Number(f[5]),
      tx: Number(f[6]),
      keepalive: f[7],
    });
  }
  return { privateKey: head[0], publicKey: head[1], listenPort: Number(head[2]), fwmark: head[3], peers };
}

const sortList = (list: string, sep: string) => list.split(sep).map((s) => s.trim()).sort().join(sep);

/**
 * Normalizes `wg show IFACE` / `wg showconf IFACE` text for comparison: sections (interface,
 * each peer) sorted by their first line, and allowed IPs sorted within a line, since peer and
 * prefix order is the implementation's (wireguard-go's peers come from a Go map).
 */
export function normalizeShow(text: string): string {
  const sections = text.trim().split(/\n\s*\n/).map((section) =>
    section.split("\n").map((line) => {
      const m = /^(\s*(?:allowed ips: |AllowedIPs = ))(.*)$/.exec(line);
      return m ? m[1] + sortList(m[2], ", ") : line;
    }).join("\n"));
  const [first, ...rest] = sections;
  return [first, ...rest.sort()].join("\n\n");
}

/** Brings a WireGuard interface up with addresses and extra routes, as wg-quick would. */
export async function linkUp(host: Host, iface: string, addresses: string[], routes: string[] = []): Promise<void> {
  for (const a of addresses) await host.ip(`addr add ${a} dev ${iface}${a.includes(":") ? " nodad" : ""}`);
  await host.ip(`link set ${iface} mtu 1420 up`);
  for (const r of routes) await host.ip(`route add ${r} dev ${iface}`);
}

/**
 * The pids of every process inside `host`'s namespace (`ip netns pids`), which for these tests
 * means the daemons: wg and wg-quick have exited by the time this is asked.
 */
export async function pidsIn(host: Host): Promise<number[]> {
  const proc = Bun.spawn(["ip", "netns", "pids", host.name], { stdout: "pipe", stderr: "ignore" });
  const text = await new Response(proc.stdout).text();
  await proc.exited;
  return text.split(/\s+/).filter(Boolean).map(Number);
}

// --- wg-quick -----------------------------------------------------------------------------

/**
 * `wg-quick up|down CONFIG` inside `host`, with WG_QUICK_USERSPACE_IMPLEMENTATION=impl, in a
 * private mount namespace whose /etc/resolv.conf is a throwaway file: whatever wg-quick (or a
 * hook) might do to DNS stays there. Everything else it does (ip, sysctl, nft) is per network
 * namespace. LOG_LEVEL is unset so that a daemonizing implementation leaves our pipes alone,
 * as it would under a service manager; wg-quick up therefore returns as soon as it is done.
 */
export async function wgQuick(host: Host, dir: ConfigDir, action: "up" | "down", config: string, impl: Implementation = IMPL): Promise<RunResult> {
  const resolv = dir.write("resolv.conf", "# wg-quick test: not the host's resolv.conf\n");
  return host.run([
    "unshare", "-m", "--propagation", "private",
    "sh", "-c", `{ [ ! -e /etc/resolv.conf ] || mount --bind "$0" /etc/resolv.conf; } && exec "$@"`, resolv,
    "env", "-u", "LOG_LEVEL", "-u", "WG_PROCESS_FOREGROUND", `WG_QUICK_USERSPACE_IMPLEMENTATION=${impl.binary}`,
    "wg-quick", action, config,
  ], { timeoutMs: 20_000 });
}

// --- the control socket, directly ---------------------------------------------------------

export interface UapiReply {
  /** Everything the daemon sent back. */
  answer: string;
  /** The daemon closed the connection (or reset it) before we did. */
  closed: boolean;
  /** No complete answer and no close within the timeout. */
  timedOut: boolean;
}

/** Opens a connection to IFACE's control socket. */
export function uapiConnect(iface: string): Promise<Socket> {
  return new Promise((resolvePromise, reject) => {
    const sock = createConnection({ path: uapiSocket(iface) });
    sock.once("connect", () => {
      sock.off("error", reject);
      sock.on("error", () => {}); // reported through uapiRequest's close handling
      resolvePromise(sock);
    });
    sock.once("error", reject);
  });
}

/**
 * Sends one raw request and waits for the answer: a text ending in an `errno=N` line and an
 * empty line, or the daemon closing the connection. A daemon that stops reading (say, after a
 * size cap) may reset the connection while we write; that counts as closed, not as an error.
 */
export async function uapiRequest(iface: string, request: string | Uint8Array, timeoutMs = 5000): Promise<UapiReply> {
  const sock = await uapiConnect(iface);
  return new Promise((resolvePromise) => {
    let answer = "";
    let done = false;
    const finish = (closed: boolean, timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolvePromise({ answer, closed, timedOut });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      answer += chunk;
      if (/(^|\n)errno=-?\d+\n\n$/.test(answer)) finish(false, false);
    });
    sock.on("close", () => finish(true, false));
    sock.on("error", () => finish(true, false));
    sock.write(request);
  });
}

/** The errno of a UAPI answer (`errno=-22` → -22), or null when there is none. */
export function errnoOf(answer: string): number | null {
  const m = /(?:^|\n)errno=(-?\d+)\n\n$/.exec(answer);
  return m ? Number(m[1]) : null;
}

/** A 32-byte key from `wg`'s base64 as the UAPI's hex. */
export const keyHex = (base64: string) => Buffer.from(base64, "base64").toString("hex");

// --- configuring a node with `wg set` -----------------------------------------------------

export interface PeerSpec {
  publicKey: string;
  allowedIps: string[];
  endpoint?: string;
  psk?: string;
  keepalive?: number;
}

export interface NodeSpec {
  keys: { privateKey: string; publicKey: string };
  listenPort?: number;
  fwmark?: string;
  peers?: PeerSpec[];
}

/** The `wg set` arguments that add or update `peer` (key files are written to `dir`). */
export function peerArgs(dir: ConfigDir, peer: PeerSpec): string[] {
  const args = ["peer", peer.publicKey, "allowed-ips", peer.allowedIps.join(",")];
  if (peer.endpoint) args.push("endpoint", peer.endpoint);
  if (peer.psk) args.push("preshared-key", dir.write(`psk-${Bun.hash(peer.psk).toString(16)}`, `${peer.psk}\n`));
  if (peer.keepalive !== undefined) args.push("persistent-keepalive", String(peer.keepalive));
  return args;
}

/** Configures `iface` entirely with one `wg set`. */
export async function wgSet(host: Host, dir: ConfigDir, iface: string, spec: NodeSpec): Promise<void> {
  const args = ["set", iface, "private-key", dir.write(`key-${Bun.hash(spec.keys.privateKey).toString(16)}`, `${spec.keys.privateKey}\n`)];
  if (spec.listenPort !== undefined) args.push("listen-port", String(spec.listenPort));
  if (spec.fwmark !== undefined) args.push("fwmark", spec.fwmark);
  for (const p of spec.peers ?? []) args.push(...peerArgs(dir, p));
  await wg(host, args);
}

/**
 * Starts `impl` on `iface` in `host`, configures it with `wg set`, and brings the link up with
 * `addresses` (and routes for `routes`). Returns the daemon.
 */
export async function startNode(
  impl: Implementation,
  host: Host,
  dir: ConfigDir,
  iface: string,
  spec: NodeSpec & { addresses: string[]; routes?: string[] },
): Promise<SpawnedProcess> {
  const proc = await impl.start(host, iface);
  await wgSet(host, dir, iface, spec);
  await linkUp(host, iface, spec.addresses, spec.routes);
  return proc;
}

/** `wg show IFACE SUBCOMMAND` (transfer, latest-handshakes, endpoints, ...) as public key → fields. */
export async function showTable(host: Host, iface: string, what: string): Promise<Map<string, string[]>> {
  const out = await wg(host, ["show", iface, what]);
  return new Map(out.split("\n").filter(Boolean).map((line) => {
    const [key, ...rest] = line.split("\t");
    return [key, rest];
  }));
}
