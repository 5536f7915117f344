// The WireGuard cross-platform userspace API, driven by the real `wg` tool and by raw requests on
// the control socket (/var/run/wireguard/IFACE.sock). The implementation under test is UAPI_IMPL
// (wontun by default, or wireguard-go to validate these tests); its peers are stock wireguard-go.
import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { canRunIntegration, waitFor, type Host, type Lab } from "../helpers/netns.ts";
import { ping, waitForPing } from "../helpers/wontun-node.ts";
import { newKeys, newPsk, type WgKeys } from "../helpers/wireguard.ts";
import {
  IMPL,
  IS_WIREGUARD_GO,
  WIREGUARD_GO,
  dump,
  errnoOf,
  hasWgTools,
  keyHex,
  normalizeShow,
  peerArgs,
  showTable,
  startNode,
  uapiConnect,
  uapiRequest,
  uapiSocket,
  wg,
  wgLabPerTest,
  wgSet,
  type Dump,
  type WgEnv,
} from "../helpers/wg-tools.ts";

const env: WgEnv = wgLabPerTest();
const ready = canRunIntegration && hasWgTools;

/** A dump as comparable text: interface line, then peer lines sorted (allowed IPs sorted too). */
function dumpLines(d: Dump): string[] {
  const peers = [...d.peers.values()].map((p) =>
    [p.publicKey, p.presharedKey, p.endpoint, p.allowedIps, p.latestHandshake, p.rx, p.tx, p.keepalive].join("\t"));
  return [[d.privateKey, d.publicKey, d.listenPort, d.fwmark].join("\t"), ...peers.sort()];
}

/** The parts of a dump that nothing but a `set` may change (no counters, no handshake times). */
function configOf(d: Dump): string[] {
  const peers = [...d.peers.values()].map((p) => [p.publicKey, p.presharedKey, p.endpoint, p.allowedIps, p.keepalive].join("\t"));
  return [[d.privateKey, d.publicKey, d.listenPort, d.fwmark].join("\t"), ...peers.sort()];
}

interface Net {
  lab: Lab;
  /** Runs the implementation under test on `ifA`. */
  a: Host;
  ifA: string;
  keysA: WgKeys;
  /** Stock wireguard-go on `ifB`, a peer of A (10.9x.0.2, underlay 192.0.2.2). */
  b: Host;
  ifB: string;
  keysB: WgKeys;
}

/**
 * A (implementation) and B (wireguard-go) on one link, configured only with `wg set`: A knows
 * B's endpoint, B learns A's. Overlay 10.`net`.0.0/24, A is .1 and B .2.
 */
async function implAndGo(tag: string, net: number): Promise<Net> {
  const lab = await env.lab(tag);
  const dir = env.dir();
  const a = await lab.host("a");
  const b = await lab.host("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  const ifA = env.iface("a");
  const ifB = env.iface("b");
  const keysA = newKeys();
  const keysB = newKeys();
  await startNode(IMPL, a, dir, ifA, {
    keys: keysA, listenPort: 51820, addresses: [`10.${net}.0.1/24`],
    peers: [{ publicKey: keysB.publicKey, allowedIps: [`10.${net}.0.2/32`], endpoint: "192.0.2.2:51820" }],
  });
  await startNode(WIREGUARD_GO, b, dir, ifB, {
    keys: keysB, listenPort: 51820, addresses: [`10.${net}.0.2/24`],
    peers: [{ publicKey: keysA.publicKey, allowedIps: [`10.${net}.0.1/32`] }],
  });
  return { lab, a, ifA, keysA, b, ifB, keysB };
}

/** A third host C (wireguard-go, 10.`net`.0.3, underlay 198.51.100.3) that knows A; A does not know C yet. */
async function addThirdHost(n: Net, net: number): Promise<{ c: Host; ifC: string; keysC: WgKeys }> {
  const c = await n.lab.host("c");
  await n.lab.link(n.a, "198.51.100.1/24", c, "198.51.100.3/24");
  const ifC = env.iface("c");
  const keysC = newKeys();
  await startNode(WIREGUARD_GO, c, env.dir(), ifC, {
    keys: keysC, listenPort: 51820, addresses: [`10.${net}.0.3/24`],
    peers: [{ publicKey: n.keysA.publicKey, allowedIps: [`10.${net}.0.1/32`] }],
  });
  return { c, ifC, keysC };
}

const cPeer = (keysC: WgKeys, net: number) => ({ publicKey: keysC.publicKey, allowedIps: [`10.${net}.0.3/32`], endpoint: "198.51.100.3:51820" });

/** Latest handshake (seconds) A has for `publicKey`, from `wg show IFACE latest-handshakes`. */
async function handshakeOf(host: Host, iface: string, publicKey: string): Promise<number> {
  const row = (await showTable(host, iface, "latest-handshakes")).get(publicKey);
  if (!row) throw new Error(`no peer ${publicKey} on ${iface}`);
  return Number(row[0]);
}

/**
 * A TCP iperf3 from `client` to `server`'s `address` for `seconds`, paced at `rate` (below what
 * two userspace ends on a small machine carry, so that a retransmission means a lost packet
 * rather than a full queue). `during` runs while it does. Returns iperf3's JSON result.
 */
async function iperf(client: Host, server: Host, address: string, seconds: number, rate: string, during?: () => Promise<void>) {
  const srv = server.spawn(["iperf3", "-s", "-1", "-B", address, "-p", "5201", "--forceflush"]);
  await waitFor(() => srv.output().includes("Server listening"), 5000, "iperf3 server");
  const run = client.run(["iperf3", "-c", address, "-p", "5201", "-t", String(seconds), "-b", rate, "-i", "0.5", "-J"], { timeoutMs: (seconds + 10) * 1000 });
  await during?.();
  const r = await run;
  if (r.code !== 0) throw new Error(`iperf3 failed (exit ${r.code}): ${r.stdout.slice(-500)} ${r.stderr}`);
  await srv.exited;
  return JSON.parse(r.stdout);
}

describe.skipIf(!ready)(`wg drives ${IMPL.name} through the userspace API`, () => {
  test("wg set sets every field; wg show, wg show dump and wg showconf print exactly them; changes and removals apply", async () => {
    const lab = await env.lab("uapi-set");
    const dir = env.dir();
    const a = await lab.host("a");
    const ifA = env.iface("a");
    await IMPL.start(a, ifA);
    // The socket (it holds private keys) is for root only.
    expect(statSync(uapiSocket(ifA)).mode & 0o077).toBe(0);
    const me = newKeys(), p1 = newKeys(), p2 = newKeys();
    const psk = newPsk();
    await wgSet(a, dir, ifA, {
      keys: me, listenPort: 51820, fwmark: "0x1234",
      peers: [
        { publicKey: p1.publicKey, endpoint: "192.0.2.2:51820", allowedIps: ["10.0.0.2/32", "fd00::2/128"], keepalive: 25, psk },
        { publicKey: p2.publicKey, allowedIps: ["10.0.0.3/32"] },
      ],
    });

    // No link and no route in this namespace: nothing is sent, so counters and handshakes stay 0.
    expect(dumpLines(await dump(a, ifA))).toEqual([
      `${me.privateKey}\t${me.publicKey}\t51820\t0x1234`,
      ...[
        `${p1.publicKey}\t${psk}\t192.0.2.2:51820\t10.0.0.2/32,fd00::2/128\t0\t0\t0\t25`,
        `${p2.publicKey}\t(none)\t(none)\t10.0.0.3/32\t0\t0\t0\toff`,
      ].sort(),
    ]);
    expect(normalizeShow(await wg(a, ["show", ifA]))).toBe(normalizeShow(`interface: ${ifA}
  public key: ${me.publicKey}
  private key: (hidden)
  listening port: 51820
  fwmark: 0x1234

peer: ${p1.publicKey}
  preshared key: (hidden)
  endpoint: 192.0.2.2:51820
  allowed ips: 10.0.0.2/32, fd00::2/128
  persistent keepalive: every 25 seconds

peer: ${p2.publicKey}
  allowed ips: 10.0.0.3/32
`));
    expect(normalizeShow(await wg(a, ["showconf", ifA]))).toBe(normalizeShow(`[Interface]
ListenPort = 51820
FwMark = 0x1234
PrivateKey = ${me.privateKey}

[Peer]
PublicKey = ${p1.publicKey}
PresharedKey = ${psk}
AllowedIPs = 10.0.0.2/32, fd00::2/128
Endpoint = 192.0.2.2:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${p2.publicKey}
AllowedIPs = 10.0.0.3/32
`));
    // The single-value views.
    expect((await wg(a, ["show", ifA, "public-key"])).trim()).toBe(me.publicKey);
    expect((await wg(a, ["show", ifA, "listen-port"])).trim()).toBe("51820");
    expect((await wg(a, ["show", ifA, "fwmark"])).trim()).toBe("0x1234");
    expect((await wg(a, ["show", ifA, "peers"])).trim().split("\n").sort()).toEqual([p1.publicKey, p2.publicKey].sort());

    // Changes to one peer leave the other alone.
    await wg(a, ["set", ifA, "peer", p1.publicKey, "endpoint", "[2001:db8::2]:51821"]);
    await wg(a, ["set", ifA, "peer", p1.publicKey, "allowed-ips", "10.0.0.9/32"]); // replaces the list
    await wg(a, ["set", ifA, "peer", p1.publicKey, "persistent-keepalive", "off", "preshared-key", "/dev/null"]);
    await wg(a, ["set", ifA, "peer", p2.publicKey, "allowed-ips", "10.0.0.3/32,10.0.3.0/24"]);
    expect(dumpLines(await dump(a, ifA))).toEqual([
      `${me.privateKey}\t${me.publicKey}\t51820\t0x1234`,
      ...[
        `${p1.publicKey}\t(none)\t[2001:db8::2]:51821\t10.0.0.9/32\t0\t0\t0\toff`,
        `${p2.publicKey}\t(none)\t(none)\t10.0.0.3/32,10.0.3.0/24\t0\t0\t0\toff`,
      ].sort(),
    ]);

    // Removing a peer, clearing the fwmark, another port and a new private key (peers stay).
    await wg(a, ["set", ifA, "peer", p2.publicKey, "remove"]);
    const me2 = newKeys();
    await wg(a, ["set", ifA, "fwmark", "0", "listen-port", "51999", "private-key", dir.write("me2.key", `${me2.privateKey}\n`)]);
    expect(dumpLines(await dump(a, ifA))).toEqual([
      `${me2.privateKey}\t${me2.publicKey}\t51999\toff`,
      `${p1.publicKey}\t(none)\t[2001:db8::2]:51821\t10.0.0.9/32\t0\t0\t0\toff`,
    ]);
    expect(await wg(a, ["showconf", ifA])).toBe(`[Interface]
ListenPort = 51999
PrivateKey = ${me2.privateKey}

[Peer]
PublicKey = ${p1.publicKey}
AllowedIPs = 10.0.0.9/32
Endpoint = [2001:db8::2]:51821
`);
    // The listening port is real: a UDP socket on it exists in A's namespace.
    expect((await a.run(["ss", "-uln"])).stdout).toMatch(/:51999\s/);
  }, 20_000);

  test("configured only with wg: ping both ways to wireguard-go; wg show reports the session; both ends' transfer counters agree", async () => {
    const n = await implAndGo("uapi-traffic", 90);
    await waitForPing(n.a, "10.90.0.2");
    expect(await ping(n.b, "10.90.0.1", 2)).toBe(true);
    // Gently (30 Mbit/s for 2 s, ~7 MB): datagrams the receiving daemon drops when it is starved of
    // CPU count as sent on one side and not received on the other.
    const result = await iperf(n.a, n.b, "10.90.0.2", 2, "30M");
    expect(result.end.sum_received.bytes).toBeGreaterThan(5 * 2 ** 20);
    await Bun.sleep(300); // the last ACKs land

    const [ta, tb] = [await showTable(n.a, n.ifA, "transfer"), await showTable(n.b, n.ifB, "transfer")];
    const [aRx, aTx] = ta.get(n.keysB.publicKey)!.map(Number);
    const [bRx, bTx] = tb.get(n.keysA.publicKey)!.map(Number);
    expect(aTx).toBeGreaterThan(5 * 2 ** 20);
    // What A sent to B is what B received from A, and the reverse (ACKs): within a few percent.
    expect(Math.abs(aTx - bRx) / aTx).toBeLessThan(0.04);
    expect(Math.abs(aRx - bTx) / bTx).toBeLessThan(0.04);

    const now = Date.now() / 1000;
    const hs = await handshakeOf(n.a, n.ifA, n.keysB.publicKey);
    expect(Math.abs(now - hs)).toBeLessThan(30);
    // B learned A's endpoint from the handshake.
    expect((await showTable(n.b, n.ifB, "endpoints")).get(n.keysA.publicKey)).toEqual(["192.0.2.1:51820"]);
    const shown = await wg(n.a, ["show", n.ifA]);
    expect(shown).toMatch(/\n {2}latest handshake: (\d+ seconds? ago|Now)\n/);
    expect(shown).toMatch(/\n {2}transfer: [\d.]+ [KMG]iB received, [\d.]+ MiB sent\n/);
  }, 30_000);

  test("setconf, addconf and syncconf with wg-format files; syncconf keeps an unchanged peer's session", async () => {
    const n = await implAndGo("uapi-conf", 92);
    const dir = env.dir();
    await waitForPing(n.a, "10.92.0.2");
    const hsB = await handshakeOf(n.a, n.ifA, n.keysB.publicKey);
    const p2 = newKeys(), p3 = newKeys(), p4 = newKeys();
    const psk = newPsk();
    const iface = (listenPort: number, fwmark?: string) =>
      `[Interface]\nPrivateKey = ${n.keysA.privateKey}\nListenPort = ${listenPort}\n${fwmark ? `FwMark = ${fwmark}\n` : ""}`;
    const peerB = `[Peer]\nPublicKey = ${n.keysB.publicKey}\nAllowedIPs = 10.92.0.2/32\nEndpoint = 192.0.2.2:51820\n`;

    // setconf replaces everything: B (the live peer, same settings) and P2.
    await wg(n.a, ["setconf", n.ifA, dir.write("set.conf",
      `${iface(51820, "0x42")}\n${peerB}\n[Peer]\nPublicKey = ${p2.publicKey}\nPresharedKey = ${psk}\nAllowedIPs = 10.92.2.0/24\nEndpoint = 192.0.2.22:1234\nPersistentKeepalive = 15\n`)]);
    let d = await dump(n.a, n.ifA);
    expect(configOf(d)).toEqual([
      `${n.keysA.privateKey}\t${n.keysA.publicKey}\t51820\t0x42`,
      ...[
        `${n.keysB.publicKey}\t(none)\t192.0.2.2:51820\t10.92.0.2/32\toff`,
        `${p2.publicKey}\t${psk}\t192.0.2.22:1234\t10.92.2.0/24\t15`,
      ].sort(),
    ]);

    // addconf adds P3 and updates P2 (a config file's AllowedIPs replace the peer's list); nothing is removed.
    await wg(n.a, ["addconf", n.ifA, dir.write("add.conf",
      `[Peer]\nPublicKey = ${p3.publicKey}\nAllowedIPs = 10.92.3.0/24\n\n[Peer]\nPublicKey = ${p2.publicKey}\nAllowedIPs = 10.92.22.0/24\n`)]);
    d = await dump(n.a, n.ifA);
    expect(configOf(d)).toEqual([
      `${n.keysA.privateKey}\t${n.keysA.publicKey}\t51820\t0x42`,
      ...[
        `${n.keysB.publicKey}\t(none)\t192.0.2.2:51820\t10.92.0.2/32\toff`,
        `${p2.publicKey}\t${psk}\t192.0.2.22:1234\t10.92.22.0/24\t15`,
        `${p3.publicKey}\t(none)\t(none)\t10.92.3.0/24\toff`,
      ].sort(),
    ]);

    // Establish a session with B after setconf (which replaced B: wireguard-go sometimes needs a
    // second handshake attempt, 5 s later, here), then syncconf:
    // P2 and P3 go, P4 comes, B is unchanged and must keep its session.
    await waitForPing(n.a, "10.92.0.2", 15_000);
    const hsBefore = await handshakeOf(n.a, n.ifA, n.keysB.publicKey);
    expect(hsBefore).toBeGreaterThanOrEqual(hsB);
    await Bun.sleep(1100); // a new handshake would now show a different second
    await wg(n.a, ["syncconf", n.ifA, dir.write("sync.conf",
      `${iface(51820)}\n${peerB}\n[Peer]\nPublicKey = ${p4.publicKey}\nAllowedIPs = 10.92.4.0/24, fd92::4/128\n`)]);
    d = await dump(n.a, n.ifA);
    expect(configOf(d)).toEqual([
      `${n.keysA.privateKey}\t${n.keysA.publicKey}\t51820\toff`,
      ...[
        `${n.keysB.publicKey}\t(none)\t192.0.2.2:51820\t10.92.0.2/32\toff`,
        `${p4.publicKey}\t(none)\t(none)\t10.92.4.0/24,fd92::4/128\toff`,
      ].sort(),
    ]);
    expect(await ping(n.a, "10.92.0.2", 2)).toBe(true);
    expect(await handshakeOf(n.a, n.ifA, n.keysB.publicKey)).toBe(hsBefore);
  }, 30_000);

  test("adding and then removing another peer with wg set during an iperf3 to B: the flow loses nothing, B's handshake is untouched", async () => {
    const n = await implAndGo("uapi-live", 93);
    const { keysC } = await addThirdHost(n, 93);
    await waitForPing(n.a, "10.93.0.2");
    const hsA = await handshakeOf(n.a, n.ifA, n.keysB.publicKey);
    const hsB = await handshakeOf(n.b, n.ifB, n.keysA.publicKey);
    await Bun.sleep(1100); // a new handshake would now show a different second

    const result = await iperf(n.a, n.b, "10.93.0.2", 4, "50M", async () => {
      await Bun.sleep(1000);
      await wg(n.a, ["set", n.ifA, ...peerArgs(env.dir(), cPeer(keysC, 93))]);
      await waitForPing(n.a, "10.93.0.3", 2000); // C gets a session of its own meanwhile
      await Bun.sleep(300);
      await wg(n.a, ["set", n.ifA, "peer", keysC.publicKey, "remove"]);
      expect(await ping(n.a, "10.93.0.3", 1)).toBe(false);
    });
    // TCP hides loss, so look at what loss would cost: a stall (no half-second interval far below
    // the paced rate) and retransmissions. Those are not zero even when nothing changes: two
    // userspace ends retransmit ~0.5% on an idle 2-core machine and several % on a loaded one
    // (a starved daemon's socket buffer overflows), so only a gross loss is caught here; a
    // session reset is caught by the handshake times below.
    expect(result.end.sum_received.bytes).toBeGreaterThan(10 * 2 ** 20);
    const intervals: number[] = result.intervals.map((i: { sum: { bits_per_second: number } }) => i.sum.bits_per_second);
    expect(intervals.length).toBeGreaterThanOrEqual(7);
    expect(Math.min(...intervals)).toBeGreaterThan(10e6);
    expect(result.end.sum_sent.retransmits).toBeLessThan(0.1 * (result.end.sum_sent.bytes / 1400));
    expect(await handshakeOf(n.a, n.ifA, n.keysB.publicKey)).toBe(hsA);
    expect(await handshakeOf(n.b, n.ifB, n.keysA.publicKey)).toBe(hsB);
    expect((await wg(n.a, ["show", n.ifA, "peers"])).trim()).toBe(n.keysB.publicKey);
  }, 30_000);
});

describe.skipIf(!ready)(`${IMPL.name}'s control socket under bad input`, () => {
  /** A with peers B (live, wireguard-go) and C (configured only); returns A's dump as it stands. */
  async function configured(tag: string, net: number) {
    const n = await implAndGo(tag, net);
    const extra = newKeys();
    await wg(n.a, ["set", n.ifA, "fwmark", "0x77", ...peerArgs(env.dir(), {
      publicKey: extra.publicKey, allowedIps: [`10.${net}.7.0/24`, "fd77::/64"], endpoint: "192.0.2.77:7777", psk: newPsk(), keepalive: 30,
    })]);
    await waitForPing(n.a, `10.${net}.0.2`);
    return { n, before: await dump(n.a, n.ifA) };
  }

  /** Puts A's configuration back to `before` with wg set (for wireguard-go's partial sets). */
  async function restore(n: Net, before: Dump) {
    const args = ["set", n.ifA, "listen-port", String(before.listenPort), "fwmark", before.fwmark];
    for (const p of before.peers.values()) {
      const psk = p.presharedKey === "(none)" ? "/dev/null" : env.dir().write("restore.psk", `${p.presharedKey}\n`);
      args.push("peer", p.publicKey, "allowed-ips", p.allowedIps, "preshared-key", psk, "persistent-keepalive", p.keepalive);
      if (p.endpoint !== "(none)") args.push("endpoint", p.endpoint);
    }
    await wg(n.a, args);
    for (const key of (await dump(n.a, n.ifA)).peers.keys()) {
      if (!before.peers.has(key)) await wg(n.a, ["set", n.ifA, "peer", key, "remove"]);
    }
  }

  /** The daemon answers, and nothing but counters and handshake times moved. */
  async function expectIntact(n: Net, before: Dump, net: number) {
    expect(configOf(await dump(n.a, n.ifA))).toEqual(configOf(before));
    expect(await ping(n.a, `10.${net}.0.2`, 1)).toBe(true);
  }

  test("malformed requests get an errno answer and change nothing", async () => {
    const { n, before } = await configured("uapi-bad", 94);
    const newPeer = keyHex(newKeys().publicKey);
    const requests: { what: string; request: string; goDiffers?: "no-answer" | "partial" }[] = [
      // wireguard-go closes the connection without an answer on an unknown operation.
      { what: "a garbage line", request: "garbage\n\n", goDiffers: "no-answer" },
      { what: "a bad private key", request: "set=1\nprivate_key=zz\n\n" },
      { what: "an unknown device key", request: "set=1\nfoo=bar\n\n" },
      { what: "an unknown key in get", request: "get=1\nfoo=1\n\n" },
      // wireguard-go has cleared B's allowed IPs by the time it reads the bad one.
      {
        what: "a bad allowed_ip after replace_allowed_ips on an existing peer",
        request: `set=1\npublic_key=${keyHex(n.keysB.publicKey)}\nreplace_allowed_ips=true\nallowed_ip=300.1.1.1/32\n\n`,
        goDiffers: "partial",
      },
      // wireguard-go applies the lines before the bad one: the port changes and the peer stays.
      {
        what: "good lines, then a new peer, then a bad line",
        request: `set=1\nlisten_port=51999\nfwmark=0\npublic_key=${newPeer}\nallowed_ip=10.94.9.0/24\nbogus=1\n\n`,
        goDiffers: "partial",
      },
      { what: "a bad endpoint on a new peer", request: `set=1\npublic_key=${newPeer}\nendpoint=not-an-endpoint\n\n`, goDiffers: "partial" },
    ];
    for (const { what, request, goDiffers } of requests) {
      const reply = await uapiRequest(n.ifA, request);
      expect({ what, timedOut: reply.timedOut }).toEqual({ what, timedOut: false });
      if (!(IS_WIREGUARD_GO && goDiffers === "no-answer")) {
        const errno = errnoOf(reply.answer);
        expect({ what, answer: reply.answer, bad: errno !== null && errno !== 0 }).toEqual({ what, answer: reply.answer, bad: true });
      }
      if (!(IS_WIREGUARD_GO && goDiffers === "partial")) {
        expect({ what, config: configOf(await dump(n.a, n.ifA)) }).toEqual({ what, config: configOf(before) });
      } else {
        // Undo what wireguard-go applied, so that the next request starts from the same state.
        await restore(n, before);
      }
    }
    await expectIntact(n, before, 94);
    // A well-formed request on the socket still works and says errno=0.
    const ok = await uapiRequest(n.ifA, "get=1\n\n");
    expect(ok.answer).toContain(`public_key=${keyHex(n.keysB.publicKey)}\n`);
    expect(errnoOf(ok.answer)).toBe(0);
  }, 20_000);

  test("clients that connect and never finish do not block wg show or wg set, and apply nothing", async () => {
    const { n, before } = await configured("uapi-stall", 95);
    const silent = await uapiConnect(n.ifA);
    const halfway = await uapiConnect(n.ifA);
    // wireguard-go holds its configuration lock for the whole of a set request, so a stalled
    // set blocks every get: only the silent client is tried against it.
    if (!IS_WIREGUARD_GO) halfway.write("set=1\nlisten_port=4444"); // no end of line, no end of request
    try {
      const start = Date.now();
      expect(await wg(n.a, ["show", n.ifA, "listen-port"])).toBe(`${before.listenPort}\n`);
      await wg(n.a, ["set", n.ifA, "peer", n.keysB.publicKey, "persistent-keepalive", "21"]);
      expect((await dump(n.a, n.ifA)).peers.get(n.keysB.publicKey)!.keepalive).toBe("21");
      await wg(n.a, ["set", n.ifA, "peer", n.keysB.publicKey, "persistent-keepalive", "off"]);
      expect(Date.now() - start).toBeLessThan(3000);
      expect(await ping(n.a, "10.95.0.2", 1)).toBe(true);
    } finally {
      silent.destroy();
      halfway.destroy();
    }
    await Bun.sleep(200);
    await expectIntact(n, before, 95);
  }, 20_000);

  test("a 100 MB request: the daemon stays up, answers others, and its state is unchanged", async () => {
    const { n, before } = await configured("uapi-huge", 96);
    // One endless value line: a daemon may read it all, or cut it off and close; either way it lives.
    const huge = Buffer.alloc(100 * 2 ** 20 + 20, "7".charCodeAt(0));
    huge.write("set=1\nlisten_port=", 0);
    huge.write("\n\n", huge.length - 2);
    const reply = await uapiRequest(n.ifA, huge, 30_000);
    expect(reply.timedOut).toBe(false);
    if (!reply.closed) expect(errnoOf(reply.answer)).not.toBe(0);
    await expectIntact(n, before, 96);
    expect((await wg(n.a, ["show", n.ifA, "peers"])).trim().split("\n").length).toBe(2);
  }, 60_000);

  test("removing a peer in the middle of a transfer to it: the daemon stays up, the other peer is untouched, the peer can come back", async () => {
    const { n, before } = await configured("uapi-rmbusy", 97);
    // B is the busy peer; the extra peer from `configured` is the one that must stay as it was.
    const sink = n.b.spawn(["sh", "-c", "nc -l 10.97.0.2 9200 > /dev/null"]);
    await Bun.sleep(200);
    const flow = n.a.run(["sh", "-c", "head -c 1000M /dev/zero | timeout 3 nc -N 10.97.0.2 9200"], { timeoutMs: 10_000 });
    await Bun.sleep(700);
    const busy = (await dump(n.a, n.ifA)).peers.get(n.keysB.publicKey)!;
    expect(busy.tx).toBeGreaterThan(before.peers.get(n.keysB.publicKey)!.tx + 2 ** 20); // it really was mid-transfer
    await wg(n.a, ["set", n.ifA, "peer", n.keysB.publicKey, "remove"]);
    await flow; // stalls, then timeout ends it
    sink.kill();

    const after = await dump(n.a, n.ifA);
    expect([...after.peers.keys()]).not.toContain(n.keysB.publicKey);
    const others = (d: Dump) => configOf(d).filter((line) => !line.startsWith(n.keysB.publicKey));
    expect(others(after)).toEqual(others(before));
    // Put B back as it was: the tunnel works again.
    await wg(n.a, ["set", n.ifA, ...peerArgs(env.dir(), { publicKey: n.keysB.publicKey, allowedIps: ["10.97.0.2/32"], endpoint: "192.0.2.2:51820" })]);
    await waitForPing(n.a, "10.97.0.2", 8000);
    expect(configOf(await dump(n.a, n.ifA))).toEqual(configOf(before));
  }, 30_000);
});
