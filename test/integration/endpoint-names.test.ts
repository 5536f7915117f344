// Endpoint hostnames never hold up the tunnel: a peer with an IP endpoint is up at once while the
// name server for another peer's endpoint never answers; that peer comes up by itself once its
// name resolves; SIGTERM during a hanging lookup exits at once. Every namespace and interface name
// starts with "h7". The client's name server is an address whose packets vanish (a neighbour entry
// to a MAC nobody has), set in /etc/netns/NS/resolv.conf, which `ip netns exec` bind-mounts over
// /etc/resolv.conf for the processes the lab starts; /etc/netns/NS/hosts is how the name later
// resolves (written in place: a bind mount follows the file, not its name).
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { canRunIntegration, Lab, waitFor, type Host } from "../helpers/netns.ts";
import { COMPILED, ConfigDir, ping, startWontun, waitForPing } from "../helpers/wontun-node.ts";

/** The executable under test: dist/wontun, or WONTUN_BINARY. */
const BINARY = process.env.WONTUN_BINARY || COMPILED;
import { newKeys } from "../helpers/wireguard.ts";

const NAME = "h7peer.test";
let lab: Lab | null = null;
let dir: ConfigDir | null = null;
const netnsDirs: string[] = [];

afterEach(async () => {
  await lab?.cleanup();
  dir?.remove();
  for (const d of netnsDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  lab = null;
  dir = null;
});

interface World {
  client: Host;
  ipServer: Host;
  namedServer: Host;
  hostsFile: string;
  dir: ConfigDir;
  keys: { client: ReturnType<typeof newKeys>; ip: ReturnType<typeof newKeys>; named: ReturnType<typeof newKeys> };
}

/** veth pair a <-> b with h7 names, addresses set, both ends up. */
async function link(a: Host, aIf: string, aCidr: string, b: Host, bIf: string, bCidr: string): Promise<void> {
  await a.ip(`link add ${aIf} type veth peer name ${bIf} netns ${b.name}`);
  await a.ip(`addr add ${aCidr} dev ${aIf}`);
  await b.ip(`addr add ${bCidr} dev ${bIf}`);
  await a.ip(`link set ${aIf} up`);
  await b.ip(`link set ${bIf} up`);
}

async function world(): Promise<World> {
  lab = await Lab.create("endpoint-names", "h7");
  dir = new ConfigDir();
  const client = await lab.host("h7c");
  const ipServer = await lab.host("h7s1");
  const namedServer = await lab.host("h7s2");
  await link(client, "h7c-s1", "198.51.100.2/24", ipServer, "h7s1-c", "198.51.100.1/24");
  await link(client, "h7c-s2", "203.0.113.2/24", namedServer, "h7s2-c", "203.0.113.1/24");
  // A name server whose queries vanish: both ends of a veth pair in the client, and the server's
  // address pinned to a MAC nobody has, so no error ever comes back (not even ARP failure).
  await client.ip("link add h7dns0 type veth peer name h7dns1");
  await client.ip("addr add 10.53.0.1/24 dev h7dns0");
  await client.ip("link set h7dns0 up");
  await client.ip("link set h7dns1 up");
  await client.ip("neigh replace 10.53.0.53 lladdr 02:00:00:00:53:53 dev h7dns0 nud permanent");
  const etc = `/etc/netns/${client.name}`;
  mkdirSync(etc, { recursive: true });
  netnsDirs.push(etc);
  writeFileSync(`${etc}/resolv.conf`, "nameserver 10.53.0.53\n");
  // Must exist before wontun starts: `ip netns exec` only bind-mounts files that exist then.
  writeFileSync(`${etc}/hosts`, "127.0.0.1 localhost\n");
  return {
    client, ipServer, namedServer, hostsFile: `${etc}/hosts`, dir,
    keys: { client: newKeys(), ip: newKeys(), named: newKeys() },
  };
}

function serverConf(w: World, keys: ReturnType<typeof newKeys>, address: string, file: string): string {
  const path = w.dir.write(file, [
    "[Interface]", `PrivateKey = ${keys.privateKey}`, `Address = ${address}/24`, "ListenPort = 51820",
    "", "[Peer]", `PublicKey = ${w.keys.client.publicKey}`, "AllowedIPs = 10.71.0.2/32", "",
  ].join("\n"));
  chmodSync(path, 0o600);
  return path;
}

function clientConf(w: World, withIpPeer: boolean): string {
  const lines = ["[Interface]", `PrivateKey = ${w.keys.client.privateKey}`, "Address = 10.71.0.2/24", ""];
  if (withIpPeer) {
    lines.push("[Peer]", `PublicKey = ${w.keys.ip.publicKey}`, "Endpoint = 198.51.100.1:51820", "AllowedIPs = 10.71.0.1/32", "");
  }
  lines.push("[Peer]", `PublicKey = ${w.keys.named.publicKey}`, `Endpoint = ${NAME}:51820`, "AllowedIPs = 10.71.0.3/32",
    "PersistentKeepalive = 1", "");
  const path = w.dir.write("h7wg0.conf", lines.join("\n"));
  chmodSync(path, 0o600);
  return path;
}

describe.skipIf(!canRunIntegration || !existsSync(BINARY))("endpoint hostnames never block", () => {
  test("an IP-endpoint peer is up in < 1 s while the other peer's name server never answers; that peer comes up once its name resolves", async () => {
    const w = await world();
    await startWontun(w.ipServer, serverConf(w, w.keys.ip, "10.71.0.1", "h7s1.conf"), { binary: BINARY });
    await startWontun(w.namedServer, serverConf(w, w.keys.named, "10.71.0.3", "h7s2.conf"), { binary: BINARY });

    const started = performance.now();
    const client = await startWontun(w.client, clientConf(w, true), { binary: BINARY });
    const running = performance.now() - started;
    // The first ping goes out at once; its reply needs the handshake with the IP peer.
    expect(await ping(w.client, "10.71.0.1")).toBe(true);
    const up = performance.now() - started;
    expect(running).toBeLessThan(1000);
    expect(up).toBeLessThan(1000);
    // The named peer has no endpoint yet (its lookup hangs).
    expect(await ping(w.client, "10.71.0.3")).toBe(false);

    // The name starts to resolve; the peer comes up by itself (retries after the hung lookup).
    writeFileSync(w.hostsFile, `127.0.0.1 localhost\n203.0.113.1 ${NAME}\n`);
    await waitForPing(w.client, "10.71.0.3", 45_000);
    expect(client.output()).toContain(`endpoint ${NAME} resolved to 203.0.113.1:51820`);
    // The IP peer stayed up all along.
    expect(await ping(w.client, "10.71.0.1")).toBe(true);
  }, 90_000);

  test("SIGTERM while a lookup hangs: exits 0 in < 1 s", async () => {
    const w = await world();
    const client = await startWontun(w.client, clientConf(w, false), { binary: BINARY });
    // The lookup is under way and hangs (the resolver gives up on its own only after ~10 s).
    await Bun.sleep(1000);
    const t0 = performance.now();
    client.kill("SIGTERM");
    const code = await client.exited;
    const took = performance.now() - t0;
    expect(code).toBe(0);
    expect(took).toBeLessThan(1000);
    await waitFor(async () => !(await w.client.ip("link show")).includes("h7wg0"), 2000, "h7wg0 to go");
  }, 30_000);
});
