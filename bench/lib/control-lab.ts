// The control-plane bench's lab: two namespaces named "h6XXXX-a"/"-b" (the prefix keeps them
// apart from other suites sharing this machine), userspace WireGuard daemons started in them
// (wontun's wireguard-go-compatible invocation or wireguard-go itself), and cleanup of all of it
// (processes, namespaces, control sockets) when the run ends, fails or is interrupted.
import { existsSync, rmSync } from "node:fs";
import { Lab, type Host, type SpawnedProcess } from "../../test/helpers/netns.ts";
import { uapiRequest } from "./control-uapi.ts";

export { type Host, type SpawnedProcess };

export const SOCKET_DIR = "/var/run/wireguard";

export const socketPath = (ifname: string) => `${SOCKET_DIR}/${ifname}.sock`;

export interface ControlLab {
  lab: Lab;
  /** "h6" + 4 hex digits: every interface name of this run starts with it, so sockets are unique. */
  id: string;
  a: Host;
  b: Host;
}

let interrupted = false;
const pending: Array<() => Promise<void>> = [];

export function wasInterrupted(): boolean {
  return interrupted;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping, removing namespaces, processes and sockets...`);
    Promise.all(pending.map((f) => f().catch(() => {}))).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

/**
 * Runs `body` with hosts a (192.0.2.2) and b (192.0.2.1) on one veth pair, then removes them, the
 * processes in them and the control sockets named after the lab. The lab's own sentinel kills and
 * deletes the namespaces if this process is killed outright; a second one removes the sockets.
 */
export async function withControlLab<T>(body: (env: ControlLab) => Promise<T>): Promise<T> {
  const lab = await Lab.create("bench:control", "h6");
  const id = lab.id;
  const removeSockets = () => {
    for (const f of Bun.spawnSync(["sh", "-c", `ls ${SOCKET_DIR}/${id}*.sock 2>/dev/null`]).stdout.toString().split("\n")) {
      if (f.trim()) rmSync(f.trim(), { force: true });
    }
  };
  const sentinel = Bun.spawnSync(
    ["sh", "-c", `sh -c "$0" </dev/null >/dev/null 2>&1 & echo $!`, [
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 0.5; done`,
      "sleep 1", // the lab's own sentinel kills the daemons first
      `rm -f ${SOCKET_DIR}/${id}*.sock`,
    ].join("\n")],
    { stdio: ["ignore", "pipe", "ignore"], detached: true },
  );
  const sentinelPid = Number(sentinel.stdout.toString().trim()) || 0;
  let done = false;
  const cleanup = async () => {
    if (done) return;
    done = true;
    await lab.cleanup();
    removeSockets();
    if (sentinelPid > 0) {
      try {
        process.kill(sentinelPid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  };
  pending.push(cleanup);
  try {
    const a = await lab.host("a");
    const b = await lab.host("b");
    await lab.link(a, "192.0.2.2/24", b, "192.0.2.1/24");
    return await body({ lab, id, a, b });
  } finally {
    await cleanup();
  }
}

/**
 * A userspace WireGuard daemon in the foreground, `BINARY -f IFACE` (wontun and wireguard-go take
 * the same invocation), ready once its control socket answers `get=1`.
 */
export async function startDaemon(host: Host, binary: string, ifname: string): Promise<SpawnedProcess> {
  const proc = host.spawn([binary, "-f", ifname], { env: { WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" } });
  let exited = false;
  proc.exited.then(() => (exited = true));
  const deadline = performance.now() + 15_000;
  let why = "";
  for (;;) {
    if (exited) {
      why = "exited at start";
      break;
    }
    if (existsSync(socketPath(ifname))) {
      const answer = await uapiRequest(socketPath(ifname), "get=1\n\n", 2000).catch(() => null);
      if (answer?.errno === 0) return proc;
    }
    if (performance.now() > deadline) {
      why = "its control socket did not answer get=1 within 15 s";
      break;
    }
    await Bun.sleep(20);
  }
  proc.kill("SIGKILL");
  await proc.exited;
  const out = proc.output().trim().split("\n").filter(Boolean).slice(-3).join(" / ");
  throw new Error(`${why}${out ? `: ${out}` : ""}`);
}

/** Stops a daemon (SIGTERM, then SIGKILL after 3 s) and removes its socket if it left one. */
export async function stopDaemon(proc: SpawnedProcess, ifname: string): Promise<void> {
  proc.kill("SIGTERM");
  const gone = await Promise.race([proc.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
  if (!gone) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
  rmSync(socketPath(ifname), { force: true });
}
