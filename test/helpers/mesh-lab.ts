// What the mesh integration tests share: a switch namespace with a bridge that every host
// plugs into (one underlay segment, like hosts on one LAN), the per-test scratch (lab, config
// directory, etcd data directory) removed after each test, and reading a node through
// `wontun show --json`.
import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, type Host } from "./netns.ts";
import { ConfigDir, wontunCommand } from "./wontun-node.ts";

export interface MeshScratch {
  lab: Lab;
  dir: ConfigDir;
  /** A temporary directory for etcd's data and the nodes' caches. */
  data: string;
}

/** Registers cleanup after each test; `open` makes a fresh scratch for the test that calls it. */
export function meshScratchPerTest(prefix: string): { open(tag: string): Promise<MeshScratch> } {
  let current: MeshScratch | null = null;
  afterEach(async () => {
    if (!current) return;
    await current.lab.cleanup();
    current.dir.remove();
    rmSync(current.data, { recursive: true, force: true });
    current = null;
  });
  return {
    async open(tag) {
      current = { lab: await Lab.create(tag, prefix), dir: new ConfigDir(), data: mkdtempSync(join(tmpdir(), `${prefix}-${tag}-`)) };
      return current;
    },
  };
}

/** A switch: a namespace holding the bridge `${prefix}br0`. */
export async function meshSwitch(lab: Lab, prefix: string): Promise<Host> {
  const sw = await lab.host("sw");
  await sw.ip(`link add ${prefix}br0 type bridge`);
  await sw.ip(`link set ${prefix}br0 up`);
  return sw;
}

/** Plugs `host` into the switch's bridge through veth `${prefix}v${index}a`, with these addresses (a /24 for IPv4; IPv6 given with its prefix). */
export async function plugIn(sw: Host, host: Host, prefix: string, index: number, addresses: string[]): Promise<void> {
  const a = `${prefix}v${index}a`;
  const b = `${prefix}v${index}b`;
  await host.ip(`link add ${a} type veth peer name ${b} netns ${sw.name}`);
  for (const address of addresses) {
    await host.ip(address.includes(":") ? `addr add ${address} dev ${a} nodad` : `addr add ${address}/24 dev ${a}`);
  }
  await host.ip(`link set ${a} up`);
  await sw.ip(`link set ${b} master ${prefix}br0`);
  await sw.ip(`link set ${b} up`);
}

/** The interface's entry of `wontun show IFACE --json` (throws with stderr when it fails). */
export async function showNode(host: Host, iface: string): Promise<any> {
  const r = await host.run([...wontunCommand(), "show", iface, "--json"], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`wontun show ${iface}: ${r.stderr}`);
  return JSON.parse(r.stdout).interfaces[0];
}
