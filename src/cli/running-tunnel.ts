// Finding a running tunnel from the command line: by interface name, or by the config file it was
// started from (tun0.conf -> tun0), through its control socket.
import { existsSync, readdirSync } from "node:fs";
import { interfaceNameFromPath } from "../config/load.ts";
import { validateInterfaceName } from "../sys/tun.ts";
import { serverPid } from "../sys/unix-socket.ts";
import { SOCKET_DIR, socketPath } from "../daemon/daemon.ts";
import { UsageError } from "./errors.ts";

/** The control socket directory; WONTUN_SOCKET_DIR moves it (tests, several daemons in mount namespaces). */
export function socketDir(): string {
  return process.env.WONTUN_SOCKET_DIR || SOCKET_DIR;
}

/** `IFACE` or `path/to/IFACE.conf` → IFACE; a usage error for anything else. */
export function interfaceArgument(arg: string): string {
  const name = /\.(conf|ini|toml)$/i.test(arg) || arg.includes("/") ? interfaceNameFromPath(arg) : arg;
  const bad = validateInterfaceName(name);
  if (bad) throw new UsageError(bad);
  return name;
}

export function controlSocketOf(interfaceName: string): string {
  return socketPath(interfaceName, socketDir());
}

/** Every interface with a control socket in the socket directory, sorted. */
export function runningInterfaces(): string[] {
  const dir = socketDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sock"))
    .map((f) => f.slice(0, -".sock".length))
    .sort();
}

/** The pid serving IFACE's control socket; a one-line Error when none does. */
export function daemonPid(interfaceName: string): number {
  const path = controlSocketOf(interfaceName);
  if (!existsSync(path)) throw new Error(`no wontun running for ${interfaceName}: ${path} does not exist`);
  const pid = serverPid(path);
  if (pid === null) throw new Error(`no wontun running for ${interfaceName}: nothing accepts on ${path} (a stale socket)`);
  return pid;
}
