// etcd for the mesh tests: Debian's etcd-server started inside lab namespaces, data dirs under a
// temp dir the caller removes; the lab stops the processes on cleanup.
import { join } from "node:path";
import { waitFor, type Host, type SpawnedProcess } from "./netns.ts";

export const hasEtcd = Bun.which("etcd") !== null && Bun.which("etcdctl") !== null;

export interface EtcdMember {
  host: Host;
  ip: string;
  name: string;
}

/** TLS for the client port: server certificate and key, and the client CA is not checked. */
export interface EtcdTls {
  certFile: string;
  keyFile: string;
}

function etcdArgs(member: EtcdMember, cluster: EtcdMember[], dataRoot: string, tls?: EtcdTls): string[] {
  const scheme = tls ? "https" : "http";
  return [
    "etcd", "--name", member.name, "--data-dir", join(dataRoot, member.name),
    "--listen-client-urls", `${scheme}://${member.ip}:2379`, "--advertise-client-urls", `${scheme}://${member.ip}:2379`,
    "--listen-peer-urls", `http://${member.ip}:2380`, "--initial-advertise-peer-urls", `http://${member.ip}:2380`,
    "--initial-cluster", cluster.map((m) => `${m.name}=http://${m.ip}:2380`).join(","),
    "--initial-cluster-token", "h13", "--log-level", "warn",
    // Short elections: a killed leader is replaced within a second or two.
    "--heartbeat-interval", "100", "--election-timeout", "1000",
    ...(tls ? ["--cert-file", tls.certFile, "--key-file", tls.keyFile] : []),
  ];
}

/** Starts one member of `cluster` (all members listed; its data dir may exist from before). */
export function spawnEtcd(member: EtcdMember, cluster: EtcdMember[], dataRoot: string, tls?: EtcdTls): SpawnedProcess {
  return member.host.spawn(etcdArgs(member, cluster, dataRoot, tls));
}

/** Starts every member and waits until each answers. */
export async function startEtcdCluster(cluster: EtcdMember[], dataRoot: string): Promise<SpawnedProcess[]> {
  const procs = cluster.map((m) => spawnEtcd(m, cluster, dataRoot));
  for (const [i, m] of cluster.entries()) {
    await waitFor(async () => (await etcdctl(m.host, m.ip, ["endpoint", "health"])).code === 0, 20_000, `etcd ${m.name}:\n${procs[i].output()}`);
  }
  return procs;
}

/** One single-member etcd listening on ip:2379 in `host`; resolves when it answers. */
export async function startEtcd(host: Host, ip: string, dataRoot: string, name = "e1"): Promise<SpawnedProcess> {
  const [proc] = await startEtcdCluster([{ host, ip, name }], dataRoot);
  return proc;
}

export function etcdctl(host: Host, ip: string | string[], args: string[], stdin?: string) {
  const endpoints = (Array.isArray(ip) ? ip : [ip]).map((a) => `http://${a}:2379`).join(",");
  return host.run(["env", "ETCDCTL_API=3", "etcdctl", "--endpoints", endpoints, "--dial-timeout", "2s", ...args], { timeoutMs: 8000, stdin });
}

/** The index in `cluster` of the current leader. */
export async function etcdLeader(cluster: EtcdMember[]): Promise<number> {
  const r = await etcdctl(cluster[0].host, cluster.map((m) => m.ip), ["endpoint", "status", "-w", "json"]);
  const rows = JSON.parse(r.stdout) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
  const leader = rows.find((row) => String(row.Status.header.member_id) === String(row.Status.leader));
  if (!leader) throw new Error(`no leader in ${r.stdout}`);
  return cluster.findIndex((m) => leader.Endpoint.includes(m.ip));
}
