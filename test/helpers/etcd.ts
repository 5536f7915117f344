// etcd for the mesh tests: Debian's etcd-server started inside a lab namespace, its data dir under
// a temp dir the caller removes; the lab stops the process on cleanup.
import { join } from "node:path";
import { waitFor, type Host, type SpawnedProcess } from "./netns.ts";

export const hasEtcd = Bun.which("etcd") !== null && Bun.which("etcdctl") !== null;

/** One single-member etcd listening on ip:2379 in `host`; resolves when it answers. */
export async function startEtcd(host: Host, ip: string, dataRoot: string, name = "e1"): Promise<SpawnedProcess> {
  const proc = host.spawn([
    "etcd", "--name", name, "--data-dir", join(dataRoot, name),
    "--listen-client-urls", `http://${ip}:2379`, "--advertise-client-urls", `http://${ip}:2379`,
    "--listen-peer-urls", `http://${ip}:2380`, "--initial-advertise-peer-urls", `http://${ip}:2380`,
    "--initial-cluster", `${name}=http://${ip}:2380`, "--log-level", "warn",
  ], { env: { ETCD_UNSUPPORTED_ARCH: "" } });
  await waitFor(async () => (await etcdctl(host, ip, ["endpoint", "health"])).code === 0, 15_000, `etcd in ${host.short}:\n${proc.output()}`);
  return proc;
}

export function etcdctl(host: Host, ip: string, args: string[], stdin?: string) {
  return host.run(["env", "ETCDCTL_API=3", "etcdctl", "--endpoints", `http://${ip}:2379`, "--dial-timeout", "2s", ...args], { timeoutMs: 8000, stdin });
}
