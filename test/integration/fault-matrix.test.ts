// The network fault matrix: an underlay that reorders, duplicates or delays (with jitter) the
// tunnel's datagrams, crossed with both modes (WireGuard, plaintext) and both roles (the client
// initiates: only it has an Endpoint; the server initiates: only it has one). Each cell moves
// 1 MiB each way intact (sha256), then restarts the client, then the server, and moves 1 MiB each
// way again after each restart.
//
// This kernel has no netem, so the faults come from a userspace relay (test/fixtures/udp-relay.ts)
// in a namespace between the two hosts: host a (clients) 198.51.100.1 — relay — 203.0.113.1 host
// b (servers). The hosts have no route to each other; every datagram crosses the relay, where each
// cell has its own pair of ports and its own seeded fault.
//
// The twelve cells run at once in one lab (each with its own interfaces, inner /24, ports and
// relay pipe) to stay inside the CI budget; a cell whose restarted side is the responder (the one
// without an Endpoint) waits out the protocol's own recovery (WireGuard: a new handshake 15 s after
// data went unanswered). The whole matrix takes about 25 s here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Lab, canRunIntegration, waitFor, type Host, type SpawnedProcess } from "../helpers/netns.ts";
import { COMPILED, ConfigDir, REPO, startWontun } from "../helpers/wontun-node.ts";
import { newKeys, transfer, wgQuickConfig } from "../helpers/wireguard.ts";
import type { DirectionStats, Fault, PipeSpec } from "../fixtures/udp-relay.ts";

const RELAY = join(REPO, "test/fixtures/udp-relay.ts");
const BINARY = process.env.WONTUN_BINARY ?? COMPILED;
const runnable = canRunIntegration && existsSync(BINARY) && Bun.which("nc") !== null;

const FAULTS: Record<string, Fault> = {
  reorder: { reorderPct: 20, holdMs: [1, 6] },
  duplicate: { dupPct: 15, dupDelayMs: [0, 20] },
  "delay+jitter": { delayMs: 15, jitterMs: 10 },
};
const MODES = ["wireguard", "plaintext"] as const;
const ROLES = ["client initiates", "server initiates"] as const;

const A_IP = "198.51.100.1"; // host a: the clients
const RA_IP = "198.51.100.2"; // the relay, facing a
const RB_IP = "203.0.113.2"; // the relay, facing b
const B_IP = "203.0.113.1"; // host b: the servers

interface Cell {
  index: number;
  fault: string;
  mode: (typeof MODES)[number];
  role: (typeof ROLES)[number];
  name: string;
}

const CELLS: Cell[] = [];
for (const fault of Object.keys(FAULTS)) {
  for (const mode of MODES) {
    for (const role of ROLES) {
      CELLS.push({ index: CELLS.length, fault, mode, role, name: `${fault} × ${mode} × ${role}` });
    }
  }
}

interface CellResult {
  error?: string;
  /** Phase name -> [sha256 sent, sha256 received] for each direction. */
  transfers: Array<{ phase: string; direction: string; sent: string; received: string }>;
  restarts: number;
  seconds: number;
}

const results = new Map<number, CellResult>();
let relayStats: Record<string, { aToB: DirectionStats; bToA: DirectionStats }> = {};
let lab: Lab | null = null;
let dir: ConfigDir | null = null;
let matrixSeconds = 0;

function plainConfig(self: string, address: string, port: number, peer: string, peerInner: string, endpoint?: string): string {
  const lines = ["[Interface]", `Name=${self}`, `Address=${address}`, `ListenPort=${port}`, "", "[Peer]", `Name=${peer}`];
  if (endpoint) lines.push(`Endpoint=${endpoint}`);
  lines.push(`AllowedIPs=${peerInner}/32`, "");
  return lines.join("\n");
}

/** Configs, relay pipe and addresses of one cell. */
function cellSetup(cell: Cell, labId: string) {
  const i = cell.index;
  const inner = (h: number) => `10.110.${i}.${h}`;
  const serverPort = 40000 + i;
  const clientPort = 41000 + i;
  const relayForClient = `${RA_IP}:${42000 + i}`; // the server, as the client sees it
  const relayForServer = `${RB_IP}:${43000 + i}`; // the client, as the server sees it
  const clientEndpoint = cell.role === "client initiates" ? relayForClient : undefined;
  const serverEndpoint = cell.role === "server initiates" ? relayForServer : undefined;
  const ifname = (side: "s" | "c") => `${labId}${cell.mode === "wireguard" ? "w" : "p"}${i.toString(36)}${side}`;
  let serverConf: string;
  let clientConf: string;
  if (cell.mode === "wireguard") {
    const ks = newKeys();
    const kc = newKeys();
    serverConf = wgQuickConfig({
      keys: ks, addresses: [`${inner(1)}/24`], listenPort: serverPort,
      peers: [{ publicKey: kc.publicKey, allowedIps: [`${inner(2)}/32`], endpoint: serverEndpoint }],
    });
    clientConf = wgQuickConfig({
      keys: kc, addresses: [`${inner(2)}/24`], listenPort: clientPort,
      peers: [{ publicKey: ks.publicKey, allowedIps: [`${inner(1)}/32`], endpoint: clientEndpoint }],
    });
  } else {
    serverConf = plainConfig("server", `${inner(1)}/24`, serverPort, "client", inner(2), serverEndpoint);
    clientConf = plainConfig("client", `${inner(2)}/24`, clientPort, "server", inner(1), clientEndpoint);
  }
  const pipe: PipeSpec = {
    name: String(i),
    a: relayForClient,
    b: relayForServer,
    toA: `${A_IP}:${clientPort}`,
    toB: `${B_IP}:${serverPort}`,
    fault: FAULTS[cell.fault],
  };
  return { serverConf, clientConf, pipe, serverIf: ifname("s"), clientIf: ifname("c"), serverInner: inner(1), clientInner: inner(2) };
}

async function veth(a: Host, aIf: string, aCidr: string, b: Host, bIf: string, bCidr: string): Promise<void> {
  // Created inside a's namespace, the peer end moved straight into b's: never in the root namespace.
  await a.ip(`link add name ${aIf} type veth peer name ${bIf} netns ${b.name}`);
  await a.ip(`addr add ${aCidr} dev ${aIf}`);
  await b.ip(`addr add ${bCidr} dev ${bIf}`);
  await a.ip(`link set ${aIf} up`);
  await b.ip(`link set ${bIf} up`);
}

async function runCell(cell: Cell, a: Host, b: Host, setup: ReturnType<typeof cellSetup>): Promise<CellResult> {
  const t0 = performance.now();
  const result: CellResult = { transfers: [], restarts: 0, seconds: 0 };
  const d = dir!;
  const serverFile = d.write(`${setup.serverIf}.conf`, setup.serverConf);
  const clientFile = d.write(`${setup.clientIf}.conf`, setup.clientConf);
  const start = (host: Host, file: string) => startWontun(host, file, { binary: BINARY });
  const procs: { server: SpawnedProcess | null; client: SpawnedProcess | null } = { server: null, client: null };
  // The initiator is the side with an Endpoint; it sends first and after every restart.
  const initiator = cell.role === "client initiates" ? { host: a, peer: setup.serverInner } : { host: b, peer: setup.clientInner };
  const established = (timeoutMs: number) =>
    waitFor(async () => {
      for (const [side, p] of Object.entries(procs)) {
        if (p && (p.proc.exitCode !== null || p.proc.signalCode !== null)) throw new Error(`the ${side} exited:\n${p.output()}`);
      }
      return (await initiator.host.run(["ping", "-n", "-c", "1", "-W", "1", initiator.peer], { timeoutMs: 3000 })).code === 0;
    }, timeoutMs, `a ping from the initiator through ${cell.name}`);
  const both = async (phase: string, portBase: number) => {
    const up = await transfer(a, b, setup.serverInner, 1, portBase);
    result.transfers.push({ phase, direction: "client → server", ...up });
    const down = await transfer(b, a, setup.clientInner, 1, portBase + 1);
    result.transfers.push({ phase, direction: "server → client", ...down });
  };
  const port = 20000 + cell.index * 10;
  try {
    procs.server = await start(b, serverFile);
    procs.client = await start(a, clientFile);
    await established(20_000);
    await both("first", port);
    for (const [k, side] of (["client", "server"] as const).entries()) {
      const p = procs[side]!;
      p.kill("SIGTERM");
      const code = await p.exited;
      if (code !== 0) throw new Error(`the ${side} exited ${code} on SIGTERM:\n${p.output()}`);
      procs[side] = await start(side === "client" ? a : b, side === "client" ? clientFile : serverFile);
      result.restarts++;
      // A restarted responder is only found again once the initiator gives up on its old session.
      await established(45_000);
      await both(`after ${side} restart`, port + 2 + k * 2);
    }
  } catch (e) {
    result.error = (e as Error).message;
  } finally {
    for (const p of Object.values(procs)) p?.kill("SIGTERM");
    await Promise.all(Object.values(procs).map((p) => p?.exited));
    result.seconds = (performance.now() - t0) / 1000;
  }
  return result;
}

describe.skipIf(!runnable)("network fault matrix (userspace impairment relay)", () => {
  beforeAll(async () => {
    const t0 = performance.now();
    lab = await Lab.create("fault-matrix", "h10");
    dir = new ConfigDir();
    const a = await lab.host("a");
    const r = await lab.host("r");
    const b = await lab.host("b");
    await veth(a, "h10a-r", `${A_IP}/24`, r, "h10r-a", `${RA_IP}/24`);
    await veth(r, "h10r-b", `${RB_IP}/24`, b, "h10b-r", `${B_IP}/24`);
    const setups = CELLS.map((c) => cellSetup(c, lab!.id));
    const relay = r.spawn([process.execPath, RELAY, JSON.stringify({ seed: 1011, pipes: setups.map((s) => s.pipe) })]);
    await waitFor(() => {
      if (relay.proc.exitCode !== null) throw new Error(`the relay exited:\n${relay.output()}`);
      return relay.output().includes("relay ready");
    }, 10_000, "the relay");
    // All cells at once, their starts a little apart so that 24 daemons do not start on 2 cores
    // in the same instant.
    await Promise.all(CELLS.map(async (cell) => {
      await Bun.sleep(cell.index * 250);
      results.set(cell.index, await runCell(cell, a, b, setups[cell.index]));
    }));
    relay.kill("SIGUSR1");
    await waitFor(() => relay.output().includes('{"stats"'), 5000, "the relay's counters");
    const line = relay.output().split("\n").find((l) => l.startsWith('{"stats"'))!;
    relayStats = JSON.parse(line).stats;
    matrixSeconds = (performance.now() - t0) / 1000;
    console.log(`fault matrix: ${CELLS.length} cells in ${matrixSeconds.toFixed(1)} s`);
    for (const cell of CELLS) {
      const s = relayStats[String(cell.index)];
      const r = results.get(cell.index);
      console.log(`  ${cell.name}: ${r?.error ? "FAILED" : "ok"} in ${r?.seconds.toFixed(1)} s; relay a→b ${s.aToB.received} datagrams ` +
        `(${s.aToB.reordered} reordered, ${s.aToB.duplicated} duplicated), b→a ${s.bToA.received} (${s.bToA.reordered}, ${s.bToA.duplicated})`);
    }
  }, 150_000);

  afterAll(async () => {
    await lab?.cleanup();
    dir?.remove();
  });

  for (const cell of CELLS) {
    test(cell.name, () => {
      const r = results.get(cell.index);
      expect(r).toBeDefined();
      expect(r!.error).toBeUndefined();
      expect(r!.restarts).toBe(2);
      expect(r!.transfers).toHaveLength(6);
      for (const t of r!.transfers) {
        expect(t.sent).toMatch(/^[0-9a-f]{64}$/);
        expect({ phase: t.phase, direction: t.direction, received: t.received }).toEqual({ phase: t.phase, direction: t.direction, received: t.sent });
      }
      // The relay did impair this cell's traffic, both ways.
      const s = relayStats[String(cell.index)];
      for (const dirStats of [s.aToB, s.bToA]) {
        expect(dirStats.received).toBeGreaterThan(500);
        if (cell.fault === "duplicate") expect(dirStats.duplicated).toBeGreaterThan(20);
        else expect(dirStats.reordered).toBeGreaterThan(20);
      }
    });
  }

  test("the whole matrix fits the CI budget", () => {
    expect(matrixSeconds).toBeGreaterThan(0);
    expect(matrixSeconds).toBeLessThan(120);
  });
});
