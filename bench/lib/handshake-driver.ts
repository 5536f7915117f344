// The client side of the handshake scale benchmark. Runs inside the lab's client namespace
// (started by bench/scale.ts) and talks real UDP to a `dist/wontun up` responder configured
// with every peer key in the job file:
//
//   connect: every peer once, paced: initiation -> response (checked) -> an ICMP echo request
//            in a transport message (this confirms the keys to the responder, which delivers
//            it to its TUN) -> the kernel's echo reply back through wontun, opened and checked.
//   rate:    initiations prepared in advance (untimed), then sent as fast as the responder's
//            DoS defences allow; responses counted over a timed window and checked afterwards.
//
// The responder's defences shape the driver: above 100 handshake messages/s it answers with
// cookie replies and then wants mac2 (bound to source address and port), and it rate-limits
// each source address to 20 initiations/s (burst 5). So the driver sends from many source
// addresses (one socket each), keeps a cookie per socket, and paces each address below 20/s.
//
// Output: progress on stderr; "MARK <name>" lines and one "RESULT <json>" line on stdout.
//   bun bench/lib/handshake-driver.ts JOB.json
import { readFileSync } from "node:fs";
import { decodeKey } from "../../src/crypto/keys.ts";
import {
  ResponderKeys,
  completeHandshake,
  cookieReceiver,
  icmpEchoRequest,
  isEchoReply,
  makeInitiation,
  openCookieReply,
  openTransport,
  responseReceiver,
  sealTransport,
  staticKeyPair,
  transportReceiver,
  type Initiation,
  type Session,
} from "./wg-client.ts";

export interface DriverJob {
  responderPublicKey: string;
  endpoint: { host: string; port: number };
  /** The responder's tunnel address (pinged from each peer's address). */
  tunnelAddress: string;
  peers: Array<{ privateKey: string; address: string }>;
  /** Source addresses, one socket each; peer i always uses source i % length. */
  sources: string[];
  /** Initiations per second per source address (the responder allows 20 under load). */
  perSourceRate: number;
  perSourceBurst: number;
  /** Most initiations in flight at once (connect phase). */
  window: number;
  /**
   * Most initiations in flight at once in the rate phase: large, so that the responder, not the
   * window, limits the rate (a saturated responder then shows as initiations it never answered).
   */
  rateWindow: number;
  connectTimeoutSeconds: number;
  /** Quiet time after the connect phase, for the responder's memory to settle ("MARK settled"). */
  settleSeconds: number;
  /** 0 skips the rate phase. */
  rateSeconds: number;
  /** Timed windows, each with freshly prepared initiations. */
  rateRuns: number;
  warmupSeconds: number;
  /**
   * Initiations are prepared in advance for this rate (per second) at most: making one costs
   * the client about as much as answering it costs the responder, so making them during the
   * timed window would take CPU from the responder on a small machine.
   */
  prepareRate: number;
}

const COOKIE_LIFETIME_MS = 110_000; // the responder's is 120 s
/** Connect phase: an initiation unanswered this long is sent again (a new one). */
const RESPONSE_TIMEOUT_MS = 500;
/**
 * Rate phase: how long an answer still counts. A WireGuard initiator keeps its handshake state
 * and accepts the response for REKEY_TIMEOUT (5 s) before it sends a new initiation, so an answer
 * that a saturated responder sends late, from a long queue, is still a handshake done.
 */
const RATE_RESPONSE_TIMEOUT_MS = 5000;
/**
 * Least time between two initiations of one peer. The responder drops a peer's initiation that
 * comes less than 20 ms after the last one it took (a flood), judged by its own clock at the
 * time it reads the datagram; datagrams read in one batch share that time, so keep well clear.
 */
const PEER_GAP_MS = 100;
const PING_TIMEOUT_MS = 1000;

const job: DriverJob = JSON.parse(readFileSync(process.argv[2], "utf8"));
const responder = new ResponderKeys(key(job.responderPublicKey));
const identities = job.peers.map((p) => staticKeyPair(key(p.privateKey)));
const log = (s: string) => process.stderr.write(`driver: ${s}\n`);

function key(b64: string): Uint8Array {
  const k = decodeKey(b64);
  if (typeof k === "string") throw new Error(k);
  return k;
}

// ---- sources -------------------------------------------------------------------------------

interface Source {
  index: number;
  socket: Bun.udp.Socket<"uint8array">;
  cookie: Uint8Array | null;
  cookieAt: number;
  tokens: number;
  refilledAt: number;
  peers: number[];
  next: number;
}

type Handler = (source: Source, data: Uint8Array) => void;
let handler: Handler = () => {};
const counters = {
  sendFailures: 0,
  cookieReplies: 0,
  badCookieReplies: 0,
  /** Datagrams that matched nothing in flight, by "phase:type:length" (e.g. late responses). */
  unknown: {} as Record<string, number>,
};
let phase = "connect";
function unknown(data: Uint8Array): void {
  const k = `${phase}:${data[0]}:${data.length}`;
  counters.unknown[k] = (counters.unknown[k] ?? 0) + 1;
}

const sources: Source[] = [];
for (let i = 0; i < job.sources.length; i++) {
  const source: Source = {
    index: i,
    socket: null as unknown as Bun.udp.Socket<"uint8array">,
    cookie: null,
    cookieAt: 0,
    tokens: job.perSourceBurst,
    refilledAt: performance.now(),
    peers: [],
    next: 0,
  };
  source.socket = await Bun.udpSocket({
    hostname: job.sources[i],
    port: 0,
    binaryType: "uint8array",
    socket: { data: (_s, data) => handler(source, data) },
  });
  sources.push(source);
}
job.peers.forEach((_, i) => sources[i % sources.length].peers.push(i));

function refill(s: Source, now: number): void {
  s.tokens = Math.min(job.perSourceBurst, s.tokens + ((now - s.refilledAt) / 1000) * job.perSourceRate);
  s.refilledAt = now;
}

function send(s: Source, bytes: Uint8Array): void {
  if (!s.socket.send(bytes, job.endpoint.port, job.endpoint.host)) counters.sendFailures++;
}

function sendInitiation(s: Source, init: Initiation, now: number): void {
  const fresh = s.cookie !== null && now - s.cookieAt < COOKIE_LIFETIME_MS;
  init.setMac2(fresh ? s.cookie : null);
  send(s, init.message);
}

/** A cookie reply for `init` from source `s`: keep the cookie and send the initiation again. */
function onCookie(s: Source, data: Uint8Array, init: Initiation, now: number): boolean {
  counters.cookieReplies++;
  const cookie = openCookieReply(data, init, responder);
  if (!cookie) {
    counters.badCookieReplies++;
    return false;
  }
  s.cookie = cookie;
  s.cookieAt = now;
  s.tokens -= 1;
  sendInitiation(s, init, now);
  return true;
}

// Each peer's initiations carry strictly increasing timestamps, 20 ms apart (TAI64N is
// whitened to ~16.8 ms, and the responder drops one not newer than the last it took).
const clockBase = Date.now();
const stamps = new Int32Array(job.peers.length);
const nextStamp = (peer: number) => clockBase + ++stamps[peer] * 20;

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

// ---- connect: every peer, handshake + one ping through the tunnel --------------------------

interface PeerState {
  phase: "idle" | "handshake" | "ping" | "done";
  init: Initiation | null;
  session: Session | null;
  at: number;
  pingsSent: number;
  attempts: number;
  handshakeMs: number;
  doneMs: number;
}

async function connectAll(): Promise<Record<string, unknown>> {
  const peers: PeerState[] = job.peers.map(() => ({
    phase: "idle", init: null, session: null, at: 0, pingsSent: 0, attempts: 0, handshakeMs: 0, doneMs: 0,
  }));
  const byInit = new Map<number, number>(); // our sender index -> peer
  const bySession = new Map<number, number>(); // our session index -> peer
  let inFlight = 0;
  let done = 0;
  let badResponses = 0;
  let badTransport = 0;
  const t0 = performance.now();

  const sendPing = (s: Source, p: number, now: number) => {
    const st = peers[p];
    st.pingsSent++;
    st.at = now;
    const id = p & 0xffff;
    send(s, sealTransport(st.session!, icmpEchoRequest(job.peers[p].address, job.tunnelAddress, id, st.pingsSent)));
  };

  handler = (s, data) => {
    const now = performance.now();
    const type = data[0];
    if (type === 2 && data.length === 92) {
      const p = byInit.get(responseReceiver(data));
      const st = p === undefined ? undefined : peers[p];
      if (p === undefined || !st || st.phase !== "handshake" || st.init!.senderIndex !== responseReceiver(data)) {
        unknown(data);
        return;
      }
      byInit.delete(st.init!.senderIndex);
      inFlight--;
      const session = completeHandshake(st.init!, data);
      if (!session) {
        badResponses++;
        st.phase = "idle";
        return;
      }
      st.session = session;
      st.handshakeMs = now - t0;
      st.phase = "ping";
      bySession.set(session.localIndex, p);
      sendPing(s, p, now);
    } else if (type === 3 && data.length === 64) {
      const p = byInit.get(cookieReceiver(data));
      if (p === undefined) {
        unknown(data);
        return;
      }
      onCookie(s, data, peers[p].init!, now);
    } else if (type === 4) {
      const p = bySession.get(transportReceiver(data));
      const st = p === undefined ? undefined : peers[p];
      if (p === undefined || !st || st.phase !== "ping") return; // late duplicates
      const packet = openTransport(st.session!, data);
      if (!packet || !isEchoReply(packet, job.peers[p].address, p & 0xffff)) {
        badTransport++;
        return;
      }
      st.phase = "done";
      st.doneMs = now - t0;
      done++;
      // Answer the echo reply (data) with a keepalive, as a WireGuard peer does within 10 s:
      // otherwise the responder, having sent data and heard nothing for 15 s, would start
      // handshakes of its own towards all the peers, in the middle of the rate test.
      send(s, sealTransport(st.session!, new Uint8Array(0)));
    } else {
      unknown(data);
    }
  };

  const deadline = t0 + job.connectTimeoutSeconds * 1000;
  while (done < peers.length && performance.now() < deadline) {
    const now = performance.now();
    for (const s of sources) {
      refill(s, now);
      for (let k = 0; k < s.peers.length && s.tokens >= 1 && inFlight < job.window; k++) {
        const p = s.peers[s.next];
        s.next = (s.next + 1) % s.peers.length;
        const st = peers[p];
        if (st.phase === "handshake" && now - st.at > RESPONSE_TIMEOUT_MS) {
          byInit.delete(st.init!.senderIndex);
          inFlight--;
          st.phase = "idle"; // lost: start over with a new initiation
        }
        if (st.phase === "ping" && now - st.at > PING_TIMEOUT_MS) {
          if (st.pingsSent < 3) sendPing(s, p, now);
          else st.phase = "idle";
        }
        if (st.phase !== "idle") continue;
        st.attempts++;
        st.init = makeInitiation(p, identities[p], responder, nextStamp(p));
        st.phase = "handshake";
        st.at = now;
        byInit.set(st.init.senderIndex, p);
        inFlight++;
        s.tokens -= 1;
        sendInitiation(s, st.init, now);
      }
    }
    await tick();
  }
  const elapsed = performance.now() - t0;
  const hs = peers.filter((p) => p.phase === "done").map((p) => p.handshakeMs).sort((a, b) => a - b);
  return {
    peers: peers.length,
    completed: done,
    elapsedSeconds: elapsed / 1000,
    lastHandshakeSeconds: hs.length ? hs[hs.length - 1] / 1000 : null,
    initiationsSent: peers.reduce((n, p) => n + p.attempts, 0),
    retries: peers.reduce((n, p) => n + Math.max(0, p.attempts - 1), 0),
    pingsSent: peers.reduce((n, p) => n + p.pingsSent, 0),
    badResponses,
    badTransport,
  };
}

// ---- rate: handshakes per second ------------------------------------------------------------

async function handshakeRate(run: number): Promise<Record<string, unknown>> {
  const seconds = job.rateSeconds;
  // What pacing allows: per source address, and per peer (PEER_GAP_MS apart).
  const offered = Math.min(sources.length * job.perSourceRate, Math.floor(job.peers.length * (1000 / PEER_GAP_MS)));
  // Per source: what its pacing allows, or its share of prepareRate if that is lower.
  const caps = sources.map((s) => Math.min(job.perSourceRate, s.peers.length * (1000 / PEER_GAP_MS)));
  const capSum = caps.reduce((a, b) => a + b, 0);
  const counts = caps.map((cap) => {
    const rate = Math.min(cap, (job.prepareRate * cap) / capSum);
    return Math.ceil(rate * (job.warmupSeconds + seconds) * 1.1) + job.perSourceBurst;
  });
  const total = counts.reduce((a, b) => a + b, 0);
  log(`rate: preparing ${total} initiations (offered at most ${offered}/s from ${sources.length} source addresses)`);
  const prepT0 = performance.now();
  // One queue per source, cycling through its peers; a peer's initiations are in the order of
  // their timestamps, and a source sends its queue in order.
  const queues: Initiation[][] = sources.map((s, i) => {
    const q: Initiation[] = [];
    for (let k = 0; k < counts[i]; k++) {
      const p = s.peers[k % s.peers.length];
      q.push(makeInitiation(p, identities[p], responder, nextStamp(p)));
    }
    return q;
  });
  const prepSeconds = (performance.now() - prepT0) / 1000;
  const heads = new Int32Array(sources.length);
  const lastSent = new Float64Array(job.peers.length).fill(Number.NEGATIVE_INFINITY);
  let exhausted = 0;

  const pending = new Map<number, { init: Initiation; at: number }>();
  const answered: Array<{ init: Initiation; response: Uint8Array; at: number }> = [];
  let sent = 0;
  let timeouts = 0;
  // Inside the timed window: what was offered, what timed out, and how often the in-flight
  // window (not the pacing) held the client back.
  let sentInWindow = 0;
  let timeoutsInWindow = 0;
  let ticksInWindow = 0;
  let ticksWindowFull = 0;

  handler = (s, data) => {
    const now = performance.now();
    const type = data[0];
    if (type === 2 && data.length === 92) {
      const entry = pending.get(responseReceiver(data));
      if (!entry) {
        unknown(data);
        return;
      }
      pending.delete(entry.init.senderIndex);
      answered.push({ init: entry.init, response: data.slice(), at: now });
    } else if (type === 3 && data.length === 64) {
      const entry = pending.get(cookieReceiver(data));
      if (!entry) {
        unknown(data);
        return;
      }
      entry.at = now;
      onCookie(s, data, entry.init, now);
    } else {
      unknown(data);
    }
  };

  const cookiesBefore = counters.cookieReplies;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const windowStart = t0 + job.warmupSeconds * 1000;
  const windowEnd = windowStart + seconds * 1000;
  let marked = false;
  while (performance.now() < windowEnd) {
    const now = performance.now();
    if (!marked && now >= windowStart) {
      marked = true;
      console.log(`MARK rate-window-start ${run}`);
    }
    const timing = marked && now < windowEnd;
    if (timing) ticksInWindow++;
    for (const [index, entry] of pending) {
      if (now - entry.at > RATE_RESPONSE_TIMEOUT_MS) {
        pending.delete(index);
        timeouts++;
        if (timing) timeoutsInWindow++;
        if (process.env.DRIVER_DEBUG) log(`timeout: peer ${entry.init.peer} sent at ${(entry.at - t0).toFixed(0)} ms (mac2 ${entry.init.message[140] | entry.init.message[141] ? "yes" : "no"})`);
      }
    }
    for (const s of sources) {
      refill(s, now);
      const q = queues[s.index];
      while (s.tokens >= 1 && pending.size < job.rateWindow) {
        if (heads[s.index] >= q.length) {
          if (heads[s.index]++ === q.length) exhausted++;
          break;
        }
        const init = q[heads[s.index]];
        if (now - lastSent[init.peer] < PEER_GAP_MS) break;
        heads[s.index]++;
        lastSent[init.peer] = now;
        pending.set(init.senderIndex, { init, at: now });
        s.tokens -= 1;
        sent++;
        if (timing) sentInWindow++;
        sendInitiation(s, init, now);
      }
    }
    if (timing && pending.size >= job.rateWindow) ticksWindowFull++;
    await tick();
  }
  console.log(`MARK rate-window-end ${run}`);
  const cpu = process.cpuUsage(cpu0);
  const wall = (performance.now() - t0) / 1000;
  const inWindow = answered.filter((a) => a.at >= windowStart && a.at < windowEnd);
  // Check every response now that the clock has stopped (2 X25519 each on our side).
  let verified = 0;
  let failed = 0;
  for (const a of answered) {
    if (completeHandshake(a.init, a.response)) verified++;
    else failed++;
  }
  return {
    seconds,
    warmupSeconds: job.warmupSeconds,
    sourceAddresses: sources.length,
    offeredMaxPerSecond: offered,
    /** Initiations actually sent per second in the timed window (what the responder was offered). */
    sentPerSecond: sentInWindow / seconds,
    timeoutsInWindow,
    /** Initiations still unanswered when the window closed (queued at the responder, or dropped). */
    unansweredAtEnd: pending.size,
    /** Share of the window's loop rounds that ended with the in-flight window full. */
    windowFullShare: ticksInWindow ? ticksWindowFull / ticksInWindow : 0,
    window: job.rateWindow,
    preparedInitiations: total,
    prepareSeconds: prepSeconds,
    sent,
    responses: answered.length,
    responsesInWindow: inWindow.length,
    handshakesPerSecond: inWindow.length / seconds,
    verified,
    failedVerification: failed,
    cookieReplies: counters.cookieReplies - cookiesBefore,
    timeouts,
    /** Sources that used up their prepared initiations (the rate is then a lower bound). */
    sourcesRanOut: exhausted,
    clientCpuPercent: ((cpu.user + cpu.system) / 1e6 / wall) * 100,
  };
}

const result: Record<string, unknown> = {};
try {
  console.log("MARK connect-start");
  result.connect = await connectAll();
  console.log("MARK connect-end");
  log(`connect: ${JSON.stringify(result.connect)}`);
  await Bun.sleep(job.settleSeconds * 1000);
  console.log("MARK settled");
  if (job.rateSeconds > 0) {
    const runs: Record<string, unknown>[] = [];
    for (let run = 1; run <= job.rateRuns; run++) {
      await Bun.sleep(1500); // let the responder leave "under load" and its rate limiter refill
      phase = `rate${run}`;
      runs.push(await handshakeRate(run));
      // Sessions and pending entries of this run are of no further use.
      Bun.gc(true);
    }
    result.rate = runs;
  }
  result.counters = counters;
  console.log(`RESULT ${JSON.stringify(result)}`);
} finally {
  for (const s of sources) s.socket.close();
}
process.exit(0);
