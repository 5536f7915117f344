// The journal of what `wontun up` did to the host, kept in /run/wontun so that a later start can
// undo what a killed predecessor left behind (rules and table routes stay when the TUN goes away,
// and so do nftables tables and DNS records). Each step is written down BEFORE it is done, so a
// crash between the two leaves at most a step whose undo finds nothing.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { RoutingRule } from "../sys/netlink.ts";
import type { DnsApplied } from "./dns.ts";
import type { FirewallApplied } from "./firewall.ts";

export type HostStep =
  | { kind: "rule"; rule: RoutingRule }
  | { kind: "route"; cidr: string; table: number }
  | { kind: "firewall"; firewall: FirewallApplied }
  | { kind: "dns"; dns: DnsApplied };

export interface HostState {
  pid: number;
  interface: string;
  steps: HostStep[];
}

export const RUN_DIR = "/run/wontun";

function netnsInode(pid: number | "self"): number | null {
  try {
    return statSync(`/proc/${pid}/ns/net`).ino;
  } catch {
    return null;
  }
}

/**
 * /run/wontun/IFACE.state; in a network namespace other than init's (e.g. `ip netns exec`), the
 * namespace is part of the name, since /run is shared between namespaces and so are names.
 */
export function stateFilePath(ifname: string, dir = RUN_DIR): string {
  const own = netnsInode("self");
  const init = netnsInode(1);
  return own === null || own === init ? `${dir}/${ifname}.state` : `${dir}/${ifname}.netns-${own}.state`;
}

export class StateFile {
  readonly state: HostState;

  constructor(readonly path: string, ifname: string) {
    this.state = { pid: process.pid, interface: ifname, steps: [] };
  }

  /** The journal a previous process left at `path`, or null. */
  static read(path: string): HostState | null {
    try {
      const state = JSON.parse(readFileSync(path, "utf8")) as HostState;
      return Array.isArray(state.steps) ? state : null;
    } catch {
      return null;
    }
  }

  /** Writes the journal down with one more step, before that step is taken. */
  record(step: HostStep): void {
    this.state.steps.push(step);
    this.write();
  }

  /** Forgets a step that has been undone. */
  forget(step: HostStep): void {
    const i = this.state.steps.indexOf(step);
    if (i >= 0) this.state.steps.splice(i, 1);
    this.write();
  }

  write(): void {
    mkdirSync(this.path.slice(0, this.path.lastIndexOf("/")), { recursive: true, mode: 0o755 });
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.state)}\n`, { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }
}
