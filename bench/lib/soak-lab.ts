// The soak's lab: namespaces h10XXXX-{a,b,c} (Lab with the "h10" prefix), veth pairs named h10*,
// and a cleanup that runs once whatever ends the run: the end, an error, SIGINT/SIGTERM/SIGHUP
// (a second signal skips the wait), or SIGKILL (detached sentinels: the lab's own removes the
// namespaces and what runs in them; ours removes the control sockets and the config directory).
import { existsSync, readdirSync, rmSync } from "node:fs";
import { Lab, type Host } from "../../test/helpers/netns.ts";
import { ConfigDir } from "../../test/helpers/wontun-node.ts";

export const SOCKET_DIR = "/var/run/wireguard";

export interface SoakLab {
  lab: Lab;
  dir: ConfigDir;
  /** Set by the first SIGINT/SIGTERM/SIGHUP: the run should stop and report what it has. */
  stopRequested(): boolean;
  /** Resolves when a stop is requested (to cut sleeps short). */
  stopped: Promise<void>;
  cleanup(): Promise<void>;
}

export async function veth(a: Host, aIf: string, aCidr: string, b: Host, bIf: string, bCidr: string): Promise<void> {
  // Created inside a's namespace with the peer end moved straight into b's: never in the root one.
  await a.ip(`link add name ${aIf} type veth peer name ${bIf} netns ${b.name}`);
  await a.ip(`addr add ${aCidr} dev ${aIf}`);
  await b.ip(`addr add ${bCidr} dev ${bIf}`);
  await a.ip(`link set ${aIf} up`);
  await b.ip(`link set ${bIf} up`);
}

export function removeSockets(labId: string): void {
  if (!existsSync(SOCKET_DIR)) return;
  for (const f of readdirSync(SOCKET_DIR)) {
    if (f.startsWith(labId) && f.endsWith(".sock")) rmSync(`${SOCKET_DIR}/${f}`, { force: true });
  }
}

export async function createSoakLab(onForcedExit: () => void): Promise<SoakLab> {
  const lab = await Lab.create("soak", "h10");
  const dir = new ConfigDir();
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    "sleep 3", // the lab's sentinel kills the daemons first
    `rm -f ${SOCKET_DIR}/${lab.id}*.sock`,
    `rm -rf '${dir.path}'`,
  ].join("\n");
  const starter = Bun.spawnSync(["sh", "-c", `sh -c "$0" </dev/null >/dev/null 2>&1 & echo $!`, script], {
    stdio: ["ignore", "pipe", "ignore"],
    detached: true,
  });
  const sentinel = Number(starter.stdout.toString().trim()) || 0;

  let cleaned: Promise<void> | null = null;
  const cleanup = () => {
    cleaned ??= (async () => {
      await lab.cleanup();
      removeSockets(lab.id);
      dir.remove();
      if (sentinel > 0) {
        try {
          process.kill(sentinel, "SIGTERM");
        } catch {
          // gone
        }
      }
    })();
    return cleaned;
  };

  let stop = false;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let signals = 0;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      signals++;
      if (signals === 1) {
        stop = true;
        resolveStopped();
        console.error(`\n${signal}: stopping; writing what was measured, then removing namespaces and processes (again to skip the report)`);
        // If the run does not wind down by itself in time, clean up and leave.
        setTimeout(() => {
          console.error("soak: did not stop within 60 s; cleaning up");
          cleanup().finally(() => {
            onForcedExit();
            process.exit(130);
          });
        }, 60_000).unref();
      } else {
        console.error(`${signal} again: cleaning up now`);
        cleanup().finally(() => process.exit(130));
      }
    });
  }
  return { lab, dir, stopRequested: () => stop, stopped, cleanup };
}
