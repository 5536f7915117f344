// wontun in WireGuard mode under attack, between real namespaces:
// - replay: a transport message captured on the wire and re-sent (from the peer's own source
//   port and from another one) must not be delivered a second time, must not move the peer's
//   endpoint, and must not hurt the session;
// - handshake flood: initiations with a valid mac1 put the responder under load, and then it
//   answers with cookie replies (which decrypt, and which it honours as mac2) instead of doing
//   Diffie-Hellman work; initiations with a wrong mac1 get nothing at all; the established
//   session and the daemon carry on;
// - handshake under a flood: a legitimate peer that starts its handshake while the responder
//   is under load gets a cookie reply, retries with mac2 made from it, and gets through.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { canRunIntegration, waitFor, type Host, type SpawnedProcess, type Lab } from "../helpers/netns.ts";
import { REPO, labPerTest, ping, startWontun, waitForPing } from "../helpers/wontun-node.ts";
import { hasWireguardGo, newKeys, startWireguardGo, wgGoInterface, wgQuickConfig, type WgKeys } from "../helpers/wireguard.ts";
import { hasTcpdump, startCapture, type UdpDatagram } from "../helpers/pcap.ts";

const ATTACKER = [process.execPath, join(REPO, "test/fixtures/wg-flood.ts")];

const env = labPerTest();

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const isTransport = (d: UdpDatagram) =>
  d.payload.length >= 32 && d.payload[0] === 4 && d.payload[1] === 0 && d.payload[2] === 0 && d.payload[3] === 0;

/** A UDP listener at address:port in `host` that prints every datagram as a JSON line. */
async function udpListener(host: Host, address: string, port: number): Promise<{ proc: SpawnedProcess; received(): string[] }> {
  const script = `
    const sock = require("node:dgram").createSocket("udp4");
    sock.on("message", (msg, from) => console.log(JSON.stringify({ from: from.address + ":" + from.port, text: msg.toString() })));
    sock.bind(${port}, "${address}", () => console.log("ready"));
  `;
  const proc = host.spawn([process.execPath, "-e", script]);
  await waitFor(() => proc.output().includes("ready"), 10_000, `UDP listener on ${address}:${port}`);
  return {
    proc,
    received: () =>
      proc.output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => (JSON.parse(l) as { text: string }).text),
  };
}

/** Runs the attacker fixture in `host` and returns the JSON line it prints. */
async function attack<T>(host: Host, args: string[], timeoutMs = 60_000): Promise<T> {
  const r = await host.run([...ATTACKER, ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`wg-flood.ts ${args[0]} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(line) as T;
}

/** What `wg-flood.ts flood` prints (see the fixture). */
interface FloodResult {
  sent: number;
  cookieReplies: number;
  validCookies: number;
  otherReplies: number;
  mac2Sent: number;
  mac2CookieReplies: number;
  controlSent: number;
  controlCookieReplies: number;
}

/** "peer X: endpoint A -> B" lines: the daemon moved a peer's endpoint. */
const endpointChanges = (log: string) => log.split("\n").filter((l) => /endpoint \S+ -> \S+/.test(l));

// ---- replay --------------------------------------------------------------------------------

type SenderKind = "wireguard-go" | "wontun";

const RECEIVER_PORT = 51820;
const SENDER_PORT = 51821;
const LISTEN_PORT = 7777;

async function replayTest(kind: SenderKind): Promise<void> {
  const lab = await env.lab(`wg-replay-${kind}`);
  const dir = env.dir();
  const receiver = await lab.host("rx");
  const sender = await lab.host("tx");
  const { aIf: receiverIf, bIf: senderIf } = await lab.link(receiver, "192.0.2.1/24", sender, "192.0.2.2/24");
  const receiverKeys = newKeys();
  const senderKeys = newKeys();

  // wontun receives; it learns the sender's endpoint from the handshake.
  const wontun = await startWontun(receiver, dir.write("wt0.conf", wgQuickConfig({
    keys: receiverKeys,
    addresses: ["10.20.0.1/24"],
    listenPort: RECEIVER_PORT,
    peers: [{ publicKey: senderKeys.publicKey, allowedIps: ["10.20.0.2/32"] }],
  })));
  await startSender(lab, kind, sender, senderKeys, receiverKeys);
  await waitForPing(sender, "10.20.0.1");

  const listener = await udpListener(receiver, "10.20.0.1", LISTEN_PORT);

  // One recognizable datagram through the tunnel, captured on the sender's underlay. Its length
  // makes its transport message recognizable too: IPv4 20 + UDP 8 + 333 = 361 bytes, padded to
  // 368, plus the 16-byte header and the 16-byte tag = 400 bytes.
  const probe = `replay-probe-${crypto.randomUUID()}-`.padEnd(333, "x");
  const TRANSPORT_LENGTH = 400;
  const isProbe = (d: UdpDatagram) =>
    isTransport(d) && d.payload.length === TRANSPORT_LENGTH &&
    d.src === "192.0.2.2" && d.srcPort === SENDER_PORT && d.dst === "192.0.2.1" && d.dstPort === RECEIVER_PORT;
  const senderCapture = await startCapture(sender, senderIf, join(dir.path, "sender.pcap"));
  await attack(sender, ["replay", "10.20.0.1", String(LISTEN_PORT), hex(new TextEncoder().encode(probe))]);
  await waitFor(() => listener.received().includes(probe), 10_000, "the probe at the listener");
  await waitFor(() => senderCapture.datagrams().some(isProbe), 10_000, "the probe's transport message in the capture");
  const captured = (await senderCapture.stop()).filter(isProbe);
  expect(captured).toHaveLength(1);
  const message = captured[0].payload;

  // The attacker re-sends those exact bytes: from the sender's own port (a raw socket: the
  // sender holds that port) and from another port. A capture at the receiver shows they arrive.
  const receiverCapture = await startCapture(receiver, receiverIf, join(dir.path, "receiver.pcap"));
  const samePort = await attack<{ fromPort: number; method: string }>(sender, [
    "replay", "192.0.2.1", String(RECEIVER_PORT), hex(message), "--from-port", String(SENDER_PORT),
  ]);
  expect(samePort.fromPort).toBe(SENDER_PORT);
  const otherPort = await attack<{ fromPort: number; method: string }>(sender, ["replay", "192.0.2.1", String(RECEIVER_PORT), hex(message)]);
  expect(otherPort.fromPort).not.toBe(SENDER_PORT);
  const isReplay = (port: number) => (d: UdpDatagram) =>
    d.srcPort === port && d.dstPort === RECEIVER_PORT && hex(d.payload) === hex(message);
  await waitFor(() => {
    const seen = receiverCapture.datagrams();
    return seen.some(isReplay(SENDER_PORT)) && seen.some(isReplay(otherPort.fromPort));
  }, 10_000, "both replays at the receiver's interface");

  // The tunnel still works both ways, and a datagram sent after all that arrives: by then the
  // replays, which reached the receiver before any of it, have been read and dealt with.
  expect(await ping(sender, "10.20.0.1", 3)).toBe(true);
  expect(await ping(receiver, "10.20.0.2", 3)).toBe(true);
  const after = `after-replay-${crypto.randomUUID()}`;
  await attack(sender, ["replay", "10.20.0.1", String(LISTEN_PORT), hex(new TextEncoder().encode(after))]);
  await waitFor(() => listener.received().includes(after), 10_000, "the datagram sent after the replays");
  await receiverCapture.stop();

  expect(listener.received().filter((t) => t === probe)).toHaveLength(1);
  expect(listener.received()).toEqual([probe, after]);
  // wontun learnt the sender's endpoint once, from the handshake, and never moved it.
  const log = wontun.output();
  expect(log).toContain(`endpoint 192.0.2.2:${SENDER_PORT}`);
  expect(endpointChanges(log)).toEqual([]);
  expect(log).not.toMatch(/TypeError|RangeError|uncaught/i);
  expect(wontun.proc.exitCode).toBeNull();
}

/** The peer at 192.0.2.2 (port SENDER_PORT, tunnel address 10.20.0.2) of a wontun at 192.0.2.1. */
async function startSender(lab: Lab, kind: SenderKind, host: Host, keys: WgKeys, receiverKeys: WgKeys): Promise<SpawnedProcess> {
  const dir = env.dir();
  const setup = {
    keys,
    addresses: ["10.20.0.2/24"],
    listenPort: SENDER_PORT,
    peers: [{ publicKey: receiverKeys.publicKey, allowedIps: ["10.20.0.1/32"], endpoint: `192.0.2.1:${RECEIVER_PORT}` }],
  };
  if (kind === "wireguard-go") return await startWireguardGo(host, dir, wgGoInterface(lab, "s"), setup);
  return await startWontun(host, dir.write("wt1.conf", wgQuickConfig(setup)));
}

// ---- a legitimate handshake during a flood ---------------------------------------------------

const isZero = (b: Uint8Array) => b.every((x) => x === 0);
const u32 = (b: Uint8Array, at: number) => Buffer.from(b).readUInt32LE(at);

async function handshakeUnderFloodTest(kind: SenderKind): Promise<void> {
  const lab = await env.lab(`wg-cookie-${kind}`);
  const dir = env.dir();
  const server = await lab.host("srv");
  const client = await lab.host("cli");
  const attacker = await lab.host("atk");
  const { aIf: serverIf } = await lab.link(server, "192.0.2.1/24", client, "192.0.2.2/24");
  await lab.link(server, "198.51.100.1/24", attacker, "198.51.100.2/24");
  const serverKeys = newKeys();
  const clientKeys = newKeys();
  const s = await startWontun(server, dir.write("wt0.conf", wgQuickConfig({
    keys: serverKeys,
    addresses: ["10.20.0.1/24"],
    listenPort: RECEIVER_PORT,
    peers: [{ publicKey: clientKeys.publicKey, allowedIps: ["10.20.0.2/32"] }],
  })));
  const capture = await startCapture(server, serverIf, join(dir.path, "server.pcap"));

  // The flood runs (well above the load threshold) until the test stops it; the client, which
  // has sent nothing yet, starts its first handshake only once the server is answering cookies.
  const flood = attacker.spawn([...ATTACKER, "flood", "198.51.100.1", String(RECEIVER_PORT), serverKeys.publicKey, "0", "--rate", "1000"]);
  await waitFor(() => flood.output().includes(`"event":"cookie"`), 15_000, `the flood's first cookie reply:\n${flood.output()}`);
  const c = await startSender(lab, kind, client, clientKeys, serverKeys);
  await waitForPing(client, "10.20.0.1", 40_000);
  expect(flood.proc.exitCode).toBeNull(); // the handshake completed during the flood
  flood.kill("SIGTERM");
  await flood.exited;
  const floodResult = JSON.parse(flood.output().trim().split("\n").pop()!) as FloodResult;
  expect(floodResult.cookieReplies).toBeGreaterThan(0);
  expect(floodResult.validCookies).toBe(floodResult.cookieReplies);
  expect(await ping(server, "10.20.0.2", 3)).toBe(true);
  const isResponse = (d: UdpDatagram) => d.srcPort === RECEIVER_PORT && d.payload.length === 92 && d.payload[0] === 2;
  await waitFor(() => capture.datagrams().some(isResponse), 10_000, "the handshake response in the capture");
  const seen = await capture.stop();

  // On the wire between server and client: the client's first initiation (no mac2) got a
  // cookie reply; the initiation the server answered carries a mac2, made from that cookie.
  const fromClient = seen.filter((d) => d.src === "192.0.2.2" && d.srcPort === SENDER_PORT && d.dstPort === RECEIVER_PORT);
  const toClient = seen.filter((d) => d.src === "192.0.2.1" && d.srcPort === RECEIVER_PORT && d.dstPort === SENDER_PORT);
  const initiations = fromClient.filter((d) => d.payload.length === 148 && d.payload[0] === 1);
  const cookieReplies = toClient.filter((d) => d.payload.length === 64 && d.payload[0] === 3);
  const responses = toClient.filter((d) => d.payload.length === 92 && d.payload[0] === 2);
  expect(initiations.length).toBeGreaterThanOrEqual(2);
  expect(isZero(initiations[0].payload.subarray(132, 148))).toBe(true);
  expect(cookieReplies.length).toBeGreaterThan(0);
  expect(u32(cookieReplies[0].payload, 4)).toBe(u32(initiations[0].payload, 4));
  expect(responses.length).toBeGreaterThan(0);
  const answered = initiations.find((i) => u32(i.payload, 4) === u32(responses[0].payload, 8));
  expect(answered).toBeDefined();
  expect(isZero(answered!.payload.subarray(132, 148))).toBe(false);
  expect(answered!.timestampUs).toBeGreaterThan(cookieReplies[0].timestampUs);

  if (kind === "wontun") expect(c.output()).toContain("cookie reply received");
  expect(s.proc.exitCode).toBeNull();
  expect(c.proc.exitCode).toBeNull();
  expect(s.output()).not.toMatch(/TypeError|RangeError|uncaught/i);
}

describe.skipIf(!canRunIntegration || !hasTcpdump || !hasWireguardGo)("WireGuard mode under attack (wireguard-go peer)", () => {
  test("a captured data datagram re-sent later is dropped (replay)", async () => {
    await replayTest("wireguard-go");
  }, 90_000);

  test("under an initiation flood, wireguard-go's new handshake gets through with a cookie", async () => {
    await handshakeUnderFloodTest("wireguard-go");
  }, 120_000);
});

describe.skipIf(!canRunIntegration || !hasTcpdump)("WireGuard mode under attack (wontun peer)", () => {
  test("a captured data datagram re-sent later is dropped (replay, wontun sender)", async () => {
    await replayTest("wontun");
  }, 90_000);

  // ---- handshake flood ---------------------------------------------------------------------

  test("a flood of initiations triggers cookie replies and the daemon stays responsive", async () => {
    const lab = await env.lab("wg-flood");
    const dir = env.dir();
    const server = await lab.host("srv");
    const client = await lab.host("cli");
    const attacker = await lab.host("atk");
    await lab.link(server, "192.0.2.1/24", client, "192.0.2.2/24");
    await lab.link(server, "198.51.100.1/24", attacker, "198.51.100.2/24");
    const serverKeys = newKeys();
    const clientKeys = newKeys();
    const s = await startWontun(server, dir.write("wt0.conf", wgQuickConfig({
      keys: serverKeys,
      addresses: ["10.20.0.1/24"],
      listenPort: RECEIVER_PORT,
      peers: [{ publicKey: clientKeys.publicKey, allowedIps: ["10.20.0.2/32"] }],
    })));
    const c = await startWontun(client, dir.write("wt1.conf", wgQuickConfig({
      keys: clientKeys,
      addresses: ["10.20.0.2/24"],
      peers: [{ publicKey: serverKeys.publicKey, allowedIps: ["10.20.0.1/32"], endpoint: `192.0.2.1:${RECEIVER_PORT}` }],
    })));
    await waitForPing(client, "10.20.0.1");

    // A ping runs through the established session while the flood goes on.
    const pinger = client.spawn(["ping", "-c", "25", "-i", "0.2", "-W", "5", "10.20.0.1"]);
    await waitFor(() => pinger.output().includes("bytes from"), 10_000, "the concurrent ping's first reply");

    const flood = await attack<FloodResult>(attacker, ["flood", "198.51.100.1", String(RECEIVER_PORT), serverKeys.publicKey, "2000"]);
    expect(flood.sent).toBeGreaterThanOrEqual(2000);
    // Under load: cookie replies, each one answering one of the flood's messages and opening
    // with the server's cookie key, and nothing else (no handshake responses to random noise).
    expect(flood.cookieReplies).toBeGreaterThan(0);
    expect(flood.validCookies).toBe(flood.cookieReplies);
    expect(flood.otherReplies).toBe(0);
    // The cookie is honoured: initiations with mac2 made from it get no cookie reply, while the
    // ones sent alongside them without mac2 still do.
    expect(flood.mac2Sent).toBeGreaterThan(0);
    expect(flood.mac2CookieReplies).toBe(0);
    expect(flood.controlCookieReplies).toBeGreaterThan(0);

    // The same flood with a wrong mac1: not a single reply of any kind.
    const bad = await attack<FloodResult>(attacker, ["flood", "198.51.100.1", String(RECEIVER_PORT), serverKeys.publicKey, "2000", "--bad-mac1"]);
    expect(bad.sent).toBeGreaterThanOrEqual(2000);
    expect(bad.cookieReplies).toBe(0);
    expect(bad.otherReplies).toBe(0);

    // The session carried on during the floods and after them, and both daemons are alive.
    const pinged = await pinger.exited;
    const stats = /(\d+) packets transmitted, (\d+) received/.exec(pinger.output());
    expect(stats).not.toBeNull();
    expect(Number(stats![2])).toBe(Number(stats![1]));
    expect(pinged).toBe(0);
    expect(s.proc.exitCode).toBeNull();
    expect(c.proc.exitCode).toBeNull();
    expect(await ping(client, "10.20.0.1", 3)).toBe(true);
    expect(await ping(server, "10.20.0.2", 3)).toBe(true);
    expect(endpointChanges(s.output())).toEqual([]);
    expect(s.output()).not.toMatch(/TypeError|RangeError|uncaught/i);
  }, 120_000);

  test("under an initiation flood, a wontun peer's new handshake gets through with a cookie", async () => {
    await handshakeUnderFloodTest("wontun");
  }, 120_000);
});
